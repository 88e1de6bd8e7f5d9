//! TOTP (RFC 6238) with the parameters every authenticator app defaults to: HMAC-SHA-1, 6 digits,
//! 30-second steps; and the base32 and `otpauth://` forms the apps read a secret in.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::OffsetDateTime;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommended length for HMAC-SHA-1).
pub const SECRET_LEN: usize = 20;
/// The issuer named in the `otpauth://` URI (and shown by authenticator apps).
pub const ISSUER: &str = "Portcullis";

/// The time step `at` falls in.
pub fn step_at(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(STEP_SECONDS)
}

/// The 6-digit code for `step`, zero-padded as users type it.
pub fn code(secret: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_counter(step), DIGITS),
        width = DIGITS as usize
    )
}

/// The code of `secret` at time `at`.
pub fn code_at(secret: &[u8], at: OffsetDateTime) -> String {
    code(secret, step_at(at))
}

/// A negative step (before 1970) has no counter; it maps to 0, which no real clock reaches.
fn step_counter(step: i64) -> u64 {
    u64::try_from(step).unwrap_or(0)
}

/// HOTP (RFC 4226 §5.3): HMAC-SHA-1 of the counter, dynamically truncated to `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// Whether `given` (what the user typed) is the code of `secret` at `step`, compared without an early
/// exit so the time taken says nothing about how many digits were right.
pub(crate) fn matches(secret: &[u8], step: i64, given: &str) -> bool {
    let expected = code(secret, step);
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A code as typed: surrounding whitespace and inner spaces (apps show "123 456") are dropped; `None`
/// unless six ASCII digits are left.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, the form `otpauth://` URIs carry secrets in.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// Decodes base32 (case-insensitive; padding, spaces and dashes ignored); `None` on any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for c in text.chars() {
        if matches!(c, '=' | ' ' | '-') {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        let value = BASE32_ALPHABET
            .iter()
            .position(|&a| char::from(a) == upper)?;
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://totp/Portcullis:USER?secret=…&issuer=Portcullis` URI an authenticator app enrols
/// from (a QR code of it, or the text pasted in).
pub fn otpauth_uri(user: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer}:{user}?secret={secret}&issuer={issuer}",
        issuer = ISSUER,
        user = percent_encode(user),
        secret = base32_encode(secret)
    )
}

/// The secret in an `otpauth://` URI, decoded.
pub fn secret_from_uri(uri: &str) -> Option<Vec<u8>> {
    let query = uri.split_once('?')?.1;
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))?;
    base32_decode(value)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the seed is the ASCII string "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: &[(i64, u32)] = &[
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];

    #[test]
    fn rfc_6238_vectors() {
        for &(t, expected) in RFC_VECTORS {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            let step = step_at(at);
            assert_eq!(hotp(RFC_SEED, step as u64, 8), expected, "T = {t}");
            // Six digits are the low six of the eight.
            assert_eq!(
                code_at(RFC_SEED, at),
                format!("{:06}", expected % 1_000_000)
            );
            assert!(matches(RFC_SEED, step, &code(RFC_SEED, step)));
            assert!(!matches(RFC_SEED, step + 1, &code(RFC_SEED, step)));
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, counter as u64, 6), *want);
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb-oi").unwrap(), b"foobar");
        assert_eq!(base32_decode("M1"), None);
        let secret: Vec<u8> = (0u8..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
        assert_eq!(base32_encode(&secret).len(), 32);
    }

    #[test]
    fn uri_names_issuer_and_user() {
        let secret = [0xAB; SECRET_LEN];
        let uri = otpauth_uri("alice smith", &secret);
        assert!(uri.starts_with("otpauth://totp/Portcullis:alice%20smith?secret="));
        assert!(uri.ends_with("&issuer=Portcullis"));
        assert_eq!(secret_from_uri(&uri).unwrap(), secret);
    }

    #[test]
    fn codes_are_normalized() {
        assert_eq!(normalize_code(" 123 456\n").as_deref(), Some("123456"));
        assert_eq!(normalize_code("12345"), None);
        assert_eq!(normalize_code("12345a"), None);
        assert_eq!(normalize_code("1234567"), None);
    }
}
