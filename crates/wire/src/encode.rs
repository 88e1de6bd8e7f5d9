//! Encoders appending complete frames to a `BytesMut`; lengths are back-patched.

use bytes::{BufMut, BytesMut};

use crate::backend::auth_code;
use crate::error_fields::field;
use crate::tag::{backend as b, frontend as f};
use crate::{CancelKey, TransactionStatus};

/// Starts a typed frame: writes the tag and a length placeholder. Returns the placeholder offset.
pub(crate) fn begin(out: &mut BytesMut, tag: u8) -> usize {
    out.put_u8(tag);
    begin_untagged(out)
}

/// Starts an untagged (startup-phase) packet.
pub(crate) fn begin_untagged(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_i32(0);
    start
}

/// Back-patches the length of the frame begun at `start` (the length counts itself).
pub(crate) fn finish(out: &mut BytesMut, start: usize) {
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Writes `s` NUL-terminated. Interior NULs are dropped: they would end the string early and
/// desynchronise the field layout of the message.
pub(crate) fn put_cstr(out: &mut BytesMut, s: &str) {
    if s.as_bytes().contains(&0) {
        out.extend(s.bytes().filter(|&c| c != 0));
    } else {
        out.put_slice(s.as_bytes());
    }
    out.put_u8(0);
}

/// Like `put_cstr` for bytes in a client encoding.
fn put_cbytes(out: &mut BytesMut, s: &[u8]) {
    out.extend(s.iter().copied().filter(|&c| c != 0));
    out.put_u8(0);
}

fn empty(out: &mut BytesMut, tag: u8) {
    out.put_u8(tag);
    out.put_i32(4);
}

/// An error or notice to send to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo<'a> {
    /// `"ERROR"`, `"FATAL"`, `"NOTICE"`, ... (sent both as `S` and non-localized `V`).
    pub severity: &'a str,
    /// SQLSTATE, e.g. `"42501"`.
    pub code: &'a str,
    /// Primary message.
    pub message: &'a str,
    /// Optional detail.
    pub detail: Option<&'a str>,
    /// Optional hint.
    pub hint: Option<&'a str>,
    /// Optional 1-based character position in the query text the error points at.
    pub position: Option<u32>,
}

fn error_like(tag: u8, e: &ErrorInfo, out: &mut BytesMut) {
    let start = begin(out, tag);
    let position = e.position.map(|p| p.to_string());
    for (code, value) in [
        (field::SEVERITY, Some(e.severity)),
        (field::SEVERITY_NONLOCALIZED, Some(e.severity)),
        (field::CODE, Some(e.code)),
        (field::MESSAGE, Some(e.message)),
        (field::DETAIL, e.detail),
        (field::HINT, e.hint),
        (field::POSITION, position.as_deref()),
    ] {
        if let Some(v) = value {
            out.put_u8(code);
            put_cstr(out, v);
        }
    }
    out.put_u8(0);
    finish(out, start);
}

/// Appends an ErrorResponse.
pub fn encode_error(e: &ErrorInfo, out: &mut BytesMut) {
    error_like(b::ERROR_RESPONSE, e, out);
}

/// Appends a NoticeResponse.
pub fn encode_notice(e: &ErrorInfo, out: &mut BytesMut) {
    error_like(b::NOTICE_RESPONSE, e, out);
}

/// Appends ReadyForQuery.
pub fn encode_ready_for_query(status: TransactionStatus, out: &mut BytesMut) {
    out.put_u8(b::READY_FOR_QUERY);
    out.put_i32(5);
    out.put_u8(status.as_byte());
}

/// Appends BackendKeyData.
pub fn encode_backend_key_data(key: CancelKey, out: &mut BytesMut) {
    out.put_u8(b::BACKEND_KEY_DATA);
    out.put_i32(12);
    out.put_i32(key.process_id);
    out.put_i32(key.secret_key);
}

/// Appends ParameterStatus.
pub fn encode_parameter_status(name: &str, value: &str, out: &mut BytesMut) {
    let start = begin(out, b::PARAMETER_STATUS);
    put_cstr(out, name);
    put_cstr(out, value);
    finish(out, start);
}

