//! Retention: removing whole sealed segments from the front of the journal, older than a number of days
//! or beyond a size cap, without making `verify` cry tampering.
//!
//! Only a prefix of sealed segments is ever removed, never the segment being appended to. Before the
//! files go, a signed **retention note** (`retention.json` in the journal's folder) records the first
//! record kept and the chain hash before it, and how many segments retention has removed in all;
//! `verify` starts the chain there and reports `removed_by_retention` instead of missing records. A
//! journal that starts after record 1 without a note that vouches for exactly that start, a note
//! signed with another key, or a note naming a later start than the first segment all fail `verify`.
//!
//! Retention waits for the sinks: a segment is removed only once every sink has delivered its
//! records (the caller passes the first record some sink still lacks as `hold`) and the index has read
//! them. Only past the hard cap (`hard_max_bytes`) are older segments removed even though a sink lacks
//! them; that sink then records a gap. Index rows of removed records are deleted with them (by the
//! caller, [`crate::Store::apply_audit_retention`]): what the journal no longer vouches for is not shown.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::format::{ChainHash, SegmentHeader, HASH, SEGMENT_HEADER};
use super::signing::{self, SigningKey};

/// The retention note's file in the journal's folder.
pub(crate) const NOTE_FILE: &str = "retention.json";

/// What retention keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Sealed segments whose last record is older than this go.
    pub max_age: Option<Duration>,
    /// While the journal is larger than this, its oldest sealed segments go.
    pub max_bytes: Option<u64>,
    /// Past this size the oldest sealed segments go even if a sink has not delivered them (the sink
    /// then records a gap). Without it retention waits for the sinks however large the journal grows.
    pub hard_max_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// Whether anything is ever removed.
    pub fn is_active(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some() || self.hard_max_bytes.is_some()
    }
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments removed by this pass.
    pub removed_segments: usize,
    /// Bytes they took.
    pub removed_bytes: u64,
    /// The first record the journal now holds.
    pub first_kept: Option<u64>,
    /// Segments due for removal but kept because a sink (or the index) has not read them yet.
    pub held_for_sinks: usize,
    /// Records removed although a sink had not delivered them (the hard cap): first and last.
    pub undelivered: Option<(u64, u64)>,
}

/// The signed retention note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RetentionNote {
    /// The first record the journal keeps.
    pub first_kept_seq: u64,
    /// The chain hash of the record before it (hex).
    pub prev_hash: String,
    /// Segments removed by retention in all, over the journal's life.
    pub removed_segments: u64,
    /// When the note was written (milliseconds since the epoch).
    pub at_ms: i64,
    /// The signing key's id (hex).
    pub key_id: String,
    /// Ed25519 over [`note_message`] (hex).
    pub signature: String,
}

/// A note that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub first_kept: u64,
    pub prev_hash: ChainHash,
    pub removed_segments: u64,
}

fn note_message(first_kept: u64, prev_hash: &ChainHash, removed: u64, at_ms: i64) -> Vec<u8> {
    let mut msg = Vec::with_capacity(32 + 8 + HASH + 16);
    msg.extend_from_slice(b"portcullis audit retention v1\0\0\0");
    msg.extend_from_slice(&first_kept.to_le_bytes());
    msg.extend_from_slice(prev_hash);
    msg.extend_from_slice(&removed.to_le_bytes());
    msg.extend_from_slice(&at_ms.to_le_bytes());
    msg
}

fn note_path(dir: &Path) -> PathBuf {
    dir.join(NOTE_FILE)
}

/// The retention note in `dir`, checked with `public_key`: `Ok(None)` when there is none, `Err` with
/// why when it does not verify.
pub(crate) fn read_anchor(dir: &Path, public_key: &[u8]) -> Result<Option<Anchor>, String> {
    let text = match std::fs::read(note_path(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let note: RetentionNote =
        serde_json::from_slice(&text).map_err(|e| format!("is not a retention note: {e}"))?;
    let prev_hash: ChainHash = signing::parse_hex(&note.prev_hash)
        .and_then(|h| h.try_into().ok())
        .ok_or("has no valid prev_hash")?;
    let key_id = signing::parse_hex(&note.key_id).ok_or("has no valid key_id")?;
    let signature = signing::parse_hex(&note.signature).ok_or("has no valid signature")?;
    let msg = note_message(
        note.first_kept_seq,
        &prev_hash,
        note.removed_segments,
        note.at_ms,
    );
    signing::check_signature(public_key, &key_id, &msg, &signature)?;
    Ok(Some(Anchor {
        first_kept: note.first_kept_seq,
        prev_hash,
        removed_segments: note.removed_segments,
    }))
}

fn write_note(dir: &Path, key: &SigningKey, anchor: &Anchor, at_ms: i64) -> io::Result<()> {
    use std::io::Write;
    let msg = note_message(
        anchor.first_kept,
        &anchor.prev_hash,
        anchor.removed_segments,
        at_ms,
    );
    let (key_id, signature) = key.sign(&msg);
    let note = RetentionNote {
        first_kept_seq: anchor.first_kept,
        prev_hash: signing::hex(&anchor.prev_hash),
        removed_segments: anchor.removed_segments,
        at_ms,
        key_id: signing::hex(&key_id),
        signature: signing::hex(&signature),
    };
    let text = serde_json::to_vec_pretty(&note).map_err(io::Error::other)?;
    let fresh = dir.join(format!("{NOTE_FILE}.new"));
    let mut file = super::private_file(&fresh, false)?;
    file.set_len(0)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&fresh, note_path(dir))?;
    super::sync_dir(dir)
}

struct Segment {
    first: u64,
    path: PathBuf,
    header: SegmentHeader,
    bytes: u64,
}

fn read_segments(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    for (first, path) in super::segments(dir)? {
        let file = std::fs::File::open(&path)?;
        let mut header = [0; SEGMENT_HEADER];
        file.read_exact_at(&mut header, 0)?;
        let header = SegmentHeader::decode(&header).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} has no valid segment header", path.display()),
            )
        })?;
        let bytes = file.metadata()?.len();
        out.push(Segment {
            first,
            path,
            header,
            bytes,
        });
    }
    Ok(out)
}

