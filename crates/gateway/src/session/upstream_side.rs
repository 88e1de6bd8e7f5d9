//! The upstream-to-client direction of a session: replies are matched to the requests that caused them,
//! finished statements are recorded, and nothing reaches the client before its audit record is durable.
//! The gateway's own messages for the client (an MFA notice while a statement is held) go out here too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use portcullis_wire::peek_frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use super::flow::Flow;
use super::SessionInfo;
use crate::error::GatewayError;
use crate::frames::reserve_partial_frame;
use crate::listener::Shared;
use crate::upstream::MAX_UPSTREAM_MESSAGE;

/// The client end's bookkeeping: bytes sent so far, and the gateway's own messages to send.
pub struct ToClient<'a> {
    /// Bytes sent to the client.
    pub bytes_out: &'a AtomicU64,
    /// The gateway's own messages (an MFA notice), sent between whole upstream messages.
    pub own: UnboundedReceiver<BytesMut>,
}

/// Relays upstream replies until the upstream closes the connection.
pub async fn run<R, W>(
    shared: &Shared,
    info: &Arc<SessionInfo>,
    flow: &Mutex<Flow>,
    upstream: &mut R,
    client: &mut W,
    mut buf: BytesMut,
    counted: ToClient<'_>,
) -> Result<(), GatewayError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let ToClient { bytes_out, mut own } = counted;
    let mut out = BytesMut::with_capacity(32 * 1024);
    let mut events = Vec::new();
    buf.reserve(32 * 1024);
    loop {
        let (changed, ended) = {
            let mut flow = flow.lock().unwrap_or_else(|p| p.into_inner());
            let mut consumed = 0;
            while let Some(header) = peek_frame(&buf[consumed..], MAX_UPSTREAM_MESSAGE)? {
                let end = consumed + header.total_len;
                flow.on_upstream(&buf[consumed..end], info, &mut out, &mut events)?;
                consumed = end;
                if flow.ended.is_some() {
                    break;
                }
            }
            buf.advance(consumed);
            (std::mem::take(&mut flow.catalog_changed), flow.ended.take())
        };
        if let Some(reason) = ended {
            // No reply after this one reaches the client: the statements queued behind it were
            // decided on text the server now reads differently.
            for event in events.drain(..) {
                let _ = shared.audit.record(event).durable().await;
            }
            let _ = client.write_all(&out).await;
            return Err(GatewayError::Logout(reason));
        }
        if let Some(changed) = changed {
            shared.catalogs.handle(&info.resource).changed(changed);
        }
        if !events.is_empty() {
            let tickets: Vec<_> = events.drain(..).map(|e| shared.audit.record(e)).collect();
            for ticket in tickets {
                ticket.durable().await?;
            }
        }
        if !out.is_empty() {
            client
                .write_all(&out)
                .await
                .map_err(|e| GatewayError::io("write to client", e))?;
            bytes_out.fetch_add(out.len() as u64, Ordering::Relaxed);
            out.clear();
        }
        reserve_partial_frame(&mut buf);
        // The gateway's own messages (an MFA notice) go out between whole upstream messages.
        let n = tokio::select! {
            n = upstream.read_buf(&mut buf) => {
                n.map_err(|e| GatewayError::io("read from upstream", e))?
            }
            Some(message) = own.recv() => {
                out.extend_from_slice(&message);
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
    }
}
