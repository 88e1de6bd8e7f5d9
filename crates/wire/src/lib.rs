//! Sans-IO codec for the PostgreSQL v3 frontend/backend protocol, plus SCRAM-SHA-256 and MD5.
//!
//! Built for a transparent proxy: [`peek_frame`]/[`split_frame`] find frame boundaries without
//! copying, so most traffic is forwarded as raw bytes; [`decode_frontend`] and
//! [`decode_backend`] decode the few messages that matter into views borrowing from the frame,
//! without allocating. Encoders append to a `BytesMut`. No I/O, no async.
//!
//! Every decoder treats its input as hostile: malformed bytes yield a [`WireError`], never a
//! panic, and lengths are checked against [`Limits`] before anything is buffered.

#![warn(missing_docs)]

mod backend;
mod encode;
mod error;
mod error_fields;
mod framing;
mod frontend;
mod md5;
mod reader;
mod scram;
mod startup;
/// Message type bytes.
#[path = "tags.rs"]
pub mod tag;

pub use crate::backend::{
    auth_code, command_tag_rows, decode_backend, AuthRequest, BackendMessage, TransactionStatus,
};
pub use crate::encode::*;
pub use crate::error::WireError;
pub use crate::error_fields::{field, ErrorFields};
pub use crate::framing::{peek_frame, split_frame, Frame, FrameHeader, Limits, HEADER_LEN};
pub use crate::frontend::{
    bind_parameter, decode_frontend, decode_password, decode_sasl_initial_response,
    FrontendMessage, Target,
};
pub use crate::md5::{md5_password, md5_password_from_hash, md5_stored_hash};
pub use crate::scram::{
    ScramClient, ScramSecret, ScramServer, DEFAULT_ITERATIONS, MAX_CLIENT_ITERATIONS, SCRAM_SHA_256,
};
pub use crate::startup::{
    decode_startup, encode_cancel_request, encode_gssenc_request, encode_ssl_request,
    encode_startup, CancelKey, StartupMessage, StartupRequest, CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE, PROTOCOL_3_0, PROTOCOL_3_2, SSL_REQUEST_CODE,
};

#[cfg(test)]
mod robustness_tests;
