//! Typed decoding of client-to-server messages. Borrowed from the frame body; never allocates.

use crate::reader::Reader;
use crate::tag::frontend as t;
use crate::WireError;

/// Whether a Describe/Close refers to a prepared statement or a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `'S'`: a prepared statement.
    Statement,
    /// `'P'`: a portal.
    Portal,
}

impl Target {
    fn from_byte(b: u8) -> Result<Self, WireError> {
        match b {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            _ => Err(WireError::Malformed(
                "describe/close target is neither 'S' nor 'P'",
            )),
        }
    }

    /// The wire byte (`'S'` or `'P'`).
    pub fn as_byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// A decoded frontend message, borrowing from the body it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// Simple query.
    Query {
        /// The SQL text (may hold several statements), in the session's client encoding.
        sql: &'a [u8],
    },
    /// Parse (extended protocol).
    Parse {
        /// Statement name, empty for the unnamed statement.
        name: &'a str,
        /// The SQL text, in the session's client encoding.
        sql: &'a [u8],
        /// Number of parameter type OIDs the client specified.
        param_types: u16,
    },
    /// Bind.
    Bind {
        /// Destination portal, empty for the unnamed portal.
        portal: &'a str,
        /// Source prepared statement.
        statement: &'a str,
        /// Number of parameter values.
        param_count: u16,
    },
    /// Describe.
    Describe {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: &'a str,
    },
    /// Execute.
    Execute {
        /// Portal to run.
        portal: &'a str,
        /// Row limit, 0 for none.
        max_rows: i32,
    },
    /// Close.
    Close {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: &'a str,
    },
    /// Sync.
    Sync,
    /// Flush.
    Flush,
    /// Terminate.
    Terminate,
    /// CopyData payload.
    CopyData(&'a [u8]),
    /// CopyDone.
    CopyDone,
    /// CopyFail.
    CopyFail {
        /// The client's reason.
        message: &'a str,
    },
    /// Fast-path FunctionCall; its arguments are not decoded.
    FunctionCall {
        /// The OID of the function it calls.
        function: u32,
    },
    /// `'p'`: PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse. Only the caller
    /// knows the authentication state; see [`decode_sasl_initial_response`] and
    /// [`decode_password`].
    AuthResponse(&'a [u8]),
}

/// Decodes a frontend message. `body` is the bytes after the 4-byte length.
pub fn decode_frontend(tag: u8, body: &[u8]) -> Result<FrontendMessage<'_>, WireError> {
    let mut r = Reader::new(body);
    let msg = match tag {
        t::QUERY => FrontendMessage::Query {
            sql: r.cstr_bytes("Query text")?,
        },
        t::PARSE => {
            let name = r.cstr("Parse statement name")?;
            let sql = r.cstr_bytes("Parse query text")?;
            let param_types = r.u16("Parse parameter count")?;
            r.take(usize::from(param_types) * 4, "Parse parameter types")?;
            FrontendMessage::Parse {
                name,
                sql,
                param_types,
            }
        }
        t::BIND => decode_bind(&mut r)?,
        t::DESCRIBE => FrontendMessage::Describe {
            target: Target::from_byte(r.u8("Describe target")?)?,
            name: r.cstr("Describe name")?,
        },
        t::EXECUTE => FrontendMessage::Execute {
            portal: r.cstr("Execute portal")?,
            max_rows: r.i32("Execute row limit")?,
        },
        t::CLOSE => FrontendMessage::Close {
            target: Target::from_byte(r.u8("Close target")?)?,
            name: r.cstr("Close name")?,
        },
        t::SYNC => FrontendMessage::Sync,
        t::FLUSH => FrontendMessage::Flush,
        t::TERMINATE => FrontendMessage::Terminate,
        t::COPY_DATA => FrontendMessage::CopyData(r.rest()),
        t::COPY_DONE => FrontendMessage::CopyDone,
        t::COPY_FAIL => FrontendMessage::CopyFail {
            message: r.cstr("CopyFail message")?,
        },
        t::FUNCTION_CALL => {
            let function = r.i32("FunctionCall function")? as u32;
            r.rest();
            FrontendMessage::FunctionCall { function }
        }
        t::AUTH_RESPONSE => FrontendMessage::AuthResponse(r.rest()),
        tag => return Err(WireError::UnknownMessage { tag }),
    };
    r.finish("trailing bytes after message")?;
    Ok(msg)
}

/// Walks the whole Bind layout so that a malformed Bind is rejected before it is forwarded.
fn decode_bind<'a>(r: &mut Reader<'a>) -> Result<FrontendMessage<'a>, WireError> {
    let portal = r.cstr("Bind portal")?;
    let statement = r.cstr("Bind statement")?;
    let formats = r.u16("Bind format count")?;
    r.take(usize::from(formats) * 2, "Bind parameter formats")?;
    let param_count = r.u16("Bind parameter count")?;
    for _ in 0..param_count {
        let len = r.i32("Bind parameter length")?;
        if len >= 0 {
            r.take(len as usize, "Bind parameter value")?;
        } else if len != -1 {
            return Err(WireError::Malformed("Bind parameter length is negative"));
        }
    }
    let results = r.u16("Bind result format count")?;
    r.take(usize::from(results) * 2, "Bind result formats")?;
    Ok(FrontendMessage::Bind {
        portal,
        statement,
        param_count,
    })
}

