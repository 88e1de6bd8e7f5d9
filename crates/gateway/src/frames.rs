//! Reading whole protocol frames from a stream into a reusable buffer.

use bytes::BytesMut;
use portcullis_wire::{peek_frame, FrameHeader, WireError};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::GatewayError;

/// Reads until `buf` holds at least one whole frame and returns its header; the frame stays at the front of
/// `buf`. `Ok(None)` means the peer closed the connection cleanly between frames.
pub async fn fill_frame<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<FrameHeader>, GatewayError> {
    loop {
        if let Some(header) = peek_frame(buf, max_len)? {
            return Ok(Some(header));
        }
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| GatewayError::io("read", e))?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(WireError::Malformed("connection closed in the middle of a message").into())
            };
        }
    }
}

/// Reads one whole frame and splits it off `buf`: the tag and the body (without tag and length).
pub async fn read_frame<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<(u8, BytesMut)>, GatewayError> {
    let Some(header) = fill_frame(stream, buf, max_len).await? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(header.total_len);
    let body = frame.split_off(5);
    Ok(Some((header.tag, body)))
}

/// Makes room for the rest of a partly received frame in one allocation, rather than growing the buffer
/// read by read. The length was already checked against the limit by `peek_frame`.
pub fn reserve_partial_frame(buf: &mut BytesMut) {
    if let Some(header) = buf.get(1..5) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        buf.reserve((len + 1).saturating_sub(buf.len()));
    }
}
