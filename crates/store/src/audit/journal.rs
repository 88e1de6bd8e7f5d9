//! The audit journal of [`Durability::Journaled`](crate::Durability::Journaled): what lets a record
//! be acknowledged before the database has it, and still survive a crash of the gateway.
//!
//! Recording an event appends it to this file with one `write` and queues it; the writer thread
//! commits what has gathered to SQLite a few milliseconds later, in one transaction. Once `write` has
//! returned the record is in the operating system's hands, so killing the gateway loses nothing: the
//! next process to open the store replays the journal's records SQLite does not have. (A crash of the
//! machine can lose what was not yet flushed to disk; [`Durability::Strict`](crate::Durability::Strict)
//! is for that.)
//!
//! Each process has its own journal, named after the database, the process and a random part, and
//! holds an exclusive lock on it while it runs; a journal nobody holds is an orphan, left by a process
//! that stopped without cleaning up. A journal past [`MAX_SIZE`] takes no more records: a new one
//! does, and the writer removes the full one once the database has everything in it.
//!
//! A record is `[payload length: u32][sequence: u64][checksum: u64][payload]`, little-endian, the
//! payload an [`AuditEvent`] as JSON and the checksum a multiply-xorshift hash over the sequence, the
//! length and the payload. Sequences count up by one from 1, so a torn last record, or anything after
//! it, ends the journal. Every commit stores, in the same transaction, the last sequence of each
//! journal it holds (`audit_journals`), so a replay skips what the database already has.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::event::AuditEvent;
use crate::error::StoreError;

/// Size of a record's header: length, sequence, checksum.
const HEADER: usize = 4 + 8 + 8;
/// A journal this long takes no more records; the next goes to a new journal.
const MAX_SIZE: u64 = 8 * 1024 * 1024;
/// What a journal's file name adds to the database's.
const INFIX: &str = ".audit-journal.";
/// A journal being created, before it is locked.
const NEW_SUFFIX: &str = ".new";

/// This process's journal: open and locked.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    name: Arc<str>,
    /// Where the next record goes.
    offset: u64,
    /// The next record's sequence.
    next_seq: u64,
}

impl Journal {
    /// Creates a journal next to the database at `db`. It is locked before it gets its final name, so
    /// no other process takes it for an orphan.
    pub(crate) fn create(db: &Path) -> io::Result<Journal> {
        let (dir, prefix) = dir_and_prefix(db)?;
        let name = format!(
            "{prefix}{}.{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = dir.join(&name);
        let fresh = dir.join(format!("{name}{NEW_SUFFIX}"));
        let file = private_file(&fresh)?;
        file.try_lock().map_err(io::Error::from)?;
        std::fs::rename(&fresh, &path)?;
        Ok(Journal {
            file,
            path,
            name: name.into(),
            offset: 0,
            next_seq: 1,
        })
    }

    /// The file's name: the key of its row in `audit_journals`.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether the journal should take no more records (a new one takes them).
    pub(crate) fn is_full(&self) -> bool {
        self.offset >= MAX_SIZE
    }

    /// Writes `record`, a [`record_buffer`] with the payload appended, as the next record: fills in
    /// its header and returns its sequence.
    pub(crate) fn append(&mut self, record: &mut [u8]) -> io::Result<u64> {
        let Some((header, payload)) = record.split_at_mut_checked(HEADER) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no record header",
            ));
        };
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too long"))?;
        let seq = self.next_seq;
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..12].copy_from_slice(&seq.to_le_bytes());
        header[12..].copy_from_slice(&checksum(seq, len, payload).to_le_bytes());
        self.file.write_all_at(record, self.offset)?;
        self.offset += record.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Deletes the journal and then its row in `audit_journals`. Only once the database has every
    /// record in it. A journal that cannot be deleted is left for the next start, which finds its
    /// records applied.
    pub(crate) fn remove(self, conn: &Connection) {
        let removed = std::fs::remove_file(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                conn.execute("DELETE FROM audit_journals WHERE name = ?1", [&*self.name])
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = removed {
            tracing::warn!(error = %e, journal = %self.name, "cannot remove a full audit journal; the next start will");
        }
    }
}

/// An empty record: room for the header, then the payload is appended to it.
pub(crate) fn record_buffer(payload_hint: usize) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload_hint);
    record.resize(HEADER, 0);
    record
}

/// A multiply-xorshift hash of the sequence, the length and the payload, eight bytes at a time: enough
/// to tell a torn write from a record, and cheap next to the `write` it guards.
fn checksum(seq: u64, len: u32, payload: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |hash: u64, word: u64| {
        let hash = (hash ^ word).wrapping_mul(K);
        hash ^ (hash >> 29)
    };
    let mut hash = mix(mix(0xcbf2_9ce4_8422_2325, seq), u64::from(len));
    let mut words = payload.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        hash = mix(hash, u64::from_le_bytes(bytes));
    }
    let mut tail = [0; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    mix(hash, u64::from_le_bytes(tail))
}

