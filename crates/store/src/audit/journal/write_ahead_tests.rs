//! The zeros written ahead of the records: appends overwrite them without growing the file, a record
//! half written into them is neither read nor kept, and sealed or closed segments end at their records.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::appender::{Appender, SegmentLimits, WRITE_AHEAD};
use super::format::{encode_record, Kind, HASH, SEGMENT_HEADER};
use super::reader::JournalCursor;

const NOW: i64 = 1_700_000_000_000;

fn newest_segment(dir: &Path) -> PathBuf {
    super::segments(dir).unwrap().pop().unwrap().1
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Where the records of a segment end: the offset after the last one.
fn records_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let mut at = SEGMENT_HEADER;
    while let Ok(record) = super::format::read_record(&bytes[at..]) {
        at += record.size;
    }
    at
}

fn appender(dir: &Path) -> Appender {
    Appender::open(dir, SegmentLimits::default()).unwrap()
}

#[test]
fn appends_overwrite_the_zeros_ahead_without_growing_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    journal.append(b"first", NOW).unwrap();
    let path = newest_segment(dir.path());
    let grown = len(&path);
    assert!(
        grown >= (SEGMENT_HEADER + WRITE_AHEAD) as u64,
        "zeros are written ahead: {grown}"
    );
    for i in 0..100 {
        journal
            .append(format!("record {i}").as_bytes(), NOW)
            .unwrap();
    }
    assert_eq!(len(&path), grown, "the file did not grow");
    let read = JournalCursor::new(dir.path(), 1).read(1000).unwrap();
    assert_eq!(read.len(), 101);

    // Once the records reach the zeros' end, more are written ahead.
    let big = vec![7; 64 * 1024];
    for _ in 0..20 {
        journal.append(&big, NOW).unwrap();
    }
    assert!(len(&path) > grown);
    assert_eq!(
        JournalCursor::new(dir.path(), 1).read(1000).unwrap().len(),
        121
    );
}

#[test]
fn a_clean_close_and_a_seal_cut_the_zeros_off() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SegmentLimits {
        max_bytes: 2048,
        max_age: Duration::from_secs(3600),
    };
    let mut journal = Appender::open(dir.path(), limits).unwrap();
    for i in 0..40 {
        journal
            .append(format!("record {i:03}").repeat(10).as_bytes(), NOW)
            .unwrap();
    }
    let segments = super::segments(dir.path()).unwrap();
    assert!(segments.len() > 2, "{segments:?}");
    for (_, sealed) in &segments[..segments.len() - 1] {
        assert_eq!(
            len(sealed),
            records_end(sealed) as u64,
            "{}",
            sealed.display()
        );
    }
    let live = newest_segment(dir.path());
    assert!(len(&live) > records_end(&live) as u64);
    journal.close().unwrap();
    assert_eq!(len(&live), records_end(&live) as u64);

    // Appending after another process's clean stop writes ahead again.
    let mut again = appender(dir.path());
    again.append(b"after", NOW).unwrap();
    again.release();
    journal.append(b"and the first process again", NOW).unwrap();
    assert!(len(&live) > records_end(&live) as u64);
    let read = JournalCursor::new(dir.path(), 1).read(1000).unwrap();
    let events: Vec<_> = read.iter().filter_map(|r| r.event.as_deref()).collect();
    assert_eq!(events.len(), 42);
    assert_eq!(events[41], b"and the first process again");
}

/// A record as it is while its `pwrite` runs, or after a crash that kept only its first page.
fn half_of_next_record(dir: &Path, journal: &Appender) -> (PathBuf, u64, Vec<u8>) {
    let path = newest_segment(dir);
    let at = records_end(&path) as u64;
    let bytes = std::fs::read(&path).unwrap();
    // The hash of the last record is the chain hash the next one continues.
    let prev: [u8; HASH] = bytes[at as usize - HASH..at as usize].try_into().unwrap();
    let seq = journal.next_seq().unwrap();
    let mut record = Vec::new();
    encode_record(&mut record, &prev, Kind::Event, seq, &[b'x'; 6000]);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&record[..4096], at).unwrap();
    (path, at, record)
}

#[test]
fn a_record_half_written_into_the_zeros_is_not_read_until_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    journal.append(b"one", NOW).unwrap();
    journal.append(b"two", NOW).unwrap();
    let mut cursor = JournalCursor::new(dir.path(), 1);
    assert_eq!(cursor.read(10).unwrap().len(), 2);

    let (path, at, record) = half_of_next_record(dir.path(), &journal);
    assert!(
        cursor.read(10).unwrap().is_empty(),
        "half a record is not there yet"
    );
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&record, at).unwrap();
    let read = cursor.read(10).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].event.as_deref(), Some(&[b'x'; 6000][..]));
}

#[test]
fn a_torn_record_in_the_zeros_is_cut_off_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    journal.append(b"one", NOW).unwrap();
    journal.append(b"two", NOW).unwrap();
    half_of_next_record(dir.path(), &journal);
    drop(journal);

    // The next process to open the journal finds the torn record and writes over it.
    let mut journal = appender(dir.path());
    journal.append(b"three", NOW).unwrap();
    let read = JournalCursor::new(dir.path(), 1).read(10).unwrap();
    let events: Vec<_> = read.iter().filter_map(|r| r.event.as_deref()).collect();
    assert_eq!(events, [&b"one"[..], b"two", b"three"]);
}

#[test]
fn the_reader_reads_records_larger_than_its_chunk_and_across_its_edges() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = appender(dir.path());
    let sizes = [10, 65_000, 200_000, 3, 3_000_000, 70_000, 10];
    for (i, size) in sizes.iter().enumerate() {
        journal.append(&vec![i as u8 + 1; *size], NOW).unwrap();
    }
    let read = JournalCursor::new(dir.path(), 1).read(100).unwrap();
    let got: Vec<_> = read
        .iter()
        .map(|r| r.event.as_ref().unwrap().len())
        .collect();
    assert_eq!(got, sizes);
    for (i, record) in read.iter().enumerate() {
        assert!(record
            .event
            .as_ref()
            .unwrap()
            .iter()
            .all(|b| *b == i as u8 + 1));
    }
}
