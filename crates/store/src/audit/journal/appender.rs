//! Appending to the journal. Several processes may append to one journal (the gateway, and admin
//! commands that record workflow events while it runs), so an append takes the journal's file lock,
//! first catches up with what others appended since (reading the bytes where the next record goes:
//! zeros when nobody did), then writes its record with one `pwrite`. A write that fails part-way is cut
//! off again, so the journal never holds half a record that a later one follows.
//!
//! A busy process keeps the lock between its appends, for up to [`LEASE`] at a time or until
//! [`Appender::release`] (the index thread calls it between batches, so a process that stops appending
//! lets go once its index has read its records): while it holds the lock nobody else can have appended,
//! so its appends skip the catch-up read and the two `flock` calls, a quarter of a journaled
//! statement's system calls.
//!
//! The segment is written ahead with zeros ([`WRITE_AHEAD`]), so an append overwrites blocks that are
//! allocated and already on disk: the `fdatasync` of a strict record then writes that data alone, not
//! also the inode of a file that grew (on ext4 here about 40 % less CPU and a third of the time per
//! sync). A sealed segment, and the last one at a clean stop, is cut back to its records.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{
    encode_record, is_torn, read_record, segment_name, ChainHash, Kind, SegmentHeader, Unreadable,
    HASH, RECORD_HEADER, SEALED, SEGMENT_HEADER,
};
use super::signing::SigningKey;

/// Zeros written past the last record at a time. A mebibyte is a couple of thousand statement
/// records: the sync that carries the zeros to disk comes that seldom.
pub(crate) const WRITE_AHEAD: usize = 1024 * 1024;

/// The longest a process keeps the journal's lock through a run of appends. Another process that
/// waits for it meanwhile is held up that long at most; at 10,000 records a second that is one lock,
/// and one catch-up read, for fifty records.
pub(crate) const LEASE: Duration = Duration::from_millis(5);

/// When a segment takes no more records.
#[derive(Debug, Clone, Copy)]
pub struct SegmentLimits {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        SegmentLimits {
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Where an appended record is.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// The segment it is in, for an `fdatasync`.
    pub file: Arc<File>,
}

/// The end of the journal as this process last saw it.
#[derive(Debug)]
struct Tail {
    file: Arc<File>,
    created_ms: i64,
    offset: u64,
    /// Where the zeros written ahead end, as far as this process knows.
    allocated: u64,
    next_seq: u64,
    last_hash: ChainHash,
}

/// A process's way into the journal.
#[derive(Debug)]
pub(crate) struct Appender {
    dir: PathBuf,
    lock: File,
    /// Since when this process has held `lock`, if it does.
    held_since: Option<Instant>,
    key: SigningKey,
    limits: SegmentLimits,
    tail: Option<Tail>,
    buf: Vec<u8>,
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Appender {
    /// Opens the journal in `dir`, creating it (and its signing key) if needed.
    pub(crate) fn open(dir: &Path, limits: SegmentLimits) -> io::Result<Appender> {
        super::ensure_dir(dir)?;
        let lock = super::lock_file(dir)?;
        lock.lock()?;
        let key = SigningKey::load_or_create(dir);
        drop(lock.unlock());
        Ok(Appender {
            dir: dir.to_path_buf(),
            lock,
            held_since: None,
            key: key?,
            limits,
            tail: None,
            buf: Vec::with_capacity(1024),
        })
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// Appends an event record with `payload`.
    pub(crate) fn append(&mut self, payload: &[u8], now_ms: i64) -> io::Result<Appended> {
        let since = self.acquire()?;
        let appended = if self.is_due(now_ms) {
            self.rotate(now_ms)
        } else {
            Ok(())
        }
        .and_then(|()| self.write(Kind::Event, payload));
        // After a failure the next append reads the journal afresh.
        if appended.is_err() || since.elapsed() >= LEASE {
            self.release();
        }
        appended
    }

    /// Lets other processes append: unlocks the journal if this process holds it. Its next append
    /// catches up with theirs first.
    pub(crate) fn release(&mut self) {
        if self.held_since.take().is_some() {
            drop(self.lock.unlock());
        }
    }

    /// Takes the journal's lock unless this process holds it already, and then catches up with what
    /// others appended. Returns since when the lock has been held.
    fn acquire(&mut self) -> io::Result<Instant> {
        if let Some(since) = self.held_since {
            return Ok(since);
        }
        self.lock.lock()?;
        let since = Instant::now();
        self.held_since = Some(since);
        if let Err(e) = self.catch_up() {
            self.release();
            return Err(e);
        }
        Ok(since)
    }

    /// At a clean stop of a process that appended: appends a signed checkpoint (not sealing), which
    /// lets `verify` vouch for everything up to here, and cuts off the zeros written ahead. One that
    /// only read (`audit verify`, `audit status`) leaves the journal as it found it.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if self.tail.is_none() {
            return Ok(());
        }
        self.acquire()?;
        let closed = self.checkpoint_and_cut();
        self.release();
        closed
    }

