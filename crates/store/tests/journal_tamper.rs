//! Each way of tampering with the audit journal's files, done to real files, and what `verify` says.

mod common;

use std::path::Path;

use common::{segments, statement, TestStore};
use portcullis_store::{AuditFilter, Durability, MasterKey, SegmentLimits, Store, VerifyReport};

const SEGMENT_HEADER: usize = 56;
const RECORD_HEADER: usize = 13;
const HASH: usize = 32;

/// The byte ranges of a segment's records.
fn records(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER;
    while at + RECORD_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + RECORD_HEADER + len + HASH;
        out.push(at..end);
        at = end;
    }
    out
}

/// A store in `dir` with `n` statements recorded (at = 1..=n), closed cleanly.
fn journal_with(n: i64, limits: SegmentLimits) -> (tempfile::TempDir, MasterKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = Store::open_with(
        &common::db_path(dir.path()),
        key.clone(),
        Durability::Strict,
        limits,
    )
    .unwrap();
    for at in 1..=n {
        store
            .audit()
            .record(statement("alice", "prod", at, &format!("SELECT {at}"), &[]))
            .wait_blocking()
            .unwrap();
    }
    store.shutdown().unwrap();
    drop(store);
    (dir, key)
}

fn verify(dir: &Path, key: &MasterKey) -> VerifyReport {
    let store = Store::open(&common::db_path(dir), key.clone(), Durability::Strict).unwrap();
    store.verify_audit(0, None).unwrap()
}

/// Rewrites the only segment with `change` applied to its record ranges' bytes.
fn rewrite(dir: &Path, change: impl FnOnce(&[u8], Vec<std::ops::Range<usize>>) -> Vec<u8>) {
    let path = segments(dir).pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ranges = records(&bytes);
    std::fs::write(&path, change(&bytes, ranges)).unwrap();
}

fn first_problem(report: &VerifyReport) -> (Option<u64>, String) {
    let p = report
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem found: {report:?}"));
    (p.seq, p.what.clone())
}

#[test]
fn an_intact_journal_verifies() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    let report = verify(dir.path(), &key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.events, report.first_seq), (5, Some(1)));
    assert_eq!(
        report.signed_through,
        Some(5),
        "the closing checkpoint vouches for all"
    );
    assert!(report.torn_tail.is_none());
}

#[test]
fn verifying_leaves_the_journal_as_it_found_it() {
    let (dir, key) = journal_with(3, SegmentLimits::default());
    let path = segments(dir.path()).pop().unwrap();
    let before = std::fs::read(&path).unwrap();
    for _ in 0..2 {
        assert!(verify(dir.path(), &key).is_intact());
    }
    assert_eq!(segments(dir.path()).len(), 1);
    assert!(std::fs::read(&path).unwrap() == before, "nothing appended");
}

#[test]
fn an_edited_record_is_found() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        let mut out = bytes.to_vec();
        // `SELECT 3` becomes `SELECT 4` in the third record.
        let third = &r[2];
        let pos = third.start
            + bytes[third.clone()]
                .windows(8)
                .position(|w| w == b"SELECT 3")
                .unwrap()
            + 7;
        out[pos] = b'4';
        out
    });
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    let (seq, what) = first_problem(&report);
    assert_eq!(seq, Some(3), "{what}");
    assert!(what.contains("does not match its hash"), "{what}");
    assert!(
        report.index_problems.is_empty() || report.index_problems[0].contains("record 3"),
        "{report:?}"
    );
}

#[test]
fn a_removed_record_is_found() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        [&bytes[..r[2].start], &bytes[r[2].end..]].concat()
    });
    let (seq, what) = first_problem(&verify(dir.path(), &key));
    assert_eq!(seq, Some(4));
    assert!(what.contains("records 3 to 3 are missing"), "{what}");
}

#[test]
fn reordered_records_are_found() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        [
            &bytes[..r[1].start],
            &bytes[r[2].clone()],
            &bytes[r[1].clone()],
            &bytes[r[2].end..],
        ]
        .concat()
    });
    let (seq, what) = first_problem(&verify(dir.path(), &key));
    assert_eq!(seq, Some(3));
    assert!(what.contains("missing"), "{what}");
}

