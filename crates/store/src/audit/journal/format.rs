//! The journal's bytes: segment headers, records and the hash chain that links them.
//!
//! A segment file starts with a [`SEGMENT_HEADER`]-byte header: the magic `PCJSEG1\n`, the sequence of
//! its first record, the chain hash of the record before it (zero for the first segment ever), and the
//! time it was created (milliseconds since the epoch), all little-endian. Records follow, each
//! `[payload length: u32][kind: u8][sequence: u64][payload][chain hash: 32 bytes]`, where the chain
//! hash is SHA-256 over the previous record's chain hash, the kind, the sequence, the length and the
//! payload. Sequences count up by one across segments, so a record removed, inserted or reordered
//! breaks either the sequence or the chain, and an edited one breaks its own hash.
//!
//! The segment being appended to is written ahead with zeros (see [`super::appender`]), so its records
//! end where only zeros follow; a sealed segment is cut to its last record. A record whose hash fails
//! with nothing after it, or with a whole page of zeros in it, is torn — still being written, or cut
//! short by a crash ([`is_torn`]) — while any other was edited.
//!
//! An event record's payload is the [`AuditEvent`](super::super::AuditEvent) in MessagePack with
//! field names (compact, and it keeps the serde attributes the JSON form has). A checkpoint record's
//! payload is a flags byte, the key id (the first 8 bytes of SHA-256 over the public key) and an
//! Ed25519 signature over [`checkpoint_message`]: the sequence and chain hash of the record before it
//! and the flags. A checkpoint with [`SEALED`] ends its segment.

use sha2::{Digest, Sha256};

pub(crate) const MAGIC: &[u8; 8] = b"PCJSEG1\n";
pub(crate) const SEGMENT_HEADER: usize = 8 + 8 + 32 + 8;
/// Length, kind, sequence.
pub(crate) const RECORD_HEADER: usize = 4 + 1 + 8;
pub(crate) const HASH: usize = 32;
/// A record bigger than this is not one: a length field this large means damage, not data.
pub(crate) const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

pub(crate) type ChainHash = [u8; HASH];

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event,
    Checkpoint,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Event => 1,
            Kind::Checkpoint => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Event),
            2 => Some(Kind::Checkpoint),
            _ => None,
        }
    }
}

/// Checkpoint flag: the segment takes no more records.
pub(crate) const SEALED: u8 = 1;
/// Checkpoint payload: flags, key id, signature.
pub(crate) const CHECKPOINT_PAYLOAD: usize = 1 + 8 + 64;

/// A segment's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_seq: u64,
    pub prev_hash: ChainHash,
    pub created_ms: i64,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut out = [0; SEGMENT_HEADER];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.first_seq.to_le_bytes());
        out[16..48].copy_from_slice(&self.prev_hash);
        out[48..56].copy_from_slice(&self.created_ms.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        let bytes = bytes.get(..SEGMENT_HEADER)?;
        if &bytes[..8] != MAGIC {
            return None;
        }
        Some(SegmentHeader {
            first_seq: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            prev_hash: bytes[16..48].try_into().ok()?,
            created_ms: i64::from_le_bytes(bytes[48..56].try_into().ok()?),
        })
    }
}

/// The chain hash of a record.
pub(crate) fn chain_hash(prev: &ChainHash, kind: Kind, seq: u64, payload: &[u8]) -> ChainHash {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    Sha256::new()
        .chain_update(prev)
        .chain_update([kind.byte()])
        .chain_update(seq.to_le_bytes())
        .chain_update(len.to_le_bytes())
        .chain_update(payload)
        .finalize()
        .into()
}

/// Appends a whole record to `out` and returns its chain hash.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    prev: &ChainHash,
    kind: Kind,
    seq: u64,
    payload: &[u8],
) -> ChainHash {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let hash = chain_hash(prev, kind, seq, payload);
    out.reserve(RECORD_HEADER + payload.len() + HASH);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind.byte());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&hash);
    hash
}

/// What is signed in a checkpoint.
pub(crate) fn checkpoint_message(seq: u64, hash: &ChainHash, flags: u8) -> Vec<u8> {
    let mut msg = Vec::with_capacity(32 + 8 + HASH + 1);
    msg.extend_from_slice(b"portcullis audit checkpoint v1\0\0");
    msg.extend_from_slice(&seq.to_le_bytes());
    msg.extend_from_slice(hash);
    msg.push(flags);
    msg
}

/// A record as read from a segment, its hash not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub payload: &'a [u8],
    pub stored_hash: ChainHash,
    /// Bytes the record takes.
    pub size: usize,
}

/// Why the bytes at some offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Nothing left: the end of the file, or only the zeros written ahead of the records.
    End,
    /// Fewer bytes than the record needs, or zeros where a record would start with data after them: a
    /// write cut short by a crash of the machine (pages reach the disk in any order), or still going on.
    Torn,
    /// Bytes that are no record: damage or tampering.
    Garbage(String),
}

/// Reads the record at the start of `bytes`.
pub(crate) fn read_record(bytes: &[u8]) -> Result<RawRecord<'_>, Unreadable> {
    if bytes.is_empty() {
        return Err(Unreadable::End);
    }
    if bytes.iter().take(RECORD_HEADER).all(|b| *b == 0) {
        return Err(if is_zeros(bytes) {
            Unreadable::End
        } else {
            Unreadable::Torn
        });
    }
    let Some(header) = bytes.get(..RECORD_HEADER) else {
        return Err(Unreadable::Torn);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let Some(kind) = Kind::from_byte(header[4]) else {
        return Err(Unreadable::Garbage(format!(
            "unknown record kind {}",
            header[4]
        )));
    };
    if len > MAX_PAYLOAD {
        return Err(Unreadable::Garbage(format!("record length {len}")));
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&header[5..13]);
    let size = RECORD_HEADER + len as usize + HASH;
    let Some(record) = bytes.get(..size) else {
        return Err(Unreadable::Torn);
    };
    let payload = &record[RECORD_HEADER..RECORD_HEADER + len as usize];
    let mut stored_hash = [0; HASH];
    stored_hash.copy_from_slice(&record[size - HASH..]);
    Ok(RawRecord {
        kind,
        seq: u64::from_le_bytes(seq),
        payload,
        stored_hash,
        size,
    })
}

