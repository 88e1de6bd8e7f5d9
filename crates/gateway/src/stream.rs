//! One stream type for plaintext and TLS connections, so sessions do not care which they have.

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream a session can read and write: TCP, or TLS over TCP.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxStream = Box<dyn ByteStream>;