#[test]
fn an_inserted_record_is_found() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        [&bytes[..r[1].end], &bytes[r[1].clone()], &bytes[r[1].end..]].concat()
    });
    let (seq, what) = first_problem(&verify(dir.path(), &key));
    assert_eq!(seq, Some(2));
    assert!(what.contains("reordered or inserted"), "{what}");
}

#[test]
fn records_cut_from_the_end_are_found_through_the_index() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| bytes[..r[3].start].to_vec());
    let report = verify(dir.path(), &key);
    assert!(
        report.problems.is_empty(),
        "the chain itself is whole: {report:?}"
    );
    assert!(
        report.index_problems[0].contains("records removed from the journal's end"),
        "{report:?}"
    );
}

#[test]
fn a_torn_tail_is_reported_as_such_not_as_tampering() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        // Half of a copy of the last record, as a write cut short by a power loss leaves it.
        let last = r.last().unwrap().clone();
        [bytes, &bytes[last.start..last.start + (last.len() / 2)]].concat()
    });
    a_torn_tail_the_next_writer_cuts_off(dir.path(), key, "cut short");
}

/// With zeros written ahead of the records, a crash can leave a record whose length is whole but whose
/// later bytes never reached the disk: its hash fails and only zeros follow it.
#[test]
fn a_record_torn_inside_the_zeros_ahead_is_a_torn_tail_too() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        let mut record = event_record(r.len() as u64 + 1, 3000);
        // Its first 2 KiB reached the disk; the rest of it, and everything after, is the zeros.
        record[2048..].fill(0);
        [bytes, &record, &[0; 8192]].concat()
    });
    a_torn_tail_the_next_writer_cuts_off(dir.path(), key, "2048 bytes of a record cut short");
}

/// Pages reach the disk in any order: a crash can keep a page in the middle of a large record off it
/// while the next record, never acknowledged, got there.
#[test]
fn a_record_missing_a_page_with_records_after_it_is_a_torn_tail() {
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        let seq = r.len() as u64 + 1;
        let mut large = event_record(seq, 12_000);
        let page = bytes.len().next_multiple_of(4096) - bytes.len() + 4096;
        large[page..page + 4096].fill(0);
        [bytes, &large, &event_record(seq + 1, 100), &[0; 8192]].concat()
    });
    a_torn_tail_the_next_writer_cuts_off(dir.path(), key, "cut short after record 6");

    // Zeros that are not a whole page of the file are an edit.
    let (dir, key) = journal_with(5, SegmentLimits::default());
    rewrite(dir.path(), |bytes, r| {
        let seq = r.len() as u64 + 1;
        let mut large = event_record(seq, 12_000);
        let page = bytes.len().next_multiple_of(4096) - bytes.len() + 4096;
        large[page + 1..page + 4096].fill(0);
        [bytes, &large, &event_record(seq + 1, 100)].concat()
    });
    let (seq, what) = first_problem(&verify(dir.path(), &key));
    assert_eq!(seq, Some(7), "{what}");
    assert!(what.contains("does not match its hash"), "{what}");
}

/// An event record as the journal frames it, with a hash that matches nothing.
fn event_record(seq: u64, payload: usize) -> Vec<u8> {
    let mut record = (payload as u32).to_le_bytes().to_vec();
    record.push(1);
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend(std::iter::repeat_n(b'x', payload));
    record.extend_from_slice(&[0xab; HASH]);
    record
}

/// `verify` reports a torn tail (`says` what) and no tampering; the next writer cuts the torn bytes off
/// and the chain goes on: a sixth record follows five.
fn a_torn_tail_the_next_writer_cuts_off(dir: &Path, key: MasterKey, says: &str) {
    let report = verify(dir, &key);
    assert!(report.is_intact(), "{report:?}");
    assert!(
        report
            .torn_tail
            .as_deref()
            .is_some_and(|t| t.contains(says)),
        "{report:?}"
    );
    let store = Store::open(&common::db_path(dir), key, Durability::Strict).unwrap();
    store
        .audit()
        .record(statement("alice", "prod", 6, "SELECT 6", &[]))
        .wait_blocking()
        .unwrap();
    let report = store.verify_audit(0, None).unwrap();
    assert!(
        report.is_intact() && report.torn_tail.is_none(),
        "{report:?}"
    );
    assert_eq!(report.events, 6);
}

