//! Where "now" comes from for the MFA rules (verification validity, the idle re-prompt, TOTP steps).
//!
//! In production it is the system clock. Tests that must see minutes pass (a verification expiring, a
//! user idle for a minute) move it forward instead of sleeping: with an offset file, every reading is the
//! system time plus the number of seconds written in that file, read again on each call so another
//! process (the test) can change it while the gateway runs. It lives in the store crate because both the
//! gateway and the CLI read it, and both already depend on the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

/// A clock: the system time, optionally shifted by the offset in a file (testing only).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_file: Option<Arc<PathBuf>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// The system clock shifted by the whole seconds (possibly negative) written in `path`; a missing
    /// file means no shift. For tests only: whoever can write the file can move the MFA rules' time.
    pub fn with_offset_file(path: impl Into<PathBuf>) -> Self {
        Clock {
            offset_file: Some(Arc::new(path.into())),
        }
    }

    /// The offset file, when this clock is shifted by one.
    pub fn offset_file(&self) -> Option<&Path> {
        self.offset_file.as_deref().map(PathBuf::as_path)
    }

    /// The time now, by this clock.
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        match &self.offset_file {
            None => now,
            Some(path) => now.saturating_add(Duration::seconds(read_offset(path))),
        }
    }
}

/// The offset in seconds the file holds; 0 when it does not exist or cannot be read as a number (said
/// in the log, so a test that wrote nonsense learns why its clock did not move).
fn read_offset(path: &Path) -> i64 {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(secs) => secs,
            Err(_) if text.trim().is_empty() => 0,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "clock offset file does not hold a whole number of seconds; using 0");
                0
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the clock offset file; using 0");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_file_moves_the_clock_on_every_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        let clock = Clock::with_offset_file(&path);
        let drift = |c: &Clock| (c.now() - OffsetDateTime::now_utc()).whole_seconds();
        assert_eq!(drift(&clock), 0, "a missing file means no offset");
        std::fs::write(&path, "360\n").unwrap();
        assert!((359..=360).contains(&drift(&clock)));
        std::fs::write(&path, "-60").unwrap();
        assert!((-61..=-60).contains(&drift(&clock)));
        std::fs::write(&path, "soon").unwrap();
        assert_eq!(drift(&clock), 0);
        assert_eq!(drift(&Clock::system()), 0);
        assert_eq!(clock.offset_file(), Some(path.as_path()));
    }
}
