//! Untagged startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.

use bytes::{Buf, BufMut, BytesMut};

use crate::encode::{begin_untagged, finish, put_cstr};
use crate::reader::Reader;
use crate::{Limits, WireError};

/// Protocol 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 196_608;
/// Protocol 3.2 (PostgreSQL 18), which clients may request and expect NegotiateProtocolVersion for.
pub const PROTOCOL_3_2: u32 = 196_610;
/// Request code of an SSLRequest.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// Request code of a GSSENCRequest.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Request code of a CancelRequest.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// One decoded startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupRequest {
    /// A StartupMessage opening a session.
    Startup(StartupMessage),
    /// The client asks to switch to TLS.
    SslRequest,
    /// The client asks to switch to GSSAPI encryption.
    GssEncRequest,
    /// A query cancellation for another session.
    Cancel(CancelKey),
}

/// A StartupMessage: protocol version and the connection parameters in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    /// Requested protocol, major in the high 16 bits (any 3.x is accepted by the decoder).
    pub protocol_version: u32,
    /// Parameters such as `user`, `database`, `application_name`, `options`.
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    /// Value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `user` parameter.
    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    /// The `database` parameter (PostgreSQL defaults it to the user name when absent).
    pub fn database(&self) -> Option<&str> {
        self.get("database")
    }

    /// Minor protocol version requested (0 for 3.0, 2 for 3.2).
    pub fn minor_version(&self) -> u16 {
        (self.protocol_version & 0xffff) as u16
    }
}

/// Cancellation key of a backend (4-byte form of protocol 3.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CancelKey {
    /// Backend process id.
    pub process_id: i32,
    /// Secret key.
    pub secret_key: i32,
}