/// Appends CommandComplete.
pub fn encode_command_complete(tag: &str, out: &mut BytesMut) {
    let start = begin(out, b::COMMAND_COMPLETE);
    put_cstr(out, tag);
    finish(out, start);
}

/// Appends EmptyQueryResponse.
pub fn encode_empty_query_response(out: &mut BytesMut) {
    empty(out, b::EMPTY_QUERY_RESPONSE);
}

/// Appends NegotiateProtocolVersion: the newest minor version we support and the `_pq_.`
/// options we did not recognise.
pub fn encode_negotiate_protocol_version(
    newest_minor: i32,
    unrecognised: &[&str],
    out: &mut BytesMut,
) {
    let start = begin(out, b::NEGOTIATE_PROTOCOL_VERSION);
    out.put_i32(newest_minor);
    out.put_i32(i32::try_from(unrecognised.len()).unwrap_or(i32::MAX));
    for o in unrecognised {
        put_cstr(out, o);
    }
    finish(out, start);
}

fn auth_simple(code: i32, out: &mut BytesMut) {
    out.put_u8(b::AUTHENTICATION);
    out.put_i32(8);
    out.put_i32(code);
}

/// Appends AuthenticationOk.
pub fn encode_auth_ok(out: &mut BytesMut) {
    auth_simple(auth_code::OK, out);
}

/// Appends AuthenticationCleartextPassword.
pub fn encode_auth_cleartext(out: &mut BytesMut) {
    auth_simple(auth_code::CLEARTEXT, out);
}

/// Appends AuthenticationMD5Password.
pub fn encode_auth_md5(salt: [u8; 4], out: &mut BytesMut) {
    out.put_u8(b::AUTHENTICATION);
    out.put_i32(12);
    out.put_i32(auth_code::MD5);
    out.put_slice(&salt);
}

/// Appends AuthenticationSASL offering `mechanisms`.
pub fn encode_auth_sasl(mechanisms: &[&str], out: &mut BytesMut) {
    let start = begin(out, b::AUTHENTICATION);
    out.put_i32(auth_code::SASL);
    for m in mechanisms {
        put_cstr(out, m);
    }
    out.put_u8(0);
    finish(out, start);
}

fn auth_data(code: i32, data: &[u8], out: &mut BytesMut) {
    let start = begin(out, b::AUTHENTICATION);
    out.put_i32(code);
    out.put_slice(data);
    finish(out, start);
}

/// Appends AuthenticationSASLContinue carrying the server-first-message.
pub fn encode_auth_sasl_continue(data: &[u8], out: &mut BytesMut) {
    auth_data(auth_code::SASL_CONTINUE, data, out);
}

/// Appends AuthenticationSASLFinal carrying the server-final-message.
pub fn encode_auth_sasl_final(data: &[u8], out: &mut BytesMut) {
    auth_data(auth_code::SASL_FINAL, data, out);
}

/// Appends a simple Query.
pub fn encode_query(sql: &str, out: &mut BytesMut) {
    let start = begin(out, f::QUERY);
    put_cstr(out, sql);
    finish(out, start);
}

/// Appends Query with text already in the session's client encoding.
pub fn encode_query_bytes(sql: &[u8], out: &mut BytesMut) {
    let start = begin(out, f::QUERY);
    put_cbytes(out, sql);
    finish(out, start);
}

/// Appends Parse with text already in the session's client encoding and parameter type OIDs.
pub fn encode_parse_bytes(name: &str, sql: &[u8], param_types: &[u32], out: &mut BytesMut) {
    let start = begin(out, f::PARSE);
    put_cstr(out, name);
    put_cbytes(out, sql);
    out.put_u16(u16::try_from(param_types.len()).unwrap_or(u16::MAX));
    for oid in param_types.iter().take(usize::from(u16::MAX)) {
        out.put_u32(*oid);
    }
    finish(out, start);
}

/// Appends Parse with no parameter types specified.
pub fn encode_parse(name: &str, sql: &str, out: &mut BytesMut) {
    let start = begin(out, f::PARSE);
    put_cstr(out, name);
    put_cstr(out, sql);
    out.put_u16(0);
    finish(out, start);
}

