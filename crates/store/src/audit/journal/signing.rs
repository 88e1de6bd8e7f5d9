//! The key that signs the journal's checkpoints: an Ed25519 seed in the journal's folder, readable by
//! the gateway's user only. Auditors keep the public key (`portcullis audit public-key`) and verify
//! with it, so a journal re-signed with a replaced key does not pass.

use std::io::{self, Write};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::format::{checkpoint_message, ChainHash, CHECKPOINT_PAYLOAD};

const SEED: usize = 32;
pub(crate) const KEY_FILE: &str = "signing.key";

/// The journal's signing key.
pub(crate) struct SigningKey {
    pair: Ed25519KeyPair,
    id: [u8; 8],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &hex(&self.id))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key in `dir`, creating it first if there is none. Callers hold the journal's lock, so
    /// two processes never create two keys.
    pub(crate) fn load_or_create(dir: &Path) -> io::Result<SigningKey> {
        let path = dir.join(KEY_FILE);
        let seed = match std::fs::read(&path) {
            Ok(seed) => seed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut seed = [0; SEED];
                SystemRandom::new()
                    .fill(&mut seed)
                    .map_err(|_| io::Error::other("no randomness for the journal's signing key"))?;
                let fresh = dir.join(format!("{KEY_FILE}.new"));
                let mut file = super::private_file(&fresh, true)?;
                file.write_all(&seed)?;
                file.sync_all()?;
                std::fs::rename(&fresh, &path)?;
                seed.to_vec()
            }
            Err(e) => return Err(e),
        };
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not an Ed25519 seed", path.display()),
            )
        })?;
        let id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, id })
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The key's id and its signature over `msg` (the retention note's).
    pub(crate) fn sign(&self, msg: &[u8]) -> ([u8; 8], Vec<u8>) {
        (self.id, self.pair.sign(msg).as_ref().to_vec())
    }

    /// A checkpoint's payload for the record at `seq` with chain hash `hash`.
    pub(crate) fn checkpoint(&self, seq: u64, hash: &ChainHash, flags: u8) -> Vec<u8> {
        let signature = self.pair.sign(&checkpoint_message(seq, hash, flags));
        let mut payload = Vec::with_capacity(CHECKPOINT_PAYLOAD);
        payload.push(flags);
        payload.extend_from_slice(&self.id);
        payload.extend_from_slice(signature.as_ref());
        payload
    }
}

/// The first 8 bytes of SHA-256 over a public key: names the key in checkpoints.
pub(crate) fn key_id(public_key: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(public_key);
    let mut id = [0; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// A checkpoint payload's flags, if `payload` is one signed by `public_key` over the record at `seq`
/// with chain hash `hash`.
pub(crate) fn check_checkpoint(
    public_key: &[u8],
    payload: &[u8],
    seq: u64,
    hash: &ChainHash,
) -> Result<u8, String> {
    if payload.len() != CHECKPOINT_PAYLOAD {
        return Err(format!("a checkpoint of {} bytes", payload.len()));
    }
    let flags = payload[0];
    if payload[1..9] != key_id(public_key) {
        return Err(format!(
            "signed with another key (id {}, expected {})",
            hex(&payload[1..9]),
            hex(&key_id(public_key))
        ));
    }
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(&checkpoint_message(seq, hash, flags), &payload[9..])
        .map_err(|_| "a signature that does not verify".to_owned())?;
    Ok(flags)
}

/// Checks a signature made with [`SigningKey::sign`] by the key with id `id`.
pub(crate) fn check_signature(
    public_key: &[u8],
    id: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    if id != key_id(public_key) {
        return Err(format!(
            "signed with another key (id {}, expected {})",
            hex(id),
            hex(&key_id(public_key))
        ));
    }
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(msg, sig)
        .map_err(|_| "a signature that does not verify".to_owned())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a hex public key as `portcullis audit public-key` prints it.
pub(crate) fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(dir.path()).unwrap();
        let again = SigningKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let hash = [7; 32];
        let payload = key.checkpoint(9, &hash, 1);
        assert_eq!(
            check_checkpoint(key.public_key(), &payload, 9, &hash),
            Ok(1)
        );
        assert!(check_checkpoint(key.public_key(), &payload, 10, &hash).is_err());
        let other = tempfile::tempdir().unwrap();
        let other = SigningKey::load_or_create(other.path()).unwrap();
        assert!(check_checkpoint(other.public_key(), &payload, 9, &hash).is_err());
        assert_eq!(
            parse_hex(&hex(key.public_key())).as_deref(),
            Some(key.public_key())
        );
    }
}
