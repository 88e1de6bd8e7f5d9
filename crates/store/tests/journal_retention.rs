//! Retention on real journal files: whole sealed segments go by age or by size, never one a sink has
//! not delivered (unless past the hard cap), `verify` stays clean and says how much retention removed,
//! and tampering with what is kept (or with the retention note) is still found.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{journal_dir, segments, statement};
use portcullis_store::{
    AuditFilter, Durability, MasterKey, RetentionPolicy, SegmentLimits, Store, VerifyReport,
};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Segments of a few records each.
fn small_segments() -> SegmentLimits {
    SegmentLimits {
        max_bytes: 600,
        max_age: Duration::from_secs(3600),
    }
}

fn first_seq_of(segment: &Path) -> u64 {
    segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn open(dir: &Path, key: &MasterKey) -> Store {
    Store::open_with(
        &common::db_path(dir),
        key.clone(),
        Durability::Strict,
        small_segments(),
    )
    .unwrap()
}

/// Records statements `from..=to` (at = their number) and closes the store.
fn record(dir: &Path, key: &MasterKey, from: i64, to: i64) {
    let store = open(dir, key);
    for at in from..=to {
        store
            .audit()
            .record(statement("alice", "prod", at, &format!("SELECT {at}"), &[]))
            .wait_blocking()
            .unwrap();
    }
    store.shutdown().unwrap();
}

fn journal(n: i64) -> (tempfile::TempDir, MasterKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    record(dir.path(), &key, 1, n);
    (dir, key)
}

fn verify(dir: &Path, key: &MasterKey) -> VerifyReport {
    open(dir, key).verify_audit(0, None).unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn total_bytes(dir: &Path) -> u64 {
    segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn indexed_statements(store: &Store) -> Vec<i64> {
    let mut ats: Vec<i64> = store
        .query_audit(&AuditFilter {
            limit: 100_000,
            ..AuditFilter::default()
        })
        .unwrap()
        .iter()
        .map(|r| r.event.at())
        .collect();
    ats.sort_unstable();
    ats
}

#[test]
fn segments_older_than_the_limit_go_and_verify_stays_clean() {
    let (dir, key) = journal(30);
    let before = segments(dir.path());
    assert!(before.len() > 3, "{before:?}");
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(24 * 60 * 60)),
        ..RetentionPolicy::default()
    };
    let store = open(dir.path(), &key);
    // Nothing is a day old yet.
    let outcome = store
        .apply_audit_retention_at(&policy, None, now_ms())
        .unwrap();
    assert_eq!(outcome.removed_segments, 0, "{outcome:?}");
    // Two days later every sealed segment is; the one being appended to stays.
    let outcome = store
        .apply_audit_retention_at(&policy, None, now_ms() + 2 * DAY_MS)
        .unwrap();
    assert_eq!(outcome.removed_segments, before.len() - 1, "{outcome:?}");
    let kept = segments(dir.path());
    assert_eq!(kept, before[before.len() - 1..].to_vec());
    let first_kept = first_seq_of(&kept[0]);
    assert_eq!(outcome.first_kept, Some(first_kept));
    // The index no longer shows what the journal does not hold.
    let shown = indexed_statements(&store);
    assert!(shown.len() < 30 && shown.last() == Some(&30), "{shown:?}");
    drop(store);

    let report = verify(dir.path(), &key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.removed_by_retention, (before.len() - 1) as u64);
    assert_eq!(report.retained_from, Some(first_kept));
    assert_eq!(report.first_seq, Some(first_kept));

    // The journal goes on after retention, and a second pass adds to the count.
    record(dir.path(), &key, 31, 40);
    let store = open(dir.path(), &key);
    let more = segments(dir.path()).len();
    let outcome = store
        .apply_audit_retention_at(&policy, None, now_ms() + 2 * DAY_MS)
        .unwrap();
    assert_eq!(outcome.removed_segments, more - 1);
    drop(store);
    let report = verify(dir.path(), &key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(
        report.removed_by_retention,
        (before.len() - 1 + more - 1) as u64
    );
}

#[test]
fn the_size_cap_removes_the_oldest_segments_first() {
    let (dir, key) = journal(40);
    let before = segments(dir.path());
    let total = total_bytes(dir.path());
    let cap = total / 2;
    let store = open(dir.path(), &key);
    let outcome = store
        .apply_audit_retention_at(
            &RetentionPolicy {
                max_bytes: Some(cap),
                ..RetentionPolicy::default()
            },
            None,
            now_ms(),
        )
        .unwrap();
    drop(store);
    let kept = segments(dir.path());
    assert!(outcome.removed_segments > 0, "{outcome:?}");
    assert_eq!(kept.len() + outcome.removed_segments, before.len());
    // Oldest first: what is kept is the newest, contiguous.
    assert_eq!(kept, before[outcome.removed_segments..].to_vec());
    assert!(total_bytes(dir.path()) <= cap, "{outcome:?}");
    let report = verify(dir.path(), &key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.removed_by_retention, outcome.removed_segments as u64);
}

#[test]
fn retention_waits_for_sinks_until_the_hard_cap() {
    let (dir, key) = journal(40);
    let before = segments(dir.path());
    let firsts: Vec<u64> = before.iter().map(|p| first_seq_of(p)).collect();
    // A sink has delivered everything before the third segment's second record.
    let hold = firsts[2] + 1;
    let everything = RetentionPolicy {
        max_bytes: Some(1),
        ..RetentionPolicy::default()
    };
    let store = open(dir.path(), &key);
    let outcome = store
        .apply_audit_retention_at(&everything, Some(hold), now_ms())
        .unwrap();
    assert_eq!(outcome.removed_segments, 2, "{outcome:?}");
    assert_eq!(outcome.first_kept, Some(firsts[2]));
    assert_eq!(outcome.held_for_sinks, before.len() - 1 - 2);
    assert_eq!(outcome.undelivered, None);

    // Past the hard cap the sink's records go too, and the outcome says which.
    let hard = RetentionPolicy {
        hard_max_bytes: Some(1),
        ..everything
    };
    let outcome = store
        .apply_audit_retention_at(&hard, Some(hold), now_ms())
        .unwrap();
    assert_eq!(outcome.removed_segments, before.len() - 1 - 2);
    let last_removed = firsts[firsts.len() - 1] - 1;
    assert_eq!(outcome.undelivered, Some((hold, last_removed)));
    drop(store);
    let report = verify(dir.path(), &key);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.removed_by_retention, (before.len() - 1) as u64);
}

/// A journal after retention removed all but its last few segments.
fn retained() -> (tempfile::TempDir, MasterKey, Vec<PathBuf>) {
    let (dir, key) = journal(40);
    let n = segments(dir.path()).len();
    let store = open(dir.path(), &key);
    let keep_bytes: u64 = segments(dir.path())[n - 3..]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let outcome = store
        .apply_audit_retention_at(
            &RetentionPolicy {
                max_bytes: Some(keep_bytes),
                ..RetentionPolicy::default()
            },
            None,
            now_ms(),
        )
        .unwrap();
    assert_eq!(outcome.removed_segments, n - 3);
    drop(store);
    assert!(verify(dir.path(), &key).is_intact());
    let kept = segments(dir.path());
    (dir, key, kept)
}

fn first_problem(report: &VerifyReport) -> String {
    report
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem found: {report:?}"))
        .what
        .clone()
}

#[test]
fn removing_a_kept_segment_after_retention_is_tampering() {
    let (dir, key, kept) = retained();
    std::fs::remove_file(&kept[0]).unwrap();
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    let what = first_problem(&report);
    assert!(
        what.contains("retention note keeps it from record"),
        "{what}"
    );
}

#[test]
fn editing_a_kept_record_after_retention_is_tampering() {
    let (dir, key, kept) = retained();
    let mut bytes = std::fs::read(&kept[0]).unwrap();
    let pos = bytes.windows(7).position(|w| w == b"SELECT ").unwrap() + 7;
    bytes[pos] = if bytes[pos] == b'9' { b'8' } else { b'9' };
    std::fs::write(&kept[0], bytes).unwrap();
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    assert!(
        first_problem(&report).contains("does not match its hash"),
        "{report:?}"
    );
}

#[test]
fn a_missing_or_forged_retention_note_is_tampering() {
    let (dir, key, _) = retained();
    let note = journal_dir(dir.path()).join("retention.json");
    let original = std::fs::read_to_string(&note).unwrap();

    std::fs::remove_file(&note).unwrap();
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    assert!(
        first_problem(&report).contains("no retention note accounts for them"),
        "{report:?}"
    );

    // A note moved to vouch for a later start (to hide a removed segment) no longer verifies.
    let mut forged: serde_json::Value = serde_json::from_str(&original).unwrap();
    let first = forged["first_kept_seq"].as_u64().unwrap();
    forged["first_kept_seq"] = (first + 1).into();
    std::fs::write(&note, forged.to_string()).unwrap();
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    assert!(
        first_problem(&report).contains("the retention note a signature that does not verify"),
        "{report:?}"
    );

    // The original note verifies again.
    std::fs::write(&note, original).unwrap();
    assert!(verify(dir.path(), &key).is_intact());
}

#[test]
fn a_journal_missing_its_first_segment_without_a_note_is_tampering() {
    let (dir, key) = journal(30);
    std::fs::remove_file(&segments(dir.path())[0]).unwrap();
    let report = verify(dir.path(), &key);
    assert!(!report.is_intact());
    assert!(
        first_problem(&report).contains("records 1 to"),
        "{report:?}"
    );
}