/// Appends Parse with parameter type OIDs (0 leaves a parameter's type to the server).
pub fn encode_parse_with_types(name: &str, sql: &str, param_types: &[u32], out: &mut BytesMut) {
    let start = begin(out, f::PARSE);
    put_cstr(out, name);
    put_cstr(out, sql);
    out.put_u16(u16::try_from(param_types.len()).unwrap_or(u16::MAX));
    for oid in param_types.iter().take(usize::from(u16::MAX)) {
        out.put_u32(*oid);
    }
    finish(out, start);
}

/// Appends Close of the prepared statement `name`.
pub fn encode_close_statement(name: &str, out: &mut BytesMut) {
    let start = begin(out, f::CLOSE);
    out.put_u8(b'S');
    put_cstr(out, name);
    finish(out, start);
}

/// Appends Bind of `statement` into `portal` with no parameters and every result column in text format.
pub fn encode_bind_without_params(portal: &str, statement: &str, out: &mut BytesMut) {
    let start = begin(out, f::BIND);
    put_cstr(out, portal);
    put_cstr(out, statement);
    out.put_u16(0);
    out.put_u16(0);
    out.put_u16(0);
    finish(out, start);
}

/// Appends Describe of a portal.
pub fn encode_describe_portal(portal: &str, out: &mut BytesMut) {
    let start = begin(out, f::DESCRIBE);
    out.put_u8(b'P');
    put_cstr(out, portal);
    finish(out, start);
}

/// Appends Execute of `portal`, returning at most `max_rows` rows (0 = all).
pub fn encode_execute(portal: &str, max_rows: i32, out: &mut BytesMut) {
    let start = begin(out, f::EXECUTE);
    put_cstr(out, portal);
    out.put_i32(max_rows);
    finish(out, start);
}

/// Appends Sync.
pub fn encode_sync(out: &mut BytesMut) {
    empty(out, f::SYNC);
}

/// Appends Flush.
pub fn encode_flush(out: &mut BytesMut) {
    empty(out, f::FLUSH);
}

/// Appends Terminate.
pub fn encode_terminate(out: &mut BytesMut) {
    empty(out, f::TERMINATE);
}

/// Appends a PasswordMessage (a cleartext password or an `md5...` hash).
pub fn encode_password(password_or_md5: &str, out: &mut BytesMut) {
    let start = begin(out, f::AUTH_RESPONSE);
    put_cstr(out, password_or_md5);
    finish(out, start);
}

/// Appends SASLInitialResponse.
pub fn encode_sasl_initial_response(mechanism: &str, data: &[u8], out: &mut BytesMut) {
    let start = begin(out, f::AUTH_RESPONSE);
    put_cstr(out, mechanism);
    out.put_i32(i32::try_from(data.len()).unwrap_or(i32::MAX));
    out.put_slice(data);
    finish(out, start);
}

/// Appends SASLResponse.
pub fn encode_sasl_response(data: &[u8], out: &mut BytesMut) {
    let start = begin(out, f::AUTH_RESPONSE);
    out.put_slice(data);
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_frontend, FrontendMessage, Target};

    fn decoded(frame: &BytesMut) -> FrontendMessage<'_> {
        match decode_frontend(frame[0], &frame[5..]) {
            Ok(msg) => msg,
            Err(e) => panic!("undecodable frame: {e}"),
        }
    }

    #[test]
    fn extended_messages_decode_as_sent() {
        let mut out = BytesMut::new();
        encode_bind_without_params("p", "s", &mut out);
        assert!(matches!(
            decoded(&out),
            FrontendMessage::Bind {
                portal: "p",
                statement: "s",
                param_count: 0
            }
        ));
        out.clear();
        encode_describe_portal("p", &mut out);
        assert!(matches!(
            decoded(&out),
            FrontendMessage::Describe {
                target: Target::Portal,
                name: "p"
            }
        ));
        out.clear();
        encode_execute("", 11, &mut out);
        assert!(matches!(
            decoded(&out),
            FrontendMessage::Execute {
                portal: "",
                max_rows: 11
            }
        ));
    }
}
