//! Client side of a SCRAM-SHA-256 exchange, used to log in to the upstream.

use super::crypto::{
    attr, b64, client_key, ct_eq, hmac, is_printable_nonce, new_nonce, salted_password, server_key,
    sha256, unb64, xor,
};
use super::MAX_CLIENT_ITERATIONS;
use crate::WireError;

enum State {
    Initial,
    SentFirst { client_first_bare: String },
    SentFinal { server_signature: [u8; 32] },
    Done,
}

/// Drives the client side of one SCRAM exchange (no channel binding: GS2 flag `n`).
pub struct ScramClient {
    password: String,
    nonce: String,
    username: String,
    state: State,
}

impl ScramClient {
    /// A new exchange for `password` with a fresh nonce.
    pub fn new(password: &str) -> Self {
        ScramClient {
            password: password.to_owned(),
            nonce: new_nonce(),
            username: String::new(),
            state: State::Initial,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(password: &str, nonce: &str, username: &str) -> Self {
        ScramClient {
            nonce: nonce.to_owned(),
            username: username.to_owned(),
            ..Self::new(password)
        }
    }

    /// The client-first-message, to send in SASLInitialResponse with mechanism `SCRAM-SHA-256`.
    pub fn client_first(&mut self) -> Vec<u8> {
        let bare = format!("n={},r={}", self.username, self.nonce);
        let msg = format!("n,,{bare}").into_bytes();
        self.state = State::SentFirst {
            client_first_bare: bare,
        };
        msg
    }

    /// Handles the server-first-message (AuthenticationSASLContinue) and returns the
    /// client-final-message to send in SASLResponse.
    pub fn server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, WireError> {
        let State::SentFirst { client_first_bare } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(WireError::Scram("unexpected server-first-message"));
        };
        let msg = std::str::from_utf8(data).map_err(|_| WireError::Scram("not UTF-8"))?;
        let mut parts = msg.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(WireError::Scram("mandatory extension is not supported"));
        }
        let nonce = attr(first, 'r', "missing nonce")?;
        if nonce.len() <= self.nonce.len()
            || !nonce.starts_with(&self.nonce)
            || !is_printable_nonce(nonce)
        {
            return Err(WireError::Scram("server nonce does not extend ours"));
        }
        let salt = unb64(
            attr(parts.next(), 's', "missing salt")?,
            "salt is not base64",
        )?;
        if salt.is_empty() {
            return Err(WireError::Scram("empty salt"));
        }
        let iterations: u32 = attr(parts.next(), 'i', "missing iteration count")?
            .parse()
            .map_err(|_| WireError::Scram("bad iteration count"))?;
        if iterations == 0 || iterations > MAX_CLIENT_ITERATIONS {
            return Err(WireError::Scram("iteration count out of range"));
        }

        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = client_key(&salted);
        let stored_key = sha256(&client_key);
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = [
            client_first_bare.as_bytes(),
            b",",
            msg.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let proof = xor(&client_key, &hmac(&stored_key, &auth_message));
        let server_signature = hmac(&server_key(&salted), &auth_message);
        self.state = State::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", b64(&proof)).into_bytes())
    }

    /// Checks the server-final-message (AuthenticationSASLFinal). An `e=` error or a wrong
    /// server signature yields [`WireError::AuthFailed`].
    pub fn server_final(&mut self, data: &[u8]) -> Result<(), WireError> {
        let State::SentFinal { server_signature } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(WireError::Scram("unexpected server-final-message"));
        };
        let msg = std::str::from_utf8(data).map_err(|_| WireError::Scram("not UTF-8"))?;
        let first = msg.split(',').next();
        if first.is_some_and(|p| p.starts_with("e=")) {
            return Err(WireError::AuthFailed);
        }
        let verifier = unb64(
            attr(first, 'v', "missing verifier")?,
            "verifier is not base64",
        )?;
        if ct_eq(&verifier, &server_signature) {
            Ok(())
        } else {
            Err(WireError::AuthFailed)
        }
    }
}