/// The whole records at the start of `bytes`: consecutive sequences, each checksum right.
fn read_records(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut records = Vec::new();
    let mut rest = bytes;
    let mut expected = None;
    while rest.len() >= HEADER {
        let (len, seq, sum) = (
            u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]),
            u64::from_le_bytes(rest[4..12].try_into().unwrap_or_default()),
            u64::from_le_bytes(rest[12..20].try_into().unwrap_or_default()),
        );
        let Some(payload) = rest[HEADER..].get(..len as usize) else {
            break;
        };
        if len == 0 || seq == 0 || expected.is_some_and(|e| e != seq) {
            break;
        }
        if checksum(seq, len, payload) != sum {
            break;
        }
        records.push((seq, payload));
        expected = Some(seq + 1);
        rest = &rest[HEADER + payload.len()..];
    }
    records
}

/// Replays into SQLite the records of every orphaned journal of the database at `db` that SQLite does
/// not have, then deletes the journals.
pub(crate) fn recover(conn: &mut Connection, db: &Path) -> Result<(), StoreError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let (dir, prefix) = dir_and_prefix(db).map_err(io_err(db))?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
        let entry = entry.map_err(io_err(&dir))?;
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(&prefix) {
                names.push(name.to_owned());
            }
        }
    }
    for name in &names {
        let path = dir.join(name);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // Its process removed it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        if file.try_lock().is_err() {
            // A running process's journal.
            continue;
        }
        if !name.ends_with(NEW_SUFFIX) {
            replay(conn, name, &mut file, &path)?;
        }
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        tracing::info!(journal = %path.display(), "orphaned audit journal replayed and removed");
    }
    // A journal's row goes once its file has (a crash in between leaves the row alone).
    let rows: Vec<String> = conn
        .prepare("SELECT name FROM audit_journals")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for row in rows {
        if !dir.join(&row).exists() {
            conn.execute("DELETE FROM audit_journals WHERE name = ?1", [&row])?;
        }
    }
    Ok(())
}

fn replay(
    conn: &mut Connection,
    name: &str,
    file: &mut File,
    path: &Path,
) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(file, &mut bytes).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let applied: i64 = conn
        .query_row(
            "SELECT seq FROM audit_journals WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let applied = u64::try_from(applied).unwrap_or(0);
    let mut events = Vec::new();
    let mut last = applied;
    for (seq, payload) in read_records(&bytes) {
        if seq <= applied {
            continue;
        }
        let event: AuditEvent = serde_json::from_slice(payload).map_err(|e| {
            StoreError::Corrupt(format!(
                "{}: record {seq} is not an audit event: {e}",
                path.display()
            ))
        })?;
        events.push(event);
        last = seq;
    }
    if !events.is_empty() {
        tracing::warn!(
            journal = %path.display(),
            events = events.len(),
            "recovering audit events the database lost in a crash"
        );
        super::writer::write_batch(conn, events.iter(), &[(name, last)])?;
    }
    Ok(())
}

/// The database's folder and the file-name prefix its journals share.
fn dir_and_prefix(db: &Path) -> io::Result<(PathBuf, String)> {
    let file_name = db
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, format!("{file_name}{INFIX}")))
}

/// A new file only its owner can read: the journal holds statement texts, as the database does.
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(journal: &mut Journal, n: usize) -> u64 {
        let mut last = 0;
        for i in 0..n {
            let mut record = record_buffer(16);
            record.extend_from_slice(format!("record {i}").as_bytes());
            last = journal.append(&mut record).unwrap();
        }
        last
    }

    /// A new journal in a new folder, with `n` records appended.
    fn journal_of(n: usize) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(&dir.path().join("a.db")).unwrap();
        append(&mut journal, n);
        (dir, journal)
    }

    #[test]
    fn records_read_back_in_order() {
        let (_dir, mut journal) = journal_of(3);
        assert_eq!(append(&mut journal, 2), 5);
        let bytes = std::fs::read(&journal.path).unwrap();
        let records = read_records(&bytes);
        let seqs: Vec<u64> = records.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(records[4].1, b"record 1");
    }

    #[test]
    fn a_torn_record_ends_the_journal() {
        let (_dir, journal) = journal_of(3);
        let mut bytes = std::fs::read(&journal.path).unwrap();
        // A flipped byte in the second record's payload, as a write cut short would leave it.
        let second = HEADER + "record 0".len() + HEADER;
        bytes[second] ^= 0xff;
        let seqs: Vec<u64> = read_records(&bytes).iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1]);
    }

    #[test]
    fn a_running_processs_journal_is_not_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let mut conn = crate::schema::open_connection(&db, true).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let journal = Journal::create(&db).unwrap();
        recover(&mut conn, &db).unwrap();
        assert!(journal.path.exists());
    }
}
