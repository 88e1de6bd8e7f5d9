//! Typed decoding of server-to-client messages. Borrowed from the frame body.

use crate::reader::Reader;
use crate::tag::backend as t;
use crate::{CancelKey, ErrorFields, WireError};

/// A decoded backend message. Variants without fields are recognised but not decoded, since
/// the proxy forwards them as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// An Authentication* request.
    Authentication(AuthRequest<'a>),
    /// BackendKeyData (4-byte key only).
    BackendKeyData(CancelKey),
    /// ParameterStatus.
    ParameterStatus {
        /// Parameter name.
        name: &'a str,
        /// Its current value.
        value: &'a str,
    },
    /// ReadyForQuery.
    ReadyForQuery(TransactionStatus),
    /// CommandComplete.
    CommandComplete {
        /// The command tag, e.g. `"INSERT 0 3"`; see [`command_tag_rows`].
        tag: &'a str,
    },
    /// ErrorResponse.
    ErrorResponse(ErrorFields<'a>),
    /// NoticeResponse.
    NoticeResponse(ErrorFields<'a>),
    /// RowDescription.
    RowDescription,
    /// DataRow.
    DataRow,
    /// ParseComplete.
    ParseComplete,
    /// BindComplete.
    BindComplete,
    /// CloseComplete.
    CloseComplete,
    /// NoData.
    NoData,
    /// ParameterDescription.
    ParameterDescription,
    /// PortalSuspended.
    PortalSuspended,
    /// EmptyQueryResponse.
    EmptyQueryResponse,
    /// CopyInResponse.
    CopyInResponse,
    /// CopyOutResponse.
    CopyOutResponse,
    /// CopyBothResponse.
    CopyBothResponse,
    /// CopyData payload.
    CopyData(&'a [u8]),
    /// CopyDone.
    CopyDone,
    /// NotificationResponse.
    NotificationResponse,
    /// NegotiateProtocolVersion.
    NegotiateProtocolVersion,
    /// FunctionCallResponse.
    FunctionCallResponse,
}

/// The Authentication* request family (tag `'R'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// AuthenticationOk (0).
    Ok,
    /// AuthenticationCleartextPassword (3).
    CleartextPassword,
    /// AuthenticationMD5Password (5).
    Md5Password {
        /// Salt to hash with.
        salt: [u8; 4],
    },
    /// AuthenticationSASL (10) with the offered mechanisms.
    Sasl {
        /// Mechanism names, e.g. `SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`.
        mechanisms: Vec<&'a str>,
    },
    /// AuthenticationSASLContinue (11): server-first-message.
    SaslContinue(&'a [u8]),
    /// AuthenticationSASLFinal (12): server-final-message.
    SaslFinal(&'a [u8]),
    /// Any other request code (Kerberos, GSS, SSPI, ...).
    Other(i32),
}

/// Transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `'I'`: not in a transaction block.
    Idle,
    /// `'T'`: in a transaction block.
    InTransaction,
    /// `'E'`: in a failed transaction block.
    Failed,
}

impl TransactionStatus {
    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }

    /// Parses the wire byte.
    pub fn from_byte(b: u8) -> Result<Self, WireError> {
        match b {
            b'I' => Ok(TransactionStatus::Idle),
            b'T' => Ok(TransactionStatus::InTransaction),
            b'E' => Ok(TransactionStatus::Failed),
            _ => Err(WireError::Malformed("unknown transaction status")),
        }
    }
}

/// Authentication request codes.
pub mod auth_code {
    /// AuthenticationOk.
    pub const OK: i32 = 0;
    /// AuthenticationCleartextPassword.
    pub const CLEARTEXT: i32 = 3;
    /// AuthenticationMD5Password.
    pub const MD5: i32 = 5;
    /// AuthenticationSASL.
    pub const SASL: i32 = 10;
    /// AuthenticationSASLContinue.
    pub const SASL_CONTINUE: i32 = 11;
    /// AuthenticationSASLFinal.
    pub const SASL_FINAL: i32 = 12;
}

/// Decodes a backend message. `body` is the bytes after the 4-byte length.
pub fn decode_backend(tag: u8, body: &[u8]) -> Result<BackendMessage<'_>, WireError> {
    let mut r = Reader::new(body);
    let msg = match tag {
        t::AUTHENTICATION => BackendMessage::Authentication(decode_auth(&mut r)?),
        t::BACKEND_KEY_DATA => {
            let process_id = r.i32("BackendKeyData process id")?;
            if r.remaining() != 4 {
                return Err(WireError::UnsupportedCancelKey(r.remaining()));
            }
            let secret_key = r.i32("BackendKeyData key")?;
            BackendMessage::BackendKeyData(CancelKey {
                process_id,
                secret_key,
            })
        }
        t::PARAMETER_STATUS => BackendMessage::ParameterStatus {
            name: r.cstr("ParameterStatus name")?,
            value: r.cstr("ParameterStatus value")?,
        },
        t::READY_FOR_QUERY => BackendMessage::ReadyForQuery(TransactionStatus::from_byte(
            r.u8("ReadyForQuery status")?,
        )?),
        t::COMMAND_COMPLETE => BackendMessage::CommandComplete {
            tag: r.cstr("CommandComplete tag")?,
        },
        t::ERROR_RESPONSE => BackendMessage::ErrorResponse(ErrorFields::parse(r.rest())?),
        t::NOTICE_RESPONSE => BackendMessage::NoticeResponse(ErrorFields::parse(r.rest())?),
        t::COPY_DATA => BackendMessage::CopyData(r.rest()),
        other => {
            // Recognised but not decoded: the proxy forwards these untouched.
            r.rest();
            match other {
                t::ROW_DESCRIPTION => BackendMessage::RowDescription,
                t::DATA_ROW => BackendMessage::DataRow,
                t::PARSE_COMPLETE => BackendMessage::ParseComplete,
                t::BIND_COMPLETE => BackendMessage::BindComplete,
                t::CLOSE_COMPLETE => BackendMessage::CloseComplete,
                t::NO_DATA => BackendMessage::NoData,
                t::PARAMETER_DESCRIPTION => BackendMessage::ParameterDescription,
                t::PORTAL_SUSPENDED => BackendMessage::PortalSuspended,
                t::EMPTY_QUERY_RESPONSE => BackendMessage::EmptyQueryResponse,
                t::COPY_IN_RESPONSE => BackendMessage::CopyInResponse,
                t::COPY_OUT_RESPONSE => BackendMessage::CopyOutResponse,
                t::COPY_BOTH_RESPONSE => BackendMessage::CopyBothResponse,
                t::COPY_DONE => BackendMessage::CopyDone,
                t::NOTIFICATION_RESPONSE => BackendMessage::NotificationResponse,
                t::NEGOTIATE_PROTOCOL_VERSION => BackendMessage::NegotiateProtocolVersion,
                t::FUNCTION_CALL_RESPONSE => BackendMessage::FunctionCallResponse,
                tag => return Err(WireError::UnknownMessage { tag }),
            }
        }
    };
    r.finish("trailing bytes after message")?;
    Ok(msg)
}

fn decode_auth<'a>(r: &mut Reader<'a>) -> Result<AuthRequest<'a>, WireError> {
    Ok(match r.i32("authentication code")? {
        auth_code::OK => AuthRequest::Ok,
        auth_code::CLEARTEXT => AuthRequest::CleartextPassword,
        auth_code::MD5 => AuthRequest::Md5Password {
            salt: r.array("MD5 salt")?,
        },
        auth_code::SASL => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr("SASL mechanism list")?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            AuthRequest::Sasl { mechanisms }
        }
        auth_code::SASL_CONTINUE => AuthRequest::SaslContinue(r.rest()),
        auth_code::SASL_FINAL => AuthRequest::SaslFinal(r.rest()),
        other => {
            r.rest();
            AuthRequest::Other(other)
        }
    })
}

