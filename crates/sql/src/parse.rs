//! Calls libpg_query directly rather than through `pg_query::parse`.
//!
//! Why: `pg_query::parse` also builds a summary of the tree (tables, functions) with helpers that `panic!` on
//! unexpected node variants, and its error type drops the cursor position PostgreSQL reports. The C entry
//! points below are linked by the `pg_query` crate (static `libpg_query`); their layouts mirror its bindgen
//! output for pg_query 18.

use std::ffi::{c_char, c_int, CStr, CString};

use pg_query::protobuf;
use prost::Message;

use crate::error::AnalysisError;

#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

extern "C" {
    fn pg_query_parse_protobuf_opts(
        input: *const c_char,
        parser_options: c_int,
    ) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
}

/// Parses `sql` with PostgreSQL's grammar into the protobuf parse tree.
pub(crate) fn parse(sql: &str) -> Result<protobuf::ParseResult, AnalysisError> {
    let input = CString::new(sql).map_err(|_| AnalysisError::NulByte)?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call; the result is freed exactly once
    // below, after everything we need was copied out of it.
    let result = unsafe { pg_query_parse_protobuf_opts(input.as_ptr(), 0) };
    let outcome = if !result.error.is_null() {
        // SAFETY: a non-null error points to a PgQueryError whose message is NULL or a C string.
        let (message, cursorpos) = unsafe {
            let err = &*result.error;
            let message = if err.message.is_null() {
                String::from("unknown parse error")
            } else {
                CStr::from_ptr(err.message).to_string_lossy().into_owned()
            };
            (message, err.cursorpos)
        };
        let position = u32::try_from(cursorpos).ok().filter(|p| *p > 0);
        Err(AnalysisError::Parse { message, position })
    } else if result.parse_tree.data.is_null() {
        Ok(protobuf::ParseResult::default())
    } else {
        // SAFETY: on success libpg_query returns `len` bytes at `data`, valid until the result is freed.
        let bytes = unsafe {
            std::slice::from_raw_parts(result.parse_tree.data as *const u8, result.parse_tree.len)
        };
        protobuf::ParseResult::decode(bytes).map_err(|e| {
            if e.to_string().contains("recursion limit") {
                AnalysisError::TooDeep
            } else {
                AnalysisError::Internal(e.to_string())
            }
        })
    };
    // SAFETY: `result` came from pg_query_parse_protobuf_opts and is not used after this.
    unsafe { pg_query_free_protobuf_parse_result(result) };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_position() {
        let tree = parse("SELECT 1; SELECT 2").unwrap();
        assert_eq!(tree.stmts.len(), 2);
        match parse("SELECT * FORM t") {
            Err(AnalysisError::Parse { message, position }) => {
                assert!(message.contains("syntax error"), "{message}");
                assert_eq!(position, Some(10));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nul_byte_is_an_error() {
        assert_eq!(parse("SELECT 1\0").unwrap_err(), AnalysisError::NulByte);
    }
}