#[test]
fn a_removed_segment_is_found() {
    let limits = SegmentLimits {
        max_bytes: 300,
        ..Default::default()
    };
    let (dir, key) = journal_with(6, limits);
    let all = segments(dir.path());
    assert!(all.len() >= 3, "{all:?}");
    std::fs::remove_file(&all[1]).unwrap();
    let (_, what) = first_problem(&verify(dir.path(), &key));
    assert!(what.contains("missing"), "{what}");
}

#[test]
fn a_checkpoint_signed_with_another_key_is_found() {
    let (dir, key) = journal_with(3, SegmentLimits::default());
    let store = Store::open(&common::db_path(dir.path()), key, Durability::Strict).unwrap();
    let own = store.audit_public_key();
    assert!(store.verify_audit(0, Some(&own)).unwrap().is_intact());
    // An auditor's key that is not the journal's: the key file was replaced and everything re-signed.
    let other = tempfile::tempdir().unwrap();
    let stranger = TestStore::new(Durability::Strict);
    drop(other);
    let report = store
        .verify_audit(0, Some(&stranger.store.audit_public_key()))
        .unwrap();
    let (_, what) = first_problem(&report);
    assert!(what.contains("signed with another key"), "{what}");
}

#[test]
fn index_rows_edited_deleted_or_inserted_are_found() {
    let (dir, key) = journal_with(4, SegmentLimits::default());
    let raw = rusqlite::Connection::open(common::db_path(dir.path())).unwrap();
    raw.execute_batch(
        "UPDATE audit_events SET statement_text = 'SELECT 0' WHERE seq = 2;
         DELETE FROM audit_events WHERE seq = 3;
         INSERT INTO audit_events (seq, kind, at, session_id, user_name, resource, client_addr)
             SELECT 99, kind, at, session_id, user_name, resource, client_addr FROM audit_events WHERE seq = 1;",
    )
    .unwrap();
    drop(raw);
    let report = verify(dir.path(), &key);
    assert!(report.problems.is_empty(), "{report:?}");
    let text = report.index_problems.join("\n");
    assert!(text.contains("record 2 differs"), "{text}");
    assert!(text.contains("record 3 is missing"), "{text}");
    assert!(
        text.contains("record 99 that the journal does not hold"),
        "{text}"
    );
}

#[test]
fn the_index_rebuilt_from_the_journal_equals_the_incremental_one() {
    let (dir, key) = journal_with(
        50,
        SegmentLimits {
            max_bytes: 4096,
            ..Default::default()
        },
    );
    let store = Store::open(&common::db_path(dir.path()), key, Durability::Strict).unwrap();
    let all = AuditFilter {
        limit: 0,
        ..AuditFilter::default()
    };
    let before: Vec<_> = store
        .query_audit(&all)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(store.reindex_audit().unwrap(), 50);
    let after: Vec<_> = store
        .query_audit(&all)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(before, after);
    assert!(store.verify_audit(0, None).unwrap().is_intact());
}

/// A disk that fills up fails the records that do not fit, with a clear error, and leaves no half
/// record behind: the chain verifies and the next record after space is freed goes on from it.
#[test]
fn a_full_disk_fails_records_and_leaves_the_chain_whole() {
    let mount = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("mount(8) runs");
    assert!(
        status.success(),
        "this test needs to mount a small tmpfs (run as root)"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount.path());

    let key = MasterKey::generate();
    let store = Store::open(
        &common::db_path(mount.path()),
        key.clone(),
        Durability::Strict,
    )
    .unwrap();
    let text = format!("SELECT '{}'", "y".repeat(64 * 1024));
    let mut failed = None;
    for at in 0..200 {
        if let Err(e) = store
            .audit()
            .record(statement("alice", "prod", at, &text, &[]))
            .wait_blocking()
        {
            failed = Some(e.to_string());
            break;
        }
    }
    let failed = failed.expect("a 2 MB disk fills up");
    assert!(failed.contains("No space left"), "{failed}");
    let metrics = portcullis_metrics::encode();
    assert!(
        metrics.contains("portcullis_audit_journal_errors_total{step=\"append\"} 1\n"),
        "{metrics}"
    );
    let report = verify_in(&store);
    assert!(
        report.problems.is_empty() && report.torn_tail.is_none(),
        "{report:?}"
    );
}

fn verify_in(store: &Store) -> VerifyReport {
    // The index may not fit either: compare the journal only.
    match store.verify_audit(0, None) {
        Ok(report) => report,
        Err(e) => panic!("verify: {e}"),
    }
}