    fn checkpoint_and_cut(&mut self) -> io::Result<()> {
        let Some(tail) = self.tail.as_ref().filter(|t| t.next_seq > 1) else {
            return Ok(());
        };
        let payload = self.key.checkpoint(tail.next_seq - 1, &tail.last_hash, 0);
        self.write(Kind::Checkpoint, &payload)?;
        self.cut_ahead()
    }

    /// The sequence the next record will get, as of the last append.
    pub(crate) fn next_seq(&self) -> Option<u64> {
        self.tail.as_ref().map(|t| t.next_seq)
    }

    fn is_due(&self, now_ms: i64) -> bool {
        self.tail.as_ref().is_some_and(|t| {
            let age = u64::try_from(now_ms.saturating_sub(t.created_ms)).unwrap_or(0);
            t.offset >= self.limits.max_bytes || Duration::from_millis(age) >= self.limits.max_age
        })
    }

    fn write(&mut self, kind: Kind, payload: &[u8]) -> io::Result<Appended> {
        let tail = self
            .tail
            .as_mut()
            .ok_or_else(|| io::Error::other("no journal tail"))?;
        self.buf.clear();
        let seq = tail.next_seq;
        let hash = encode_record(&mut self.buf, &tail.last_hash, kind, seq, payload);
        let end = tail.offset + self.buf.len() as u64;
        if end > tail.allocated {
            tail.allocated = write_ahead(&tail.file, end);
        }
        if let Err(e) = tail.file.write_all_at(&self.buf, tail.offset) {
            // Half a record followed by whole ones would read as damage; a crash in between leaves a
            // torn tail, which the next append cuts off.
            if let Err(cut) = tail.file.set_len(tail.offset) {
                tracing::error!(error = %cut, "cannot cut a failed audit journal write off");
            }
            tail.allocated = tail.offset;
            return Err(e);
        }
        tail.offset += self.buf.len() as u64;
        portcullis_metrics::audit::journal_appended(self.buf.len() as u64, seq);
        tail.next_seq += 1;
        tail.last_hash = hash;
        Ok(Appended {
            file: Arc::clone(&tail.file),
        })
    }

    /// Cuts the zeros written ahead off the segment and makes its records durable.
    fn cut_ahead(&mut self) -> io::Result<()> {
        let Some(tail) = &mut self.tail else {
            return Ok(());
        };
        tail.file.set_len(tail.offset)?;
        tail.allocated = tail.offset;
        tail.file.sync_data()
    }

    /// Brings the tail up to date with what other processes appended: opens the newest segment the
    /// first time, then reads on from where this process stopped.
    fn catch_up(&mut self) -> io::Result<()> {
        let Some(tail) = &mut self.tail else {
            self.tail = Some(self.open_newest()?);
            return Ok(());
        };
        let mut next = [0; RECORD_HEADER];
        let seen = read_at_most(&tail.file, &mut next, tail.offset)?;
        if next[..seen].iter().all(|b| *b == 0) {
            if seen < RECORD_HEADER {
                // Another process cut the zeros ahead off at its clean stop.
                tail.allocated = tail.offset + seen as u64;
            }
            return Ok(());
        }
        let len = tail.file.metadata()?.len();
        let mut bytes = vec![0; usize::try_from(len - tail.offset).map_err(io::Error::other)?];
        tail.file.read_exact_at(&mut bytes, tail.offset)?;
        tail.allocated = len;
        let sealed = scan(&mut bytes.as_slice(), tail, &self.dir)?;
        if sealed {
            let next = self.dir.join(segment_name(tail.next_seq));
            self.tail = Some(match File::options().read(true).write(true).open(&next) {
                Ok(_) => self.open_newest()?,
                // Its sealer stopped before it made the next segment.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let (prev, next_seq) = (tail.last_hash, tail.next_seq);
                    self.create_segment(next_seq, prev, crate::now_millis())?
                }
                Err(e) => return Err(e),
            });
        }
        Ok(())
    }

    /// The newest segment, read to its end; a new journal's first segment if there is none.
    fn open_newest(&self) -> io::Result<Tail> {
        let Some((first_seq, path)) = super::segments(&self.dir)?.pop() else {
            return self.create_segment(1, [0; HASH], crate::now_millis());
        };
        let file = super::private_file(&path, false)?;
        let bytes = std::fs::read(&path)?;
        let header = SegmentHeader::decode(&bytes)
            .filter(|h| h.first_seq == first_seq)
            .ok_or_else(|| damaged(format!("{} has no valid segment header", path.display())))?;
        let mut tail = Tail {
            file: Arc::new(file),
            created_ms: header.created_ms,
            offset: SEGMENT_HEADER as u64,
            allocated: bytes.len() as u64,
            next_seq: header.first_seq,
            last_hash: header.prev_hash,
        };
        let sealed = scan(&mut &bytes[SEGMENT_HEADER..], &mut tail, &self.dir)?;
        if sealed {
            return self.create_segment(tail.next_seq, tail.last_hash, crate::now_millis());
        }
        Ok(tail)
    }

