//! Server side of a SCRAM-SHA-256 exchange.

use std::sync::OnceLock;

use super::crypto::{
    attr, b64, ct_eq, hmac, is_printable_nonce, new_nonce, random_bytes, sha256, unb64, xor,
};
use super::{ScramSecret, DEFAULT_ITERATIONS};
use crate::WireError;

enum State {
    Initial,
    SentFirst {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// Drives the server side of one SCRAM exchange. Every failure, including a wrong proof,
/// ends the exchange.
pub struct ScramServer {
    secret: ScramSecret,
    doomed: bool,
    state: State,
    server_nonce: Option<String>,
}

/// Process-wide secret that makes mock salts stable per user name yet unpredictable.
fn process_mock_nonce() -> &'static [u8; 32] {
    static NONCE: OnceLock<[u8; 32]> = OnceLock::new();
    NONCE.get_or_init(random_bytes::<32>)
}

impl ScramServer {
    /// An exchange that verifies against `secret`.
    pub fn new(secret: ScramSecret) -> Self {
        ScramServer {
            secret,
            doomed: false,
            state: State::Initial,
            server_nonce: None,
        }
    }

    /// An exchange for a user that does not exist (or cannot log in this way): it looks like a
    /// real one — with a salt that is stable for `username_hint` within this process — and
    /// always ends in [`WireError::AuthFailed`], as PostgreSQL's mock authentication does.
    pub fn mock(username_hint: &str) -> Self {
        Self::mock_with_nonce(username_hint, process_mock_nonce())
    }

    /// Like [`mock`](Self::mock) with a caller-supplied secret nonce, so the mock salt can stay
    /// stable across restarts (PostgreSQL keeps its `mock_authentication_nonce` in pg_control).
    pub fn mock_with_nonce(username_hint: &str, nonce: &[u8]) -> Self {
        let mut seed = Vec::with_capacity(nonce.len() + username_hint.len());
        seed.extend_from_slice(nonce);
        seed.extend_from_slice(username_hint.as_bytes());
        let salt = sha256(&seed);
        let secret = ScramSecret {
            iterations: DEFAULT_ITERATIONS,
            salt: salt[..16].to_vec(),
            stored_key: random_bytes::<32>(),
            server_key: random_bytes::<32>(),
        };
        ScramServer {
            doomed: true,
            ..Self::new(secret)
        }
    }

    #[cfg(test)]
    pub(crate) fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.to_owned());
        self
    }

    /// Handles the client-first-message (the data of SASLInitialResponse) and returns the
    /// server-first-message to send in AuthenticationSASLContinue.
    pub fn client_first(&mut self, data: &[u8]) -> Result<Vec<u8>, WireError> {
        if !matches!(self.state, State::Initial) {
            return Err(WireError::Scram("unexpected client-first-message"));
        }
        self.state = State::Done;
        let msg = std::str::from_utf8(data).map_err(|_| WireError::Scram("not UTF-8"))?;
        let (flag, rest) = msg
            .split_once(',')
            .ok_or(WireError::Scram("malformed GS2 header"))?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => {
                return Err(WireError::Scram("channel binding is not supported"))
            }
            _ => return Err(WireError::Scram("malformed channel binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(WireError::Scram("malformed GS2 header"))?;
        if !authzid.is_empty() {
            return Err(WireError::Scram("authorization identity is not supported"));
        }
        let gs2_header = msg
            .get(..msg.len() - bare.len())
            .ok_or(WireError::Scram("malformed GS2 header"))?;

        let mut parts = bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(WireError::Scram("mandatory extension is not supported"));
        }
        // The user name is ignored: PostgreSQL takes it from the startup packet.
        attr(first, 'n', "missing username attribute")?;
        let client_nonce = attr(parts.next(), 'r', "missing client nonce")?;
        if !is_printable_nonce(client_nonce) {
            return Err(WireError::Scram("client nonce is not printable"));
        }

        let server_nonce = self.server_nonce.take().unwrap_or_else(new_nonce);
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64(&self.secret.salt),
            self.secret.iterations
        );
        let reply = server_first.clone().into_bytes();
        self.state = State::SentFirst {
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok(reply)
    }

    /// Handles the client-final-message and, if the proof is right, returns the
    /// server-final-message (`v=...`) for AuthenticationSASLFinal. A wrong proof, and every
    /// mock exchange, yields [`WireError::AuthFailed`].
    pub fn client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, WireError> {
        let State::SentFirst {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(WireError::Scram("unexpected client-final-message"));
        };
        let msg = std::str::from_utf8(data).map_err(|_| WireError::Scram("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(WireError::Scram("missing proof"))?;
        let mut parts = without_proof.split(',');
        let cbind = unb64(
            attr(parts.next(), 'c', "missing channel binding")?,
            "channel binding is not base64",
        )?;
        if cbind != gs2_header.as_bytes() {
            return Err(WireError::Scram("channel binding does not match"));
        }
        let final_nonce = attr(parts.next(), 'r', "missing nonce")?;
        if final_nonce != nonce {
            return Err(WireError::Scram("nonce does not match"));
        }
        let proof: [u8; 32] = unb64(proof, "proof is not base64")?
            .try_into()
            .map_err(|_| WireError::Scram("proof has the wrong length"))?;

        let auth_message = [
            client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = hmac(&self.secret.stored_key, &auth_message);
        let client_key = xor(&proof, &client_signature);
        let ok = ct_eq(&sha256(&client_key), &self.secret.stored_key);
        if !ok || self.doomed {
            return Err(WireError::AuthFailed);
        }
        let server_signature = hmac(&self.secret.server_key, &auth_message);
        Ok(format!("v={}", b64(&server_signature)).into_bytes())
    }
}
