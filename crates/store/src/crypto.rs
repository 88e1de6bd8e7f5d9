//! The master key, the [`Secret`] wrapper and credential encryption at rest.
//!
//! Stored form of an encrypted value: `version (1 byte) || nonce (12 bytes) || ciphertext+tag`.
//! The version byte leaves room for key rotation / another cipher without guessing.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;

use crate::error::StoreError;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// The 256-bit key that encrypts upstream credentials at rest.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        MasterKey(k)
    }

    /// Parses a key written as standard base64 (surrounding whitespace is ignored).
    pub fn from_base64(s: &str) -> Result<Self, StoreError> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|e| StoreError::MasterKey(format!("not valid base64: {e}")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            StoreError::MasterKey(format!("expected 32 bytes, found {}", b.len()))
        })?;
        Ok(MasterKey(key))
    }

    /// The key as standard base64, the format of the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads the key file at `path`, or creates it (mode 0600, a fresh random key) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let io_err = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(mut file) => {
                let key = MasterKey::generate();
                file.write_all(format!("{}\n", key.to_base64()).as_bytes())
                    .map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                warn_if_readable_by_others(path);
                // The key file is one short line; refuse to read anything large.
                let meta = std::fs::metadata(path).map_err(io_err)?;
                if meta.len() > 1024 {
                    return Err(StoreError::MasterKey(format!(
                        "{} is {} bytes, too large to be a key file",
                        path.display(),
                        meta.len()
                    )));
                }
                let text = std::fs::read_to_string(path).map_err(io_err)?;
                MasterKey::from_base64(&text)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "master key file is accessible by group or others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// A secret string (a password). Its `Debug` and `Display` print `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Encryption or decryption failed; deliberately carries no detail (AEAD failures are indistinguishable by design).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CryptoFailed;

/// Encrypts `plaintext` with a fresh random nonce; `aad` binds the value to its owner (the resource name),
/// so a ciphertext copied onto another row fails to decrypt.
pub(crate) fn encrypt(
    key: &MasterKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoFailed> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoFailed)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Reverses [`encrypt`]; fails on a wrong key, a wrong `aad`, or any tampering.
pub(crate) fn decrypt(key: &MasterKey, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoFailed> {
    let (version, rest) = blob.split_first().ok_or(CryptoFailed)?;
    if *version != FORMAT_V1 || rest.len() < NONCE_LEN {
        return Err(CryptoFailed);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    key.cipher()
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let key = MasterKey::generate();
        let blob = encrypt(&key, b"db1", b"hunter2").unwrap();
        assert_eq!(decrypt(&key, b"db1", &blob).unwrap(), b"hunter2");
        // Fresh nonce each time.
        assert_ne!(blob, encrypt(&key, b"db1", b"hunter2").unwrap());
        assert_eq!(
            decrypt(&MasterKey::generate(), b"db1", &blob),
            Err(CryptoFailed)
        );
        assert_eq!(decrypt(&key, b"db2", &blob), Err(CryptoFailed));
        let mut tampered = blob.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(decrypt(&key, b"db1", &tampered), Err(CryptoFailed));
        assert_eq!(decrypt(&key, b"db1", &[]), Err(CryptoFailed));
        assert_eq!(decrypt(&key, b"db1", &[1, 2, 3]), Err(CryptoFailed));
    }

    #[test]
    fn key_base64_and_file() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&format!(" {}\n", key.to_base64())).unwrap();
        assert_eq!(key.0, again.0);
        assert!(matches!(
            MasterKey::from_base64("!!"),
            Err(StoreError::MasterKey(_))
        ));
        assert!(matches!(
            MasterKey::from_base64("AAAA"),
            Err(StoreError::MasterKey(_))
        ));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let created = MasterKey::load_or_create(&path).unwrap();
        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(created.0, loaded.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey(***)");
    }
}