/// The value of parameter `index` (0-based) in the body of a Bind message: `None` for SQL NULL or a
/// parameter the message lacks. A text value is the same bytes in text and binary format.
pub fn bind_parameter(body: &[u8], index: usize) -> Result<Option<&[u8]>, WireError> {
    let mut r = Reader::new(body);
    r.cstr("Bind portal")?;
    r.cstr("Bind statement")?;
    let formats = r.u16("Bind format count")?;
    r.take(usize::from(formats) * 2, "Bind parameter formats")?;
    let param_count = r.u16("Bind parameter count")?;
    for i in 0..usize::from(param_count) {
        let len = r.i32("Bind parameter length")?;
        let value = match len {
            -1 => None,
            len if len >= 0 => Some(r.take(len as usize, "Bind parameter value")?),
            _ => return Err(WireError::Malformed("Bind parameter length is negative")),
        };
        if i == index {
            return Ok(value);
        }
    }
    Ok(None)
}

/// Parses the body of a SASLInitialResponse: `(mechanism, initial client data)`.
/// A data length of -1 (no data) yields an empty slice.
pub fn decode_sasl_initial_response(body: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let mut r = Reader::new(body);
    let mechanism = r.cstr("SASL mechanism")?;
    let len = r.i32("SASL data length")?;
    let data = match len {
        -1 => &[][..],
        n if n >= 0 => r.take(n as usize, "SASL data")?,
        _ => return Err(WireError::Malformed("SASL data length is negative")),
    };
    r.finish("trailing bytes after SASL data")?;
    Ok((mechanism, data))
}

