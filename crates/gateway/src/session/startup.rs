//! The first packets of a connection: TLS negotiation, cancel requests and the startup message.

use bytes::BytesMut;
use portcullis_wire::{decode_startup, StartupMessage, StartupRequest, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::GatewayError;
use crate::listener::Shared;
use crate::stream::BoxStream;

/// A client that got as far as a startup message.
pub struct Started {
    /// The client connection, TLS or not.
    pub stream: BoxStream,
    /// Its startup message.
    pub startup: StartupMessage,
    /// Whether TLS was negotiated.
    pub tls: bool,
}

/// Reads the startup phase. `Ok(None)` means the connection was a cancel request (handled) or closed.
pub async fn negotiate(
    shared: &Shared,
    socket: TcpStream,
) -> Result<Option<Started>, GatewayError> {
    let limits = portcullis_wire::Limits::default();
    let mut stream: BoxStream = Box::new(socket);
    let mut tls = false;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let request = loop {
            if let Some(request) = decode_startup(&mut buf, &limits)? {
                break request;
            }
            let n = stream
                .read_buf(&mut buf)
                .await
                .map_err(|e| GatewayError::io("read startup", e))?;
            if n == 0 {
                return Ok(None);
            }
        };
        match request {
            StartupRequest::SslRequest => {
                let acceptor = shared.tls.as_ref().filter(|_| !tls);
                let Some(acceptor) = acceptor else {
                    write(&mut stream, b"N").await?;
                    continue;
                };
                // Bytes sent after the SSLRequest but before the handshake were not protected by TLS:
                // accepting them would let a man in the middle inject commands (CVE-2021-23214).
                if !buf.is_empty() {
                    return Err(WireError::Malformed(
                        "data after SSLRequest before the TLS handshake",
                    )
                    .into());
                }
                write(&mut stream, b"S").await?;
                let secured = acceptor
                    .accept(stream)
                    .await
                    .map_err(|e| GatewayError::io("TLS handshake with client", e))?;
                stream = Box::new(secured);
                tls = true;
            }
            StartupRequest::GssEncRequest => write(&mut stream, b"N").await?,
            StartupRequest::Cancel(key) => {
                shared.cancels.cancel(key).await;
                return Ok(None);
            }
            StartupRequest::Startup(startup) => {
                if !buf.is_empty() {
                    return Err(WireError::Malformed(
                        "data after the startup message before authentication",
                    )
                    .into());
                }
                return Ok(Some(Started {
                    stream,
                    startup,
                    tls,
                }));
            }
        }
    }
}

async fn write(stream: &mut BoxStream, bytes: &[u8]) -> Result<(), GatewayError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| GatewayError::io("write to client", e))
}
