//! Reading the journal from a sequence on, while processes may be appending to it: what the index,
//! `verify` and the sinks share. A record not wholly written yet is simply not there yet: it runs past
//! the end of the file, or its hash fails with only zeros after it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{
    declared_size, is_torn, read_record, ChainHash, Kind, SegmentHeader, Unreadable, MAX_PAYLOAD,
    RECORD_HEADER, SEALED, SEGMENT_HEADER,
};

/// Bytes read from a segment at once: many records, and not much of the zeros written ahead of them.
const CHUNK: usize = 64 * 1024;
/// Most bytes read at once: room for the largest record.
const MAX_CHUNK: usize = MAX_PAYLOAD as usize + CHUNK;

/// A record read back.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub seq: u64,
    /// An event record's payload (MessagePack); `None` for a checkpoint.
    pub event: Option<Vec<u8>>,
}

/// A reading position in the journal of one folder.
#[derive(Debug)]
pub struct JournalCursor {
    dir: PathBuf,
    /// The segment being read.
    segment: Option<Segment>,
    /// The sequence of the next record to hand out; earlier ones are skipped.
    next_seq: u64,
    /// The sequence of the next record in the segment (read or skipped).
    segment_seq: u64,
    /// The last segment read was sealed: the next one starts at `segment_seq`.
    after_seal: bool,
    buf: Vec<u8>,
}

/// A segment being read: where in it the next record starts, and the chain hash before that record.
#[derive(Debug)]
struct Segment {
    file: File,
    offset: u64,
    prev: ChainHash,
}

impl JournalCursor {
    /// A cursor that hands out records from `seq` on.
    pub fn new(dir: &Path, seq: u64) -> JournalCursor {
        JournalCursor {
            dir: dir.to_path_buf(),
            segment: None,
            next_seq: seq.max(1),
            segment_seq: 0,
            after_seal: false,
            buf: Vec::new(),
        }
    }

    /// The sequence of the next record this cursor will hand out.
    pub fn position(&self) -> u64 {
        self.next_seq
    }

    /// Moves to `seq`.
    pub fn seek(&mut self, seq: u64) {
        if seq.max(1) != self.next_seq {
            *self = JournalCursor::new(&self.dir, seq);
        }
    }

    /// Up to `max` records from the position on, as many as are wholly written.
    pub fn read(&mut self, max: usize) -> io::Result<Vec<JournalRecord>> {
        let mut out = Vec::new();
        let mut chunk = CHUNK;
        while out.len() < max {
            if self.segment.is_none() && !self.open_segment()? {
                break;
            }
            let Some(Segment { file, offset, prev }) = &mut self.segment else {
                break;
            };
            let available = file.metadata()?.len().saturating_sub(*offset);
            let read = usize::try_from(available).unwrap_or(chunk).min(chunk);
            self.buf.resize(read, 0);
            file.read_exact_at(&mut self.buf, *offset)?;
            let mut rest = self.buf.as_slice();
            let mut sealed = false;
            // Whether what follows is not there yet; else how many bytes the next record needs.
            let mut ended = false;
            let mut wanted = 0;
            while out.len() < max && !sealed {
                let record = match read_record(rest) {
                    Ok(record) => record,
                    Err(Unreadable::End) => {
                        // Zeros; nothing at all is the chunk's end.
                        ended = !rest.is_empty();
                        break;
                    }
                    Err(Unreadable::Torn) => {
                        wanted = declared_size(rest).unwrap_or(RECORD_HEADER);
                        ended = wanted <= rest.len();
                        break;
                    }
                    Err(Unreadable::Garbage(why)) => {
                        return Err(damaged(format!(
                            "damaged after record {}: {why}",
                            self.segment_seq.saturating_sub(1)
                        )))
                    }
                };
                if record.seq != self.segment_seq {
                    return Err(damaged(format!(
                        "record {} where {} was due",
                        record.seq, self.segment_seq
                    )));
                }
                if is_torn(rest, &record, *offset) && !record.chains_from(prev) {
                    // Still being written, or torn by a crash that the next appender cuts off. The
                    // chunk's end after it: read on to see.
                    ended = rest.len() > record.size;
                    wanted = record.size + RECORD_HEADER;
                    break;
                }
                *prev = record.stored_hash;
                *offset += record.size as u64;
                rest = &rest[record.size..];
                self.segment_seq += 1;
                if record.seq >= self.next_seq {
                    out.push(JournalRecord {
                        seq: record.seq,
                        event: (record.kind == Kind::Event).then(|| record.payload.to_vec()),
                    });
                    self.next_seq = record.seq + 1;
                }
                sealed = record.kind == Kind::Checkpoint
                    && record.payload.first().is_some_and(|f| f & SEALED != 0);
            }
            if sealed {
                self.segment = None;
                self.after_seal = true;
                continue;
            }
            if ended || available <= read as u64 {
                break;
            }
            if rest.len() == self.buf.len() {
                // Nothing whole in the chunk: the next record is larger than it.
                if wanted <= read {
                    break;
                }
                chunk = wanted.min(MAX_CHUNK);
            }
        }
        Ok(out)
    }

