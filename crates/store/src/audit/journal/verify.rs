//! `portcullis audit verify`: reads every segment and checks what an edit, a removal, a reordering or an
//! insertion would break — sequences, the hash chain (within and across segments), checkpoint
//! signatures, seals — and compares the index with the journal. A record cut short at the very end
//! of the journal (past the end of the file, or its hash failing with only zeros after it) is what a
//! crash of the machine leaves, and is reported as a torn tail, not tampering.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;

use super::format::{
    is_torn, read_record, ChainHash, Kind, SegmentHeader, Unreadable, HASH, SEALED, SEGMENT_HEADER,
};
use super::retention::{self, NOTE_FILE};
use super::signing::check_checkpoint;
use crate::audit::index::{decode_event, read_position};
use crate::audit::row;
use crate::error::StoreError;

/// Something that should not be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The segment file.
    pub segment: String,
    /// Where in it.
    pub offset: u64,
    /// The record concerned, if one is.
    pub seq: Option<u64>,
    pub what: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: usize,
    pub events: u64,
    pub checkpoints: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The last record a valid checkpoint vouches for.
    pub signed_through: Option<u64>,
    /// Journal problems, first first: tampering or damage.
    pub problems: Vec<VerifyProblem>,
    /// A record cut short at the end of the journal (a crash), with where.
    pub torn_tail: Option<String>,
    /// Index rows that differ from the journal.
    pub index_problems: Vec<String>,
    /// The last record the index has read.
    pub indexed_through: u64,
    /// Segments removed by retention over the journal's life, as its signed retention note says.
    pub removed_by_retention: u64,
    /// The first record retention kept: the journal is checked from there (`None`: nothing removed).
    pub retained_from: Option<u64>,
}

impl VerifyReport {
    /// No tampering, damage or index difference (a torn tail is fine).
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.index_problems.is_empty()
    }
}

struct Walk<'a> {
    report: VerifyReport,
    public_key: &'a [u8],
    /// The next sequence and the chain hash before it, once a segment has been read.
    expect: Option<(u64, ChainHash)>,
    from: u64,
}

/// Verifies the journal in `dir` from the segment holding `from` on, and the index in `conn`.
pub fn verify(
    dir: &Path,
    conn: &Connection,
    public_key: &[u8],
    from: u64,
) -> Result<VerifyReport, StoreError> {
    let io_err = |source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut segments = super::segments(dir).map_err(io_err)?;
    let mut walk = Walk {
        report: VerifyReport::default(),
        public_key,
        expect: None,
        from,
    };
    // Where the journal must begin: record 1, or where the signed retention note says.
    let origin = match retention::read_anchor(dir, public_key) {
        Ok(Some(anchor)) => {
            walk.report.removed_by_retention = anchor.removed_segments;
            walk.report.retained_from = Some(anchor.first_kept);
            // Segments the note gave up, left by a retention pass that stopped before removing them.
            segments.retain(|(first, _)| *first >= anchor.first_kept);
            Some((anchor.first_kept, anchor.prev_hash, true))
        }
        Ok(None) => Some((1, [0; HASH], false)),
        Err(why) => {
            walk.problem(NOTE_FILE, 0, None, format!("the retention note {why}"));
            None
        }
    };
    let start = segments
        .iter()
        .rposition(|(first, _)| *first <= from)
        .unwrap_or(0);
    if let (0, Some((seq, hash, noted)), Some((_, path))) = (start, origin, segments.first()) {
        check_origin(&mut walk, path, seq, &hash, noted);
    }
    let mut events = Vec::new();
    let count = segments.len() - start;
    for (i, (first, path)) in segments[start..].iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        walk.segment(&name, *first, &bytes, i + 1 == count, &mut events);
    }
    let mut report = walk.report;
    report.indexed_through = read_position(conn)?;
    compare_index(conn, &events, &mut report)?;
    Ok(report)
}