/// Decodes and consumes one whole startup-phase packet from the front of `buf`.
///
/// Returns `Ok(None)` (consuming nothing) until the packet is complete. Errors on a length
/// below 8 or above `limits.max_startup_len`, on protocol majors other than 3, on cancel keys
/// that are not 4 bytes, and on malformed or non-UTF-8 parameters.
pub fn decode_startup(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<StartupRequest>, WireError> {
    let Some(len_bytes) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
    if len < 8 {
        return Err(WireError::MessageTooShort(len));
    }
    if len > limits.max_startup_len {
        return Err(WireError::MessageTooLong {
            len,
            max: limits.max_startup_len,
        });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let request = parse_packet(buf.get(4..len).unwrap_or_default())?;
    buf.advance(len);
    Ok(Some(request))
}

fn parse_packet(packet: &[u8]) -> Result<StartupRequest, WireError> {
    let mut r = Reader::new(packet);
    let code = r.i32("startup code")? as u32;
    match code {
        SSL_REQUEST_CODE => {
            r.finish("SSLRequest has trailing bytes")?;
            Ok(StartupRequest::SslRequest)
        }
        GSSENC_REQUEST_CODE => {
            r.finish("GSSENCRequest has trailing bytes")?;
            Ok(StartupRequest::GssEncRequest)
        }
        CANCEL_REQUEST_CODE => {
            let process_id = r.i32("CancelRequest process id")?;
            if r.remaining() != 4 {
                return Err(WireError::UnsupportedCancelKey(r.remaining()));
            }
            let secret_key = r.i32("CancelRequest key")?;
            Ok(StartupRequest::Cancel(CancelKey {
                process_id,
                secret_key,
            }))
        }
        v if v >> 16 == 3 => {
            let mut params = Vec::new();
            loop {
                let name = r.cstr("startup parameter name")?;
                if name.is_empty() {
                    break;
                }
                let value = r.cstr("startup parameter value")?;
                params.push((name.to_owned(), value.to_owned()));
            }
            r.finish("startup packet has bytes after its terminator")?;
            Ok(StartupRequest::Startup(StartupMessage {
                protocol_version: v,
                params,
            }))
        }
        v => Err(WireError::UnsupportedProtocolVersion(v)),
    }
}

/// Appends a StartupMessage.
pub fn encode_startup(msg: &StartupMessage, out: &mut BytesMut) {
    let start = begin_untagged(out);
    out.put_u32(msg.protocol_version);
    for (k, v) in &msg.params {
        put_cstr(out, k);
        put_cstr(out, v);
    }
    out.put_u8(0);
    finish(out, start);
}

/// Appends a CancelRequest for `key`.
pub fn encode_cancel_request(key: CancelKey, out: &mut BytesMut) {
    out.put_i32(16);
    out.put_u32(CANCEL_REQUEST_CODE);
    out.put_i32(key.process_id);
    out.put_i32(key.secret_key);
}

/// Appends an SSLRequest.
pub fn encode_ssl_request(out: &mut BytesMut) {
    out.put_i32(8);
    out.put_u32(SSL_REQUEST_CODE);
}

/// Appends a GSSENCRequest.
pub fn encode_gssenc_request(out: &mut BytesMut) {
    out.put_i32(8);
    out.put_u32(GSSENC_REQUEST_CODE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup() -> StartupMessage {
        StartupMessage {
            protocol_version: PROTOCOL_3_0,
            params: vec![
                ("user".into(), "alice".into()),
                ("database".into(), "shop".into()),
                ("application_name".into(), "psql".into()),
            ],
        }
    }

    #[test]
    fn startup_round_trip_and_accessors() {
        let mut buf = BytesMut::new();
        encode_startup(&startup(), &mut buf);
        buf.extend_from_slice(b"next");
        let got = decode_startup(&mut buf, &Limits::default())
            .unwrap()
            .unwrap();
        let StartupRequest::Startup(m) = got else {
            panic!("{got:?}")
        };
        assert_eq!(m, startup());
        assert_eq!(m.user(), Some("alice"));
        assert_eq!(m.database(), Some("shop"));
        assert_eq!(m.get("nope"), None);
        assert_eq!(m.minor_version(), 0);
        assert_eq!(&buf[..], b"next", "exactly one packet consumed");
    }

    #[test]
    fn startup_incomplete_consumes_nothing() {
        let mut full = BytesMut::new();
        encode_startup(&startup(), &mut full);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(decode_startup(&mut part, &Limits::default()).unwrap(), None);
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn protocol_3_2_is_accepted_and_2_0_is_not() {
        let mut m = startup();
        m.protocol_version = PROTOCOL_3_2;
        let mut buf = BytesMut::new();
        encode_startup(&m, &mut buf);
        let Some(StartupRequest::Startup(got)) =
            decode_startup(&mut buf, &Limits::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(got.minor_version(), 2);

        m.protocol_version = 2 << 16;
        let mut buf = BytesMut::new();
        encode_startup(&m, &mut buf);
        assert_eq!(
            decode_startup(&mut buf, &Limits::default()),
            Err(WireError::UnsupportedProtocolVersion(2 << 16))
        );
    }

    #[test]
    fn special_requests_round_trip() {
        let mut buf = BytesMut::new();
        encode_ssl_request(&mut buf);
        encode_gssenc_request(&mut buf);
        let key = CancelKey {
            process_id: 4242,
            secret_key: -7,
        };
        encode_cancel_request(key, &mut buf);
        let l = Limits::default();
        assert_eq!(
            decode_startup(&mut buf, &l).unwrap(),
            Some(StartupRequest::SslRequest)
        );
        assert_eq!(
            decode_startup(&mut buf, &l).unwrap(),
            Some(StartupRequest::GssEncRequest)
        );
        assert_eq!(
            decode_startup(&mut buf, &l).unwrap(),
            Some(StartupRequest::Cancel(key))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn long_cancel_keys_are_rejected() {
        let mut buf = BytesMut::new();
        buf.put_i32(4 + 4 + 4 + 32);
        buf.put_u32(CANCEL_REQUEST_CODE);
        buf.put_i32(1);
        buf.put_bytes(7, 32);
        assert_eq!(
            decode_startup(&mut buf, &Limits::default()),
            Err(WireError::UnsupportedCancelKey(32))
        );
    }

    #[test]
    fn bad_lengths_and_layouts_are_errors() {
        let l = Limits::default();
        let mut short = BytesMut::from(&[0u8, 0, 0, 4, 0, 3, 0, 0][..]);
        assert_eq!(
            decode_startup(&mut short, &l),
            Err(WireError::MessageTooShort(4))
        );
        // Oversized is rejected from the length alone, before the body arrives.
        let mut big = BytesMut::from(&[0u8, 0, 0x27, 0x11][..]);
        assert!(matches!(
            decode_startup(&mut big, &l),
            Err(WireError::MessageTooLong { len: 10_001, .. })
        ));
        let mut negative = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(decode_startup(&mut negative, &l).is_err());

        // Missing final terminator.
        let mut buf = BytesMut::new();
        buf.put_i32(4 + 4 + 5 + 6);
        buf.put_u32(PROTOCOL_3_0);
        buf.put_slice(b"user\0alice\0");
        assert!(matches!(
            decode_startup(&mut buf, &l),
            Err(WireError::Malformed(_))
        ));
        // Bytes after the terminator.
        let mut buf = BytesMut::new();
        buf.put_i32(4 + 4 + 1 + 1);
        buf.put_u32(PROTOCOL_3_0);
        buf.put_slice(b"\0x");
        assert!(decode_startup(&mut buf, &l).is_err());
        // Invalid UTF-8.
        let mut buf = BytesMut::new();
        buf.put_i32(4 + 4 + 5 + 2 + 1);
        buf.put_u32(PROTOCOL_3_0);
        buf.put_slice(b"user\0\xff\0\0");
        assert!(decode_startup(&mut buf, &l).is_err());
        // Trailing bytes on SSLRequest.
        let mut buf = BytesMut::new();
        buf.put_i32(9);
        buf.put_u32(SSL_REQUEST_CODE);
        buf.put_u8(0);
        assert!(decode_startup(&mut buf, &l).is_err());
    }
}
