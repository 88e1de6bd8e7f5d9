//! The one error type of the codec.

/// Everything that can go wrong while framing, decoding or authenticating.
///
/// Variants carry only static text and numbers so that producing an error never allocates.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A length field announced more bytes than the configured limit allows.
    #[error("message length {len} exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// The announced length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A length field was smaller than the minimum for its message kind.
    #[error("message length {0} is too short")]
    MessageTooShort(usize),
    /// A tag byte that is not a known message type in this direction.
    #[error("unknown message type {:?} (0x{tag:02x})", char::from(*tag))]
    UnknownMessage {
        /// The offending tag byte.
        tag: u8,
    },
    /// The message is structurally invalid; the text names what was wrong.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A startup packet asked for a protocol (or special request code) we do not speak.
    #[error("unsupported frontend protocol {}.{}", .0 >> 16, .0 & 0xffff)]
    UnsupportedProtocolVersion(u32),
    /// A CancelRequest carried a key that is not 4 bytes long (protocol 3.2 long keys).
    #[error("unsupported cancel key length {0}")]
    UnsupportedCancelKey(usize),
    /// SCRAM or password authentication failed (wrong password, unknown user, bad server signature).
    #[error("authentication failed")]
    AuthFailed,
    /// The SCRAM exchange was violated (bad syntax, wrong order, nonce mismatch, unsupported option).
    #[error("SCRAM protocol error: {0}")]
    Scram(&'static str),
    /// A stored SCRAM secret string could not be parsed.
    #[error("invalid SCRAM secret: {0}")]
    InvalidSecret(&'static str),
}