/// Parses the body of a PasswordMessage (cleartext or `md5...` password).
pub fn decode_password(body: &[u8]) -> Result<&str, WireError> {
    let mut r = Reader::new(body);
    let pw = r.cstr("password")?;
    r.finish("trailing bytes after password")?;
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::*;
    use crate::framing::split_frame;
    use bytes::{BufMut, BytesMut};

    fn one(buf: &mut BytesMut) -> (u8, Vec<u8>) {
        let f = split_frame(buf, 1 << 20).unwrap().unwrap();
        (f.tag, f.body().to_vec())
    }

    #[test]
    fn encoded_client_messages_decode() {
        let mut buf = BytesMut::new();
        encode_query("SELECT 1", &mut buf);
        encode_parse("s1", "SELECT $1", &mut buf);
        encode_sync(&mut buf);
        encode_flush(&mut buf);
        encode_terminate(&mut buf);
        encode_password("secret", &mut buf);
        encode_sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut buf);
        encode_sasl_response(b"c=biws", &mut buf);

        let (tg, b) = one(&mut buf);
        assert_eq!(
            decode_frontend(tg, &b).unwrap(),
            FrontendMessage::Query { sql: b"SELECT 1" }
        );
        let (tg, b) = one(&mut buf);
        assert_eq!(
            decode_frontend(tg, &b).unwrap(),
            FrontendMessage::Parse {
                name: "s1",
                sql: b"SELECT $1",
                param_types: 0
            }
        );
        for want in [
            FrontendMessage::Sync,
            FrontendMessage::Flush,
            FrontendMessage::Terminate,
        ] {
            let (tg, b) = one(&mut buf);
            assert_eq!(decode_frontend(tg, &b).unwrap(), want);
        }
        let (tg, b) = one(&mut buf);
        assert_eq!(
            decode_frontend(tg, &b).unwrap(),
            FrontendMessage::AuthResponse(b"secret\0")
        );
        assert_eq!(decode_password(&b).unwrap(), "secret");
        let (tg, b) = one(&mut buf);
        assert_eq!(tg, b'p');
        assert_eq!(
            decode_sasl_initial_response(&b).unwrap(),
            ("SCRAM-SHA-256", &b"n,,n=,r=abc"[..])
        );
        let (tg, b) = one(&mut buf);
        assert_eq!(
            decode_frontend(tg, &b).unwrap(),
            FrontendMessage::AuthResponse(b"c=biws")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn hand_built_extended_messages_decode() {
        let mut b = BytesMut::new();
        b.put_slice(b"p1\0s1\0");
        b.put_u16(1);
        b.put_u16(1); // one binary format code
        b.put_u16(3);
        b.put_i32(2);
        b.put_slice(b"hi");
        b.put_i32(-1);
        b.put_i32(0);
        b.put_u16(0);
        assert_eq!(
            decode_frontend(b'B', &b).unwrap(),
            FrontendMessage::Bind {
                portal: "p1",
                statement: "s1",
                param_count: 3
            }
        );
        // Claiming a parameter longer than the body is malformed, not a panic.
        let mut bad = BytesMut::new();
        bad.put_slice(b"\0\0");
        bad.put_u16(0);
        bad.put_u16(1);
        bad.put_i32(1000);
        assert!(decode_frontend(b'B', &bad).is_err());

        let mut p = BytesMut::new();
        p.put_slice(b"\0SELECT $1\0");
        p.put_u16(1);
        p.put_u32(23);
        assert_eq!(
            decode_frontend(b'P', &p).unwrap(),
            FrontendMessage::Parse {
                name: "",
                sql: b"SELECT $1",
                param_types: 1
            }
        );
        assert!(decode_frontend(b'P', &p[..p.len() - 1]).is_err());

        assert_eq!(
            decode_frontend(b'D', b"Sstmt\0").unwrap(),
            FrontendMessage::Describe {
                target: Target::Statement,
                name: "stmt"
            }
        );
        assert_eq!(
            decode_frontend(b'C', b"P\0").unwrap(),
            FrontendMessage::Close {
                target: Target::Portal,
                name: ""
            }
        );
        assert!(decode_frontend(b'C', b"X\0").is_err());
        assert_eq!(
            decode_frontend(b'E', b"\0\0\0\0\x0a").unwrap(),
            FrontendMessage::Execute {
                portal: "",
                max_rows: 10
            }
        );
        assert_eq!(
            decode_frontend(b'd', b"1\t2\n").unwrap(),
            FrontendMessage::CopyData(b"1\t2\n")
        );
        assert_eq!(
            decode_frontend(b'c', b"").unwrap(),
            FrontendMessage::CopyDone
        );
        assert_eq!(
            decode_frontend(b'f', b"oops\0").unwrap(),
            FrontendMessage::CopyFail { message: "oops" }
        );
        assert_eq!(
            decode_frontend(b'F', b"\0\0\x0f\xa2\0\0").unwrap(),
            FrontendMessage::FunctionCall { function: 4002 }
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(
            decode_frontend(b'z', b""),
            Err(WireError::UnknownMessage { tag: b'z' })
        );
        assert!(decode_frontend(b'Q', b"SELECT 1").is_err(), "no terminator");
        assert!(decode_frontend(b'Q', b"SELECT 1\0x").is_err(), "trailing");
        // Statement text is in the session's client encoding, which only the session knows.
        assert_eq!(
            decode_frontend(b'Q', b"\xff\0").unwrap(),
            FrontendMessage::Query { sql: b"\xff" }
        );
        assert!(
            decode_frontend(b'P', b"\xff\0SELECT 1\0\0\0").is_err(),
            "a statement name is not UTF-8"
        );
        assert!(decode_frontend(b'S', b"x").is_err());
        assert!(decode_frontend(b'E', b"\0\0").is_err());
        assert!(decode_sasl_initial_response(b"SCRAM-SHA-256\0\0\0\0\x05abc").is_err());
        assert!(decode_sasl_initial_response(b"SCRAM-SHA-256\0\xff\xff\xff\xfe").is_err());
        assert_eq!(
            decode_sasl_initial_response(b"M\0\xff\xff\xff\xff").unwrap(),
            ("M", &b""[..])
        );
    }
}