impl RawRecord<'_> {
    /// Whether the record's stored hash is the one it makes after `prev`.
    pub(crate) fn chains_from(&self, prev: &ChainHash) -> bool {
        chain_hash(prev, self.kind, self.seq, self.payload) == self.stored_hash
    }
}

/// The size of the record `bytes` start with, as its length field says, once that is there.
pub(crate) fn declared_size(bytes: &[u8]) -> Option<usize> {
    let len = bytes.get(..4)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    Some(RECORD_HEADER + len.min(MAX_PAYLOAD) as usize + HASH)
}

/// Whether a record whose hash fails was torn — by a crash, or by a write still going on — rather
/// than edited. `bytes` start with the record, which starts at byte `at` of its file. Torn when no
/// record follows it, or when it holds a whole page of zeros: a page of the zeros written ahead that a
/// crash kept from the disk while later pages (later records, never acknowledged) got there. Far
/// cheaper than the hash, so readers that do not verify the chain ask this first and hash only the
/// records it picks.
pub(crate) fn is_torn(bytes: &[u8], record: &RawRecord<'_>, at: u64) -> bool {
    let after = bytes.get(record.size..).unwrap_or_default();
    if matches!(read_record(after), Err(Unreadable::End | Unreadable::Torn)) {
        return true;
    }
    let first_page = (at.next_multiple_of(PAGE) - at) as usize;
    bytes
        .get(first_page..record.size)
        .is_some_and(|pages| pages.chunks_exact(PAGE as usize).any(is_zeros))
}

/// The file system's page: what reaches the disk whole or not at all.
const PAGE: u64 = 4096;

fn is_zeros(bytes: &[u8]) -> bool {
    // An OR-fold per block is vectorised: the zeros written ahead run to a mebibyte.
    bytes
        .chunks(4096)
        .all(|block| block.iter().fold(0, |acc, b| acc | b) == 0)
}

/// A segment's file name: its first sequence, zero-padded so names sort as sequences do.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first sequence a segment file name stands for.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_its_hash_chains() {
        let mut out = Vec::new();
        let first = encode_record(&mut out, &[0; HASH], Kind::Event, 1, b"one");
        let second = encode_record(&mut out, &first, Kind::Event, 2, b"two");
        let a = read_record(&out).unwrap();
        assert_eq!(
            (a.kind, a.seq, a.payload, a.stored_hash),
            (Kind::Event, 1, &b"one"[..], first)
        );
        let b = read_record(&out[a.size..]).unwrap();
        assert_eq!(chain_hash(&first, Kind::Event, 2, b.payload), second);
        assert_eq!(read_record(&out[a.size + b.size..]), Err(Unreadable::End));
    }

    #[test]
    fn zeros_end_the_records_and_a_short_or_interrupted_tail_is_torn() {
        let mut out = Vec::new();
        let hash = encode_record(&mut out, &[0; HASH], Kind::Event, 1, b"payload");
        assert_eq!(read_record(&out[..out.len() - 1]), Err(Unreadable::Torn));
        assert_eq!(read_record(&[0; 40]), Err(Unreadable::End));
        let mut zeros_then_data = vec![0; 9000];
        zeros_then_data[8000] = 1;
        assert_eq!(read_record(&zeros_then_data), Err(Unreadable::Torn));
        assert!(matches!(read_record(&[9; 40]), Err(Unreadable::Garbage(_))));

        // Half written into the zeros ahead: whole in length, its hash fails, nothing after it.
        let whole = out.len();
        out.resize(whole + 4096, 0);
        let mut torn = out.clone();
        torn[whole - HASH..whole].fill(0);
        let record = read_record(&torn).unwrap();
        assert!(!record.chains_from(&[0; HASH]));
        assert!(is_torn(&torn, &record, 0));
        assert!(read_record(&out).unwrap().chains_from(&[0; HASH]));

        // Edited, with a record after it: not torn.
        let mut edited = out[..whole].to_vec();
        encode_record(&mut edited, &hash, Kind::Event, 2, b"next");
        edited[RECORD_HEADER] ^= 1;
        let record = read_record(&edited).unwrap();
        assert!(!record.chains_from(&[0; HASH]));
        assert!(!is_torn(&edited, &record, 0));

        // A page inside a large record never reached the disk, the record after it did: torn, as long
        // as the zeros are a whole page of the file; fewer are an edit.
        let at = 100;
        let mut large = Vec::new();
        let hash = encode_record(&mut large, &[0; HASH], Kind::Event, 1, &[7; 10_000]);
        encode_record(&mut large, &hash, Kind::Event, 2, b"next");
        let mut lost = large.clone();
        lost[4096 - at..8192 - at].fill(0);
        let record = read_record(&lost).unwrap();
        assert!(!record.chains_from(&[0; HASH]));
        assert!(is_torn(&lost, &record, at as u64));
        assert!(
            !is_torn(&lost, &record, at as u64 + 1),
            "not a page of the file"
        );
        let mut edited = large.clone();
        edited[5000..9000].fill(0);
        assert!(!is_torn(&edited, &read_record(&edited).unwrap(), at as u64));
    }

    #[test]
    fn segment_names_sort_as_sequences() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("00000000000000000042.seg.new"), None);
    }
}
