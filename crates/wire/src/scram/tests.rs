use super::*;
use crate::WireError;

fn login(server: &mut ScramServer, password: &str) -> Result<(), WireError> {
    let mut client = ScramClient::new(password);
    let server_first = server.client_first(&client.client_first())?;
    let client_final = client.server_first(&server_first)?;
    let server_final = server.client_final(&client_final)?;
    client.server_final(&server_final)
}

#[test]
fn client_and_server_agree() {
    let secret = ScramSecret::generate("correct horse");
    assert_eq!(secret.iterations, 4096);
    assert_eq!(secret.salt.len(), 16);
    login(&mut ScramServer::new(secret), "correct horse").unwrap();
}

#[test]
fn wrong_password_fails() {
    let secret = ScramSecret::generate("correct horse");
    assert_eq!(
        login(&mut ScramServer::new(secret), "battery staple"),
        Err(WireError::AuthFailed)
    );
}

#[test]
fn mock_always_fails_and_keeps_a_stable_salt() {
    for pw in ["", "anything"] {
        assert_eq!(
            login(&mut ScramServer::mock("ghost"), pw),
            Err(WireError::AuthFailed)
        );
    }
    let salt_of = |user: &str| {
        let mut s = ScramServer::mock(user);
        let first = String::from_utf8(s.client_first(b"n,,n=,r=abc").unwrap()).unwrap();
        first.split(',').nth(1).unwrap().to_owned()
    };
    assert_eq!(salt_of("ghost"), salt_of("ghost"));
    assert_ne!(salt_of("ghost"), salt_of("phantom"));
}

#[test]
fn server_signature_is_checked_by_client() {
    let secret = ScramSecret::generate("pw");
    let mut server = ScramServer::new(secret);
    let mut client = ScramClient::new("pw");
    let sf = server.client_first(&client.client_first()).unwrap();
    let cf = client.server_first(&sf).unwrap();
    server.client_final(&cf).unwrap();
    assert_eq!(
        client.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Err(WireError::AuthFailed)
    );
}

// RFC 7677 section 3: user "user", password "pencil".
const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE_SUFFIX: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_secret() -> ScramSecret {
    let salt = crypto::unb64("W22ZaJ0SNY7soEsUEjb6gQ==", "salt").unwrap();
    ScramSecret::from_password("pencil", &salt, 4096)
}

#[test]
fn rfc7677_client_vector() {
    let mut client = ScramClient::with_nonce("pencil", CLIENT_NONCE, "user");
    assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let cf = client.server_first(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(cf).unwrap(), CLIENT_FINAL);
    client.server_final(SERVER_FINAL.as_bytes()).unwrap();
}

#[test]
fn rfc7677_server_vector() {
    let mut server = ScramServer::new(rfc_secret()).with_server_nonce(SERVER_NONCE_SUFFIX);
    let sf = server
        .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        .unwrap();
    assert_eq!(String::from_utf8(sf).unwrap(), SERVER_FIRST);
    let fin = server.client_final(CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(fin).unwrap(), SERVER_FINAL);
}