/// Checks that the first segment starts the journal: at record 1 after nothing, or where the retention
/// note says, continuing the chain hash it vouches for.
fn check_origin(walk: &mut Walk<'_>, path: &Path, seq: u64, hash: &ChainHash, noted: bool) {
    use std::os::unix::fs::FileExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bytes = [0; SEGMENT_HEADER];
    let header = std::fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut bytes, 0))
        .ok()
        .and_then(|()| SegmentHeader::decode(&bytes));
    // No header at all is reported when the segment is read.
    let Some(header) = header else {
        return;
    };
    if header.first_seq != seq {
        let what = if noted {
            format!(
                "the journal starts at record {} but the retention note keeps it from record {seq}: records removed",
                header.first_seq
            )
        } else {
            format!(
                "records 1 to {} are missing and no retention note accounts for them",
                header.first_seq.saturating_sub(1)
            )
        };
        walk.problem(&name, 0, Some(seq), what);
    } else if header.prev_hash != *hash {
        walk.problem(
            &name,
            0,
            Some(seq),
            "the first segment does not continue the chain the retention note vouches for".into(),
        );
    }
}

impl Walk<'_> {
    fn problem(&mut self, segment: &str, offset: u64, seq: Option<u64>, what: String) {
        self.report.problems.push(VerifyProblem {
            segment: segment.to_owned(),
            offset,
            seq,
            what,
        });
    }

    fn torn(&mut self, name: &str, bytes: &[u8], offset: usize, seq: u64) {
        let written = bytes[offset..]
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |last| last + 1);
        self.report.torn_tail = Some(format!(
            "{name} at byte {offset}: {written} bytes of a record cut short after record {} (a crash while writing)",
            seq.saturating_sub(1)
        ));
    }

    fn segment(
        &mut self,
        name: &str,
        first: u64,
        bytes: &[u8],
        last_segment: bool,
        events: &mut Vec<(u64, Vec<u8>)>,
    ) {
        self.report.segments += 1;
        let Some(header) = SegmentHeader::decode(bytes) else {
            self.problem(name, 0, None, "no valid segment header".into());
            self.expect = None;
            return;
        };
        if header.first_seq != first {
            self.problem(
                name,
                0,
                Some(header.first_seq),
                format!(
                    "the header says the segment starts at record {}",
                    header.first_seq
                ),
            );
        }
        match self.expect {
            Some((seq, hash)) => {
                if header.first_seq != seq {
                    self.problem(
                        name,
                        0,
                        Some(seq),
                        format!(
                            "records {seq} to {} are missing: the segment before ends at {}",
                            header.first_seq.saturating_sub(1),
                            seq - 1
                        ),
                    );
                } else if header.prev_hash != hash {
                    self.problem(
                        name,
                        0,
                        Some(seq),
                        "the segment does not continue the chain of the one before".into(),
                    );
                }
            }
            None => {
                self.report.first_seq.get_or_insert(header.first_seq);
            }
        }
        let mut seq = header.first_seq;
        let mut prev = header.prev_hash;
        let mut offset = SEGMENT_HEADER;
        let mut sealed = false;
        loop {
            let record = match read_record(&bytes[offset..]) {
                Ok(record) => record,
                Err(Unreadable::End) => break,
                Err(Unreadable::Torn) if last_segment => {
                    self.torn(name, bytes, offset, seq);
                    break;
                }
                Err(Unreadable::Torn) => {
                    self.problem(
                        name,
                        offset as u64,
                        Some(seq),
                        "the segment is cut short but a later segment follows".into(),
                    );
                    break;
                }
                Err(Unreadable::Garbage(why)) => {
                    self.problem(
                        name,
                        offset as u64,
                        Some(seq),
                        format!("not a record: {why}"),
                    );
                    break;
                }
            };
            let at = offset as u64;
            let intact = record.chains_from(&prev);
            if !intact
                && record.seq == seq
                && last_segment
                && is_torn(&bytes[offset..], &record, at)
            {
                self.torn(name, bytes, offset, seq);
                break;
            }
            if sealed {
                self.problem(
                    name,
                    at,
                    Some(record.seq),
                    "a record after the segment's seal".into(),
                );
            }
            if record.seq != seq {
                let what = if record.seq < seq {
                    format!(
                        "record {} where {seq} was due: reordered or inserted",
                        record.seq
                    )
                } else {
                    format!("records {seq} to {} are missing", record.seq - 1)
                };
                self.problem(name, at, Some(record.seq), what);
            } else if !intact {
                self.problem(
                    name,
                    at,
                    Some(record.seq),
                    "the record does not match its hash: edited, or the chain before it was".into(),
                );
            }
            match record.kind {
                Kind::Event => {
                    self.report.events += 1;
                    if record.seq >= self.from {
                        events.push((record.seq, record.payload.to_vec()));
                    }
                }
                Kind::Checkpoint => {
                    self.report.checkpoints += 1;
                    match check_checkpoint(self.public_key, record.payload, record.seq - 1, &prev) {
                        Ok(flags) => {
                            self.report.signed_through = Some(record.seq - 1);
                            sealed = flags & SEALED != 0;
                        }
                        Err(why) => {
                            self.problem(name, at, Some(record.seq), format!("a checkpoint {why}"))
                        }
                    }
                }
            }
            self.report.last_seq = Some(record.seq);
            seq = record.seq + 1;
            prev = record.stored_hash;
            offset += record.size;
        }
        if !last_segment && !sealed {
            self.problem(
                name,
                offset as u64,
                Some(seq),
                "the segment ends without its seal: records removed from its end".into(),
            );
        }
        self.expect = Some((seq, prev));
        debug_assert_eq!(HASH, prev.len());
    }
}

