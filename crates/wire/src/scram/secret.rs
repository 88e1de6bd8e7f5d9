//! The verifier PostgreSQL stores in `pg_authid.rolpassword`.

use std::fmt;

use super::crypto::{b64, client_key, random_bytes, salted_password, server_key, sha256, unb64};
use super::DEFAULT_ITERATIONS;
use crate::WireError;

const PREFIX: &str = "SCRAM-SHA-256$";

/// A SCRAM-SHA-256 verifier: enough to check a client's proof, not to log in as the user.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl ScramSecret {
    /// A new verifier with a random 16-byte salt and 4096 iterations (PostgreSQL's defaults).
    pub fn generate(password: &str) -> ScramSecret {
        Self::from_password(password, &random_bytes::<16>(), DEFAULT_ITERATIONS)
    }

    /// The verifier for `password` with the given salt and iteration count (at least 1).
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let iterations = iterations.max(1);
        let salted = salted_password(password, salt, iterations);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key(&salted)),
            server_key: server_key(&salted),
        }
    }

    /// PostgreSQL's text form `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` (base64
    /// with padding), byte-compatible with `pg_authid.rolpassword`.
    pub fn to_pg_string(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            b64(&self.salt),
            b64(&self.stored_key),
            b64(&self.server_key)
        )
    }

    /// Parses the text form produced by [`to_pg_string`](Self::to_pg_string) or by PostgreSQL.
    pub fn parse(s: &str) -> Result<ScramSecret, WireError> {
        let bad = WireError::InvalidSecret;
        let rest = s
            .strip_prefix(PREFIX)
            .ok_or(bad("missing SCRAM-SHA-256$ prefix"))?;
        let (iter_salt, keys) = rest.split_once('$').ok_or(bad("missing '$'"))?;
        let (iter, salt) = iter_salt
            .split_once(':')
            .ok_or(bad("missing ':' after iterations"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or(bad("missing ':' between keys"))?;
        let iterations: u32 = iter.parse().map_err(|_| bad("iteration count"))?;
        if iterations == 0 || iterations > i32::MAX as u32 {
            return Err(bad("iteration count out of range"));
        }
        let salt = unb64(salt, "salt").map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad("empty salt"));
        }
        let key = |k: &str| -> Result<[u8; 32], WireError> {
            unb64(k, "key")
                .map_err(|_| bad("key is not base64"))?
                .try_into()
                .map_err(|_| bad("key is not 32 bytes"))
        };
        Ok(ScramSecret {
            iterations,
            salt,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .field("salt", &b64(&self.salt))
            .finish_non_exhaustive()
    }
}