/// Rows affected or fetched according to a CommandComplete tag: `"SELECT 5"` → 5,
/// `"INSERT 0 3"` → 3, likewise UPDATE, DELETE, MERGE, COPY, FETCH, MOVE. `None` for tags
/// without a count such as `"CREATE TABLE"`.
pub fn command_tag_rows(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let count = match words.next()? {
        "INSERT" => words.nth(1)?,
        "SELECT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE" => words.next()?,
        _ => return None,
    };
    if words.next().is_some() {
        return None;
    }
    count.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::*;
    use crate::framing::split_frame;
    use crate::ErrorInfo;
    use bytes::{BufMut, BytesMut};

    fn decode_all(buf: &mut BytesMut) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(f) = split_frame(buf, 1 << 20).unwrap() {
            v.push((f.tag, f.body().to_vec()));
        }
        assert!(buf.is_empty());
        v
    }

    #[test]
    fn encoded_server_messages_decode() {
        let mut buf = BytesMut::new();
        encode_auth_ok(&mut buf);
        encode_auth_cleartext(&mut buf);
        encode_auth_md5(*b"salt", &mut buf);
        encode_auth_sasl(&["SCRAM-SHA-256"], &mut buf);
        encode_auth_sasl_continue(b"r=x,s=y,i=1", &mut buf);
        encode_auth_sasl_final(b"v=abc", &mut buf);
        let key = CancelKey {
            process_id: 77,
            secret_key: 99,
        };
        encode_backend_key_data(key, &mut buf);
        encode_parameter_status("server_version", "15.4", &mut buf);
        encode_ready_for_query(TransactionStatus::InTransaction, &mut buf);
        encode_command_complete("INSERT 0 3", &mut buf);
        encode_empty_query_response(&mut buf);
        encode_negotiate_protocol_version(0, &["_pq_.x"], &mut buf);
        let frames = decode_all(&mut buf);
        let got: Vec<_> = frames
            .iter()
            .map(|(t, b)| decode_backend(*t, b).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                BackendMessage::Authentication(AuthRequest::Ok),
                BackendMessage::Authentication(AuthRequest::CleartextPassword),
                BackendMessage::Authentication(AuthRequest::Md5Password { salt: *b"salt" }),
                BackendMessage::Authentication(AuthRequest::Sasl {
                    mechanisms: vec!["SCRAM-SHA-256"]
                }),
                BackendMessage::Authentication(AuthRequest::SaslContinue(b"r=x,s=y,i=1")),
                BackendMessage::Authentication(AuthRequest::SaslFinal(b"v=abc")),
                BackendMessage::BackendKeyData(key),
                BackendMessage::ParameterStatus {
                    name: "server_version",
                    value: "15.4"
                },
                BackendMessage::ReadyForQuery(TransactionStatus::InTransaction),
                BackendMessage::CommandComplete { tag: "INSERT 0 3" },
                BackendMessage::EmptyQueryResponse,
                BackendMessage::NegotiateProtocolVersion,
            ]
        );
        // NegotiateProtocolVersion layout: minor, count, names.
        assert_eq!(frames[11].1, b"\0\0\0\0\0\0\0\x01_pq_.x\0");
    }

    #[test]
    fn error_and_notice_round_trip() {
        let info = ErrorInfo {
            severity: "FATAL",
            code: "28P01",
            message: "password authentication failed for user \"bob\"",
            detail: Some("d"),
            hint: None,
            position: None,
        };
        let mut buf = BytesMut::new();
        encode_error(&info, &mut buf);
        encode_notice(
            &ErrorInfo {
                severity: "NOTICE",
                hint: Some("h"),
                position: None,
                ..info
            },
            &mut buf,
        );
        let frames = decode_all(&mut buf);
        let BackendMessage::ErrorResponse(e) = decode_backend(frames[0].0, &frames[0].1).unwrap()
        else {
            panic!()
        };
        assert_eq!(e.severity(), Some("FATAL"));
        assert_eq!(e.get(b'S'), Some("FATAL"));
        assert_eq!(e.sqlstate(), Some("28P01"));
        assert_eq!(e.message(), Some(info.message));
        assert_eq!(e.detail(), Some("d"));
        assert_eq!(e.hint(), None);
        let codes: Vec<u8> = e.iter().map(|(c, _)| c).collect();
        assert_eq!(codes, b"SVCMD");
        let BackendMessage::NoticeResponse(n) = decode_backend(frames[1].0, &frames[1].1).unwrap()
        else {
            panic!()
        };
        assert_eq!(n.severity(), Some("NOTICE"));
        assert_eq!(n.hint(), Some("h"));
    }

    #[test]
    fn error_fields_tolerate_non_utf8_values_but_not_bad_layout() {
        let e = ErrorFields::parse(b"SERROR\0M\xe9t\xe9\0C42P01\0\0").unwrap();
        assert_eq!(e.sqlstate(), Some("42P01"));
        assert_eq!(e.message(), None);
        assert_eq!(e.iter_raw().nth(1), Some((b'M', &b"\xe9t\xe9"[..])));
        assert!(ErrorFields::parse(b"").is_err());
        assert!(ErrorFields::parse(b"SERROR\0").is_err());
        assert!(ErrorFields::parse(b"SERROR").is_err());
        assert!(ErrorFields::parse(b"\0\0").is_err());
        assert!(ErrorFields::parse(b"\0").unwrap().iter().next().is_none());
    }

    #[test]
    fn encoded_nul_bytes_cannot_break_framing() {
        let mut buf = BytesMut::new();
        encode_command_complete("SEL\0ECT 1", &mut buf);
        let frames = decode_all(&mut buf);
        assert_eq!(
            decode_backend(frames[0].0, &frames[0].1).unwrap(),
            BackendMessage::CommandComplete { tag: "SELECT 1" }
        );
    }

    #[test]
    fn malformed_backend_messages() {
        assert_eq!(
            decode_backend(b'!', b""),
            Err(WireError::UnknownMessage { tag: b'!' })
        );
        assert!(decode_backend(b'Z', b"Q").is_err());
        assert!(decode_backend(b'Z', b"").is_err());
        assert!(decode_backend(b'Z', b"II").is_err());
        assert!(decode_backend(b'R', b"\0\0\0").is_err());
        assert!(decode_backend(b'R', b"\0\0\0\x05ab").is_err());
        assert!(decode_backend(b'R', b"\0\0\0\x0aSCRAM").is_err());
        assert!(decode_backend(b'S', b"a\0").is_err());
        assert_eq!(
            decode_backend(b'R', b"\0\0\0\x07").unwrap(),
            BackendMessage::Authentication(AuthRequest::Other(7))
        );
        // Protocol 3.2 long cancel keys are refused.
        let mut k = BytesMut::new();
        k.put_i32(1);
        k.put_bytes(1, 32);
        assert_eq!(
            decode_backend(b'K', &k),
            Err(WireError::UnsupportedCancelKey(32))
        );
        for tag in *b"TD123ntsIGHWcAvV" {
            assert!(decode_backend(tag, b"whatever").is_ok(), "{}", tag as char);
        }
    }

    #[test]
    fn command_tags() {
        for (tag, want) in [
            ("SELECT 5", Some(5)),
            ("INSERT 0 3", Some(3)),
            ("UPDATE 2", Some(2)),
            ("DELETE 0", Some(0)),
            ("COPY 7", Some(7)),
            ("FETCH 1", Some(1)),
            ("MOVE 2", Some(2)),
            ("MERGE 1", Some(1)),
            ("CREATE TABLE", None),
            ("BEGIN", None),
            ("INSERT 0", None),
            ("SELECT", None),
            ("SELECT x", None),
            ("SELECT 1 2", None),
            ("", None),
        ] {
            assert_eq!(command_tag_rows(tag), want, "{tag}");
        }
    }
}
