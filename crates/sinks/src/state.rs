//! A sink's persisted state, `<database>.journal/sinks/<name>.json`: its cursor (the next journal record
//! to deliver) and what `portcullis audit status` shows. Rewritten after every delivered batch and every
//! failed attempt through a temporary file and a rename, so a crash leaves the old state or the new one,
//! never half of one; the cursor moves only after the receiver took the batch, so at worst the last
//! batch is delivered again.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SinkError;

/// Where a sink is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkState {
    /// The next journal record to deliver; every one before it was delivered (or is a gap).
    pub next_seq: u64,
    /// Event records delivered over the sink's life.
    #[serde(default)]
    pub delivered: u64,
    /// When a batch was last delivered (milliseconds since the epoch).
    #[serde(default)]
    pub last_delivery_ms: Option<i64>,
    /// The last failure, and when; kept after the sink recovers (see `failing`).
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_ms: Option<i64>,
    /// The last attempt failed.
    #[serde(default)]
    pub failing: bool,
    /// Records removed by retention's hard cap before this sink delivered them: first and last.
    #[serde(default)]
    pub gaps: Vec<(u64, u64)>,
}

/// The folder of the sinks' state files in the journal folder `journal`.
pub fn dir(journal: &Path) -> PathBuf {
    journal.join("sinks")
}

fn path(journal: &Path, name: &str) -> PathBuf {
    dir(journal).join(format!("{name}.json"))
}

/// The state of sink `name`, if it ever ran.
pub fn read_state(journal: &Path, name: &str) -> Result<Option<SinkState>, SinkError> {
    let path = path(journal, name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            SinkError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SinkError::io(path, e)),
    }
}

/// Replaces the state of sink `name` atomically (and durably: the cursor must not go back after a
/// crash of the machine, or a batch is sent twice, nor forward).
pub fn write_state(journal: &Path, name: &str, state: &SinkState) -> Result<(), SinkError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let folder = dir(journal);
    match std::fs::DirBuilder::new().mode(0o700).create(&folder) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(SinkError::io(&folder, e))
        }
        _ => {}
    }
    let target = path(journal, name);
    let fresh = folder.join(format!("{name}.json.new"));
    let bytes = serde_json::to_vec(state).map_err(|e| SinkError::io(&fresh, e.into()))?;
    let io = |e| SinkError::io(&fresh, e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&fresh)
        .map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_data().map_err(io)?;
    std::fs::rename(&fresh, &target).map_err(|e| SinkError::io(&target, e))?;
    std::fs::File::open(&folder)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io(&folder, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_state(dir.path(), "a").unwrap(), None);
        let state = SinkState {
            next_seq: 7,
            delivered: 5,
            gaps: vec![(2, 3)],
            ..SinkState::default()
        };
        write_state(dir.path(), "a", &state).unwrap();
        assert_eq!(read_state(dir.path(), "a").unwrap(), Some(state));
    }
}
