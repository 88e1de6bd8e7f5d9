//! A busy process keeps the journal's lock between its appends, lets go when told or when its lease
//! runs out, and catches up with what others appended once it takes the lock again.

use std::fs::TryLockError;
use std::path::Path;

use super::appender::{Appender, SegmentLimits, LEASE};
use super::reader::JournalCursor;

const NOW: i64 = 1_700_000_000_000;

fn appender(dir: &Path) -> Appender {
    Appender::open(dir, SegmentLimits::default()).unwrap()
}

/// Whether another process could take the journal's lock now.
fn lock_is_free(dir: &Path) -> bool {
    let other = super::lock_file(dir).unwrap();
    match other.try_lock() {
        Ok(()) => {
            other.unlock().unwrap();
            true
        }
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(e)) => panic!("{e}"),
    }
}

/// Appends until an append leaves the lock held: one that takes longer than a lease (creating the
/// segment, or a preempted thread) lets it go at once.
fn append_until_held(journal: &mut Appender, dir: &Path) {
    for _ in 0..100 {
        journal.append(b"record", NOW).unwrap();
        if !lock_is_free(dir) {
            return;
        }
    }
    panic!("no append kept the journal's lock");
}

#[test]
fn an_appender_keeps_the_lock_between_appends_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    assert!(lock_is_free(dir.path()));
    append_until_held(&mut journal, dir.path());
    journal.release();
    assert!(lock_is_free(dir.path()));
}

#[test]
fn an_append_past_the_lease_lets_the_lock_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    append_until_held(&mut journal, dir.path());
    std::thread::sleep(LEASE);
    journal.append(b"late", NOW).unwrap();
    assert!(lock_is_free(dir.path()));
}

#[test]
fn after_a_release_the_next_append_follows_what_others_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = appender(dir.path());
    first.append(b"first 1", NOW).unwrap();
    first.release();
    let mut second = appender(dir.path());
    second.append(b"second 1", NOW).unwrap();
    second.append(b"second 2", NOW).unwrap();
    second.release();
    first.append(b"first 2", NOW).unwrap();
    first.close().unwrap();
    assert!(lock_is_free(dir.path()));

    let read = JournalCursor::new(dir.path(), 1).read(10).unwrap();
    let seqs: Vec<_> = read.iter().map(|r| r.seq).collect();
    let events: Vec<_> = read.iter().filter_map(|r| r.event.as_deref()).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "four events and the closing checkpoint"
    );
    assert_eq!(
        events,
        [&b"first 1"[..], b"second 1", b"second 2", b"first 2"]
    );
}
