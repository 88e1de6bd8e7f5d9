//! Hostile input never panics: deterministic pseudo-random bytes through every decoder.

use bytes::BytesMut;

use crate::*;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max + 1);
        // Bias towards bytes that matter to the parsers: NULs, small lengths, tag letters.
        (0..len)
            .map(|_| match self.next() % 4 {
                0 => 0,
                1 => (self.next() % 8) as u8,
                _ => self.next() as u8,
            })
            .collect()
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = Limits {
        max_startup_len: 256,
        max_message_len: 256,
    };
    for i in 0..20_000u32 {
        let data = rng.bytes(64);
        let tag = if i % 2 == 0 {
            rng.next() as u8
        } else {
            b"QPBDECSHXdcfFpRKZTtn123sIGWAvVN"[(rng.next() % 31) as usize]
        };
        let _ = decode_frontend(tag, &data);
        let _ = decode_backend(tag, &data);
        let _ = decode_sasl_initial_response(&data);
        let _ = decode_password(&data);
        let _ = ErrorFields::parse(&data).map(|e| e.iter_raw().count());
        let _ = peek_frame(&data, 256);

        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(f)) = split_frame(&mut buf, 256) {
            let _ = decode_backend(f.tag, f.body());
        }

        // Startup packets with a plausible length prefix, so the body parser is reached.
        let mut startup = BytesMut::new();
        startup.extend_from_slice(&((data.len() + 8) as u32).to_be_bytes());
        let code: u32 = match rng.next() % 4 {
            0 => PROTOCOL_3_0,
            1 => CANCEL_REQUEST_CODE,
            2 => SSL_REQUEST_CODE,
            _ => rng.next() as u32,
        };
        startup.extend_from_slice(&code.to_be_bytes());
        startup.extend_from_slice(&data);
        let _ = decode_startup(&mut startup, &limits);
        let mut raw = BytesMut::from(&data[..]);
        let _ = decode_startup(&mut raw, &limits);

        let _ = ScramSecret::parse(&String::from_utf8_lossy(&data));
        let mut server = ScramServer::new(ScramSecret::from_password("pw", b"salt", 1));
        let _ = server.client_first(&data);
        let _ = server.client_final(&data);
    }
}

#[test]
fn scram_server_survives_random_client_final() {
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let mut server = ScramServer::new(ScramSecret::from_password("pw", b"salt", 1));
        server.client_first(b"n,,n=,r=abc").unwrap();
        let mut msg = b"c=biws,r=abc".to_vec();
        msg.extend(rng.bytes(48));
        assert!(server.client_final(&msg).is_err());
    }
}

#[test]
fn peek_frame_limits() {
    assert_eq!(peek_frame(b"", 100), Ok(None));
    assert_eq!(peek_frame(b"Q\0\0\0", 100), Ok(None));
    assert_eq!(
        peek_frame(b"Q\0\0\0\x03", 100),
        Err(WireError::MessageTooShort(3))
    );
    assert!(peek_frame(b"Q\xff\xff\xff\xff", 100).is_err());
    assert_eq!(
        peek_frame(b"Q\0\0\0\x65", 100),
        Err(WireError::MessageTooLong { len: 101, max: 100 })
    );
    assert_eq!(
        peek_frame(b"Q\0\0\0\x64", 100),
        Ok(None),
        "at the limit: wait"
    );
    assert_eq!(
        peek_frame(b"S\0\0\0\x04rest", 100),
        Ok(Some(FrameHeader {
            tag: b'S',
            total_len: 5
        }))
    );
    let h = peek_frame(b"Q\0\0\0\x06a\0", 100).unwrap().unwrap();
    assert_eq!((h.total_len, h.body_len()), (7, 2));
    assert_eq!(Limits::default().max_message_len, 64 * 1024 * 1024);
    assert_eq!(Limits::default().max_startup_len, 10_000);
}

#[test]
fn split_frame_is_incremental() {
    let mut all = BytesMut::new();
    encode_query("SELECT 1", &mut all);
    encode_sync(&mut all);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &b in all.iter() {
        buf.extend_from_slice(&[b]);
        while let Some(f) = split_frame(&mut buf, 1024).unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].tag, b'Q');
    assert_eq!(frames[0].body(), b"SELECT 1\0");
    assert_eq!(&frames[0].bytes[..], &all[..14]);
    assert_eq!(frames[1].tag, b'S');
    assert!(buf.is_empty());
}