#[test]
fn server_rejects_protocol_violations() {
    let first = b"n,,n=,r=abc";
    let cases: &[&[u8]] = &[
        b"p=tls-server-end-point,,n=,r=abc",
        b"n,a=bob,n=,r=abc",
        b"n,,m=ext,n=,r=abc",
        b"n,,n=,r=",
        b"x,,n=,r=abc",
        b"n,,r=abc",
        b"\xff",
        b"",
    ];
    for bad in cases {
        assert!(
            matches!(
                ScramServer::new(rfc_secret()).client_first(bad),
                Err(WireError::Scram(_))
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // 'y' is fine: we never advertise -PLUS.
    ScramServer::new(rfc_secret())
        .client_first(b"y,,n=,r=abc")
        .unwrap();

    let finals: &[&str] = &[
        "c=eSws,r=abcSUFFIX,p=AAAA", // channel binding of "y,," after "n,,"
        "c=biws,r=abcOTHER,p=AAAA",  // nonce mismatch
        "c=biws,r=abcSUFFIX",        // no proof
        "c=biws,r=abcSUFFIX,p=AAAA", // proof of the wrong length
        "c=biws,r=abcSUFFIX,p=!!!",  // proof not base64
    ];
    for bad in finals {
        let mut s = ScramServer::new(rfc_secret()).with_server_nonce("SUFFIX");
        s.client_first(first).unwrap();
        assert!(
            matches!(s.client_final(bad.as_bytes()), Err(WireError::Scram(_))),
            "{bad}"
        );
        // The exchange is over after any failure.
        assert!(s.client_final(bad.as_bytes()).is_err());
    }
    // Out of order.
    assert!(ScramServer::new(rfc_secret())
        .client_final(b"c=biws")
        .is_err());
}

#[test]
fn client_rejects_bad_server_first() {
    for bad in [
        "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967295",
        "m=x,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
    ] {
        let mut c = ScramClient::with_nonce("pencil", CLIENT_NONCE, "");
        c.client_first();
        assert!(c.server_first(bad.as_bytes()).is_err(), "{bad}");
    }
    let mut c = ScramClient::new("pw");
    assert!(
        c.server_first(SERVER_FIRST.as_bytes()).is_err(),
        "before client_first"
    );
}

#[test]
fn client_treats_server_error_as_auth_failure() {
    let mut c = ScramClient::with_nonce("pencil", CLIENT_NONCE, "user");
    c.client_first();
    c.server_first(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        c.server_final(b"e=invalid-proof"),
        Err(WireError::AuthFailed)
    );
}

#[test]
fn pg_string_round_trip_and_format() {
    let s = rfc_secret();
    let text = s.to_pg_string();
    // Shape of pg_authid.rolpassword; padding kept like PostgreSQL's pg_b64_encode.
    assert!(
        text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"),
        "{text}"
    );
    let parts: Vec<&str> = text.rsplit('$').next().unwrap().split(':').collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|k| k.len() == 44 && k.ends_with('=')));
    assert_eq!(ScramSecret::parse(&text).unwrap(), s);

    let g = ScramSecret::generate("x");
    assert_eq!(ScramSecret::parse(&g.to_pg_string()).unwrap(), g);
    assert!(
        !format!("{g:?}").contains(&crypto::b64(&g.stored_key)),
        "keys are redacted"
    );
}

#[test]
fn pg_string_known_vector() {
    // StoredKey/ServerKey for RFC 7677's password and salt, computed independently with
    // Python's hashlib. Checked by hand against PostgreSQL 15: CREATE ROLE ... PASSWORD '<this>'
    // stores it verbatim in pg_authid.rolpassword and psql then logs in with "pencil".
    let s = rfc_secret();
    assert_eq!(
        s.to_pg_string(),
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    );
}

#[test]
fn secret_parse_rejects_garbage() {
    for bad in [
        "",
        "md5abc",
        "SCRAM-SHA-256$",
        "SCRAM-SHA-256$4096:c2FsdA==",
        "SCRAM-SHA-256$0:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$x:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
        "SCRAM-SHA-256$4096:c2FsdA==$***:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
    ] {
        assert!(ScramSecret::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn saslprep_matches_postgres() {
    // U+00A0 (no-break space) maps to U+0020 under SASLprep, so both spell the same password;
    // ASCII control characters make SASLprep fail and the raw bytes are used, as in PostgreSQL.
    let salt = b"0123456789abcdef";
    assert_eq!(
        ScramSecret::from_password("a\u{a0}b", salt, 1),
        ScramSecret::from_password("a b", salt, 1)
    );
    assert_ne!(
        ScramSecret::from_password("a\u{7}b", salt, 1),
        ScramSecret::from_password("ab", salt, 1)
    );
}