/// Compares the index rows from the first verified event on with the journal's events.
fn compare_index(
    conn: &Connection,
    events: &[(u64, Vec<u8>)],
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let Some(&(from, _)) = events.first() else {
        return Ok(());
    };
    let last_journal = report.last_seq.unwrap_or(0);
    if report.indexed_through > last_journal {
        report.index_problems.push(format!(
            "the index has read up to record {} but the journal ends at {last_journal}: records removed from the journal's end",
            report.indexed_through
        ));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, {} FROM audit_events WHERE seq >= ?1 ORDER BY seq",
        row::COLUMNS
    ))?;
    let mut rows = stmt.query([i64::try_from(from).unwrap_or(i64::MAX)])?;
    let mut journal = events
        .iter()
        .filter(|(seq, _)| *seq <= report.indexed_through)
        .peekable();
    loop {
        let indexed = match rows.next()? {
            Some(r) => {
                let seq: i64 = r.get(0)?;
                let values: Vec<Value> = (1..=row::WIDTH)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<_, _>>()?;
                Some((u64::try_from(seq).unwrap_or(0), values))
            }
            None => None,
        };
        // Journal events the index should have but that come before this row are missing from it.
        while let Some((seq, _)) = journal.peek() {
            if indexed.as_ref().is_some_and(|(s, _)| *s <= *seq) {
                break;
            }
            report.index_problems.push(format!(
                "record {seq} is missing from the index (a row deleted)"
            ));
            journal.next();
        }
        let Some((seq, values)) = indexed else {
            break;
        };
        match journal.peek() {
            Some((jseq, payload)) if *jseq == seq => {
                let expected = decode_event(payload).and_then(|e| row::row(&e));
                match expected {
                    Ok(expected) if expected.as_slice() == values.as_slice() => {}
                    Ok(_) => report.index_problems.push(format!(
                        "the index row of record {seq} differs from the journal (edited)"
                    )),
                    Err(e) => report
                        .index_problems
                        .push(format!("record {seq} cannot be compared: {e}")),
                }
                journal.next();
            }
            _ => report.index_problems.push(format!(
                "the index has a row for record {seq} that the journal does not hold (inserted)"
            )),
        }
    }
    Ok(())
}