    /// Opens the segment holding the next record. False if there is none yet.
    fn open_segment(&mut self) -> io::Result<bool> {
        let segments = match super::segments(&self.dir) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let found = if self.after_seal {
            // The segment after a sealed one starts exactly where it ended (or is not made yet).
            segments
                .iter()
                .find(|(first, _)| *first == self.segment_seq)
        } else {
            segments
                .iter()
                .rev()
                .find(|(first, _)| *first <= self.next_seq)
                .or_else(|| segments.first())
        };
        let Some((_, path)) = found else {
            return Ok(false);
        };
        let file = File::open(path)?;
        let mut header = [0; SEGMENT_HEADER];
        file.read_exact_at(&mut header, 0)?;
        let header = SegmentHeader::decode(&header)
            .ok_or_else(|| damaged(format!("{} has no valid segment header", path.display())))?;
        if header.first_seq > self.next_seq {
            // Retention removed what came before: start at the oldest record kept.
            self.next_seq = header.first_seq;
        }
        self.segment_seq = header.first_seq;
        self.after_seal = false;
        self.segment = Some(Segment {
            file,
            offset: SEGMENT_HEADER as u64,
            prev: header.prev_hash,
        });
        Ok(true)
    }
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("audit journal: {what}"))
}

/// Follows the end of the journal: its last record and last event record, reading on from where it
/// got to (the first time, from the start of the newest segment). What status reports and the sinks'
/// lag compare with.
#[derive(Debug)]
pub struct JournalTail {
    dir: PathBuf,
    cursor: Option<JournalCursor>,
    /// The last record read (0: none yet).
    pub last_seq: u64,
    /// The last event record read (0: none yet); a closing checkpoint after it is no record to ship.
    pub last_event_seq: u64,
}

impl JournalTail {
    pub fn new(dir: &Path) -> JournalTail {
        JournalTail {
            dir: dir.to_path_buf(),
            cursor: None,
            last_seq: 0,
            last_event_seq: 0,
        }
    }

    /// Reads what was appended since the last call.
    pub fn refresh(&mut self) -> io::Result<()> {
        if self.cursor.is_none() {
            let newest = match super::segments(&self.dir) {
                Ok(segments) => segments.last().map(|(first, _)| *first),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let Some(first) = newest else {
                return Ok(());
            };
            // A newest segment without events follows a sealed one: everything before it was read.
            self.last_seq = first - 1;
            self.last_event_seq = first - 1;
            self.cursor = Some(JournalCursor::new(&self.dir, first));
        }
        let Some(cursor) = &mut self.cursor else {
            return Ok(());
        };
        loop {
            let records = cursor.read(4096)?;
            let Some(last) = records.last() else {
                return Ok(());
            };
            self.last_seq = last.seq;
            if let Some(event) = records.iter().rev().find(|r| r.event.is_some()) {
                self.last_event_seq = event.seq;
            }
        }
    }
}
