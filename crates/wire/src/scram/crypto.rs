//! Primitives shared by the SCRAM client, server and secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::WireError;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 with a 32-byte key. Padding the key to the 64-byte block size ourselves is
/// what HMAC does anyway, and makes construction infallible.
pub(crate) fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = HmacSha256::new(&block.into());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SaltedPassword := Hi(SASLprep(password), salt, i).
pub(crate) fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    // PostgreSQL uses the raw password when SASLprep rejects it (pg_saslprep failure path).
    let prepped = stringprep::saslprep(password);
    let bytes = match &prepped {
        Ok(p) => p.as_bytes(),
        Err(_) => password.as_bytes(),
    };
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(bytes, salt, iterations.max(1), &mut out);
    out
}

pub(crate) fn client_key(salted: &[u8; 32]) -> [u8; 32] {
    hmac(salted, &[b"Client Key"])
}

pub(crate) fn server_key(salted: &[u8; 32]) -> [u8; 32] {
    hmac(salted, &[b"Server Key"])
}

/// Equality whose running time does not depend on where the inputs differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub(crate) fn unb64(s: &str, what: &'static str) -> Result<Vec<u8>, WireError> {
    STANDARD.decode(s).map_err(|_| WireError::Scram(what))
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A fresh nonce: 18 random bytes in base64, as PostgreSQL generates (printable, no comma).
pub(crate) fn new_nonce() -> String {
    b64(&random_bytes::<18>())
}

/// `printable` of RFC 5802: %x21-2B / %x2D-7E.
pub(crate) fn is_printable_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Value of attribute `key` in `part` (`"k=value"`).
pub(crate) fn attr<'a>(
    part: Option<&'a str>,
    key: char,
    what: &'static str,
) -> Result<&'a str, WireError> {
    let part = part.ok_or(WireError::Scram(what))?;
    let mut chars = part.chars();
    if chars.next() == Some(key) && chars.next() == Some('=') {
        part.get(2..).ok_or(WireError::Scram(what))
    } else {
        Err(WireError::Scram(what))
    }
}

pub(crate) fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}