    /// Seals the current segment with a signed checkpoint, makes it durable, and starts the next.
    fn rotate(&mut self, now_ms: i64) -> io::Result<()> {
        let Some(tail) = &self.tail else {
            return Ok(());
        };
        let payload = self
            .key
            .checkpoint(tail.next_seq - 1, &tail.last_hash, SEALED);
        self.write(Kind::Checkpoint, &payload)?;
        self.cut_ahead()?;
        let Some(tail) = &self.tail else {
            return Ok(());
        };
        let next = self.create_segment(tail.next_seq, tail.last_hash, now_ms)?;
        self.tail = Some(next);
        Ok(())
    }

    fn create_segment(
        &self,
        first_seq: u64,
        prev_hash: ChainHash,
        now_ms: i64,
    ) -> io::Result<Tail> {
        let header = SegmentHeader {
            first_seq,
            prev_hash,
            created_ms: now_ms,
        };
        let name = segment_name(first_seq);
        let fresh = self.dir.join(format!("{name}.new"));
        let file = super::private_file(&fresh, false)?;
        file.set_len(0)?;
        file.write_all_at(&header.encode(), 0)?;
        let allocated = write_ahead(&file, SEGMENT_HEADER as u64);
        file.sync_all()?;
        std::fs::rename(&fresh, self.dir.join(&name))?;
        super::sync_dir(&self.dir)?;
        Ok(Tail {
            file: Arc::new(file),
            created_ms: now_ms,
            offset: SEGMENT_HEADER as u64,
            allocated,
            next_seq: first_seq,
            last_hash: prev_hash,
        })
    }
}

/// Writes zeros from `from` on, [`WRITE_AHEAD`] bytes; returns where the file's zeros now end. Only
/// to make appends cheaper: where the disk has no room for them, the record is written without.
fn write_ahead(file: &File, from: u64) -> u64 {
    match file.write_all_at(&vec![0; WRITE_AHEAD], from) {
        Ok(()) => from + WRITE_AHEAD as u64,
        Err(e) => {
            tracing::debug!(error = %e, "cannot write zeros ahead in the audit journal");
            file.metadata().map_or(from, |m| m.len())
        }
    }
}

/// Reads into `buf` from `offset` up to the end of the file; how many bytes it read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], offset + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// Reads the records in `bytes` (what follows `tail.offset`) into `tail`. Returns whether a sealing
/// checkpoint ended the segment. A torn record at the end (a crash while writing) is cut off: the
/// caller holds the lock, so nobody is still writing it.
fn scan(bytes: &mut &[u8], tail: &mut Tail, dir: &Path) -> io::Result<bool> {
    loop {
        match read_record(bytes) {
            Ok(record) => {
                if record.seq != tail.next_seq {
                    return Err(damaged(format!(
                        "audit journal in {}: record {} where {} was due",
                        dir.display(),
                        record.seq,
                        tail.next_seq
                    )));
                }
                if is_torn(bytes, &record, tail.offset) && !record.chains_from(&tail.last_hash) {
                    // Written into the zeros ahead but not all of it reached the disk; what follows
                    // was never acknowledged. An edited record is left for `verify` to report.
                    cut_torn(tail, dir, bytes.len())?;
                    return Ok(false);
                }
                tail.offset += record.size as u64;
                tail.next_seq += 1;
                tail.last_hash = record.stored_hash;
                *bytes = &bytes[record.size..];
                if record.kind == Kind::Checkpoint
                    && record.payload.first().is_some_and(|f| f & SEALED != 0)
                {
                    return Ok(true);
                }
            }
            Err(Unreadable::End) => return Ok(false),
            Err(Unreadable::Torn) => {
                cut_torn(tail, dir, bytes.len())?;
                return Ok(false);
            }
            Err(Unreadable::Garbage(why)) => {
                return Err(damaged(format!(
                    "audit journal in {} is damaged after record {}: {why}; run `portcullis audit verify`",
                    dir.display(),
                    tail.next_seq - 1
                )))
            }
        }
    }
}

fn cut_torn(tail: &mut Tail, dir: &Path, bytes: usize) -> io::Result<()> {
    tracing::warn!(
        journal = %dir.display(),
        after = tail.next_seq - 1,
        bytes,
        "cutting off a torn audit journal record left by a crash"
    );
    tail.file.set_len(tail.offset)?;
    tail.allocated = tail.offset;
    tail.file.sync_data()
}
