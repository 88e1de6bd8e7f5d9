//! The audit journal: the audit log itself. Every record is appended to a chain of segment files in a
//! folder next to the database (`<database>.journal/`) before the client is told anything; the SQLite
//! tables are an index built from it (see [`super::index`]).
//!
//! - [`format`]: the bytes — segment headers, records, the hash chain.
//! - [`appender`]: how a process appends, sharing the journal with other processes through a lock.
//! - [`reader`]: reading records from a sequence on, for the index, `verify` and the sinks.
//! - [`signing`]: the Ed25519 key that signs checkpoints.
//! - [`verify`]: checking chain, sequences, signatures and the index against the journal.
//! - [`retention`]: removing old sealed segments behind a signed retention note.

pub(crate) mod appender;
pub(crate) mod format;
#[cfg(test)]
mod lease_tests;
pub(crate) mod reader;
pub(crate) mod retention;
pub(crate) mod signing;
pub mod verify;
#[cfg(test)]
mod write_ahead_tests;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use format::parse_segment_name;

/// Held (with `flock`) while a process appends (and between the appends of a busy one).
const LOCK_FILE: &str = "LOCK";

/// The journal folder of the database at `db`.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".journal");
    db.with_file_name(name)
}

/// Creates the journal folder (owner only) if it is missing.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The segments in `dir`, by first sequence, oldest first.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            found.push((first, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(first, _)| *first);
    Ok(found)
}

/// A file only its owner can read: the journal holds statement texts, as the database does.
pub(crate) fn private_file(path: &Path, create_new: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(!create_new)
        .create_new(create_new)
        .mode(0o600)
        .open(path)
}

/// Makes a file's creation or renaming in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The lock file of the journal in `dir`.
pub(crate) fn lock_file(dir: &Path) -> io::Result<File> {
    private_file(&dir.join(LOCK_FILE), false)
}