/// Removes what `policy` lets go from the journal in `dir`. `hold` is the first record some sink has
/// not delivered (`None`: no sinks), `indexed` the last record the index has read.
pub(crate) fn apply(
    dir: &Path,
    policy: &RetentionPolicy,
    hold: Option<u64>,
    indexed: u64,
    now_ms: i64,
) -> io::Result<RetentionOutcome> {
    let mut outcome = RetentionOutcome::default();
    if !policy.is_active() {
        return Ok(outcome);
    }
    let lock = super::lock_file(dir)?;
    lock.lock()?;
    let result = apply_locked(dir, policy, hold, indexed, now_ms, &mut outcome);
    drop(lock.unlock());
    result.map(|()| outcome)
}

fn apply_locked(
    dir: &Path,
    policy: &RetentionPolicy,
    hold: Option<u64>,
    indexed: u64,
    now_ms: i64,
    outcome: &mut RetentionOutcome,
) -> io::Result<()> {
    let key = SigningKey::load_or_create(dir)?;
    let previous = read_anchor(dir, key.public_key())
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, format!("{NOTE_FILE} {why}")))?;
    let mut segments = read_segments(dir)?;
    // Segments a note already gave up (a pass stopped between the note and the removal) go first.
    if let Some(anchor) = previous {
        while segments.len() > 1 && segments[0].first < anchor.first_kept {
            let gone = segments.remove(0);
            std::fs::remove_file(&gone.path)?;
        }
    }
    outcome.first_kept = segments.first().map(|s| s.first);
    let n = segments.len();
    if n < 2 {
        return Ok(());
    }
    let total: u64 = segments.iter().map(|s| s.bytes).sum();
    // Sealed segment i ends just before segment i + 1 begins, in sequence and in time.
    let last_seq = |i: usize| segments[i + 1].first - 1;
    let ended_ms = |i: usize| segments[i + 1].header.created_ms;
    let mut remaining = total;
    let mut due = 0;
    let mut hard = 0;
    for (i, segment) in segments[..n - 1].iter().enumerate() {
        let by_age = policy.max_age.is_some_and(|age| {
            let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            now_ms.saturating_sub(ended_ms(i)) >= age_ms
        });
        let by_size = policy.max_bytes.is_some_and(|max| remaining > max);
        let by_hard = policy.hard_max_bytes.is_some_and(|max| remaining > max);
        if due == i && (by_age || by_size) {
            due = i + 1;
        }
        if hard == i && by_hard {
            hard = i + 1;
        }
        remaining -= segment.bytes;
    }
    let read_by_index = (0..n - 1).take_while(|&i| last_seq(i) <= indexed).count();
    let delivered = (0..n - 1)
        .take_while(|&i| hold.is_none_or(|hold| last_seq(i) < hold))
        .count();
    let waits = due.min(delivered).min(read_by_index);
    let k = waits.max(hard.min(read_by_index));
    outcome.held_for_sinks = due.max(k) - k;
    if k == 0 {
        return Ok(());
    }
    if let Some(hold) = hold {
        if last_seq(k - 1) >= hold {
            outcome.undelivered = Some((hold, last_seq(k - 1)));
        }
    }
    let anchor = Anchor {
        first_kept: segments[k].first,
        prev_hash: segments[k].header.prev_hash,
        removed_segments: previous.map_or(0, |a| a.removed_segments) + k as u64,
    };
    write_note(dir, &key, &anchor, now_ms)?;
    for segment in &segments[..k] {
        std::fs::remove_file(&segment.path)?;
        outcome.removed_segments += 1;
        outcome.removed_bytes += segment.bytes;
    }
    super::sync_dir(dir)?;
    outcome.first_kept = Some(anchor.first_kept);
    Ok(())
}
