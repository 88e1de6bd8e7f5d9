//! Splitting a byte stream into typed protocol frames without copying or decoding them.

use bytes::BytesMut;

use crate::WireError;

/// Size of a typed frame's header: tag byte plus 4-byte length.
pub const HEADER_LEN: usize = 5;

/// Upper bounds on what a peer may make us buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest startup-phase packet accepted (PostgreSQL uses 10 000 too).
    pub max_startup_len: usize,
    /// Largest typed message accepted, measured by its length field.
    pub max_message_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_startup_len: 10_000,
            max_message_len: 64 * 1024 * 1024,
        }
    }
}

/// Header of one typed message at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type byte.
    pub tag: u8,
    /// Length of the whole frame INCLUDING the tag byte (length field + 1).
    pub total_len: usize,
}

impl FrameHeader {
    /// Length of the body (the bytes after the 4-byte length field).
    pub fn body_len(&self) -> usize {
        self.total_len - HEADER_LEN
    }
}

/// Peeks at the frame at the front of `buf`.
///
/// Returns `Ok(None)` until the whole frame is buffered. Errors as soon as the header is visible
/// if its length field is below 4 or above `max_len`, so an attacker cannot make us wait for (and
/// buffer) a huge frame.
pub fn peek_frame(buf: &[u8], max_len: usize) -> Result<Option<FrameHeader>, WireError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let tag = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    // Lengths are int32 on the wire: anything above i32::MAX is a negative length.
    if len > i32::MAX as u32 {
        return Err(WireError::MessageTooShort(0));
    }
    let len = len as usize;
    if len < 4 {
        return Err(WireError::MessageTooShort(len));
    }
    if len > max_len {
        return Err(WireError::MessageTooLong { len, max: max_len });
    }
    let total_len = len + 1;
    if buf.len() < total_len {
        return Ok(None);
    }
    Ok(Some(FrameHeader { tag, total_len }))
}

/// One complete frame split off a read buffer, sharing its allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte.
    pub tag: u8,
    /// The whole frame: tag, length and body, ready to be forwarded as-is.
    pub bytes: BytesMut,
}

impl Frame {
    /// The body: the bytes after the 4-byte length, as `decode_frontend`/`decode_backend` expect.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }
}

/// Splits the next complete frame off the front of `buf` (zero-copy), or `Ok(None)` if incomplete.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, WireError> {
    match peek_frame(buf, max_len)? {
        None => Ok(None),
        Some(h) => Ok(Some(Frame {
            tag: h.tag,
            bytes: buf.split_to(h.total_len),
        })),
    }
}
