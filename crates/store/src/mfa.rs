//! MFA enrolment and verification (TOTP first; the `method` column leaves room for push or WebAuthn).
//!
//! A user enrols once: a fresh 20-byte secret, stored encrypted with the master key (bound to the user
//! name, so a ciphertext copied onto another user's row does not decrypt). A verification checks a code
//! against the steps around `now` (±1, for clock skew) and records it; a step already used by that user
//! is refused, so a code seen over someone's shoulder cannot be replayed. The gateway reads the newest
//! verification to apply its validity rules. Every call takes `now` so callers decide which clock counts.

use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;
use time::OffsetDateTime;

use crate::users::user_exists;
use crate::{crypto, totp, validate_name, Result, Store, StoreError};

/// The only method so far.
const TOTP: &str = "totp";

/// A fresh enrolment: what the user loads into an authenticator app. Shown once; never printed by
/// `Debug`.
#[derive(Clone)]
pub struct MfaEnrolment {
    /// The user.
    pub user: String,
    /// The secret (20 bytes).
    pub secret: Vec<u8>,
    /// `otpauth://totp/Portcullis:USER?secret=…&issuer=Portcullis`.
    pub uri: String,
}

impl std::fmt::Debug for MfaEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaEnrolment")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A user's MFA state as `portcullis mfa status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MfaStatus {
    /// The user.
    pub user: String,
    /// `totp`.
    pub method: String,
    /// When they enrolled (unix milliseconds).
    pub enrolled_at: i64,
    /// The newest time step a code was accepted for.
    pub last_step: Option<i64>,
    /// Their newest verification (unix milliseconds).
    pub last_verified_at: Option<i64>,
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaCheck {
    /// The code was right and is now used; the verification is recorded at `at` (unix milliseconds).
    Verified {
        /// When the verification counts from.
        at: i64,
        /// The time step the code belonged to.
        step: i64,
    },
    /// Not the code of any step around now (or not six digits).
    WrongCode,
    /// The code of a step this user already used (or an earlier one).
    Replayed,
    /// The user has no MFA enrolment.
    NotEnrolled,
}

fn aad(user: &str) -> Vec<u8> {
    format!("portcullis:mfa:{user}").into_bytes()
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Store {
    /// Enrols `user` in TOTP with a fresh secret. [`StoreError::NotFound`] for an unknown user;
    /// [`StoreError::AlreadyExists`] when already enrolled (reset first: a second secret must not
    /// silently replace the one on the user's phone).
    pub fn enroll_mfa(&self, user: &str, now: OffsetDateTime) -> Result<MfaEnrolment> {
        validate_name("user name", user)?;
        let mut secret = vec![0u8; totp::SECRET_LEN];
        OsRng.fill_bytes(&mut secret);
        let blob = crypto::encrypt(self.key(), &aad(user), &secret).map_err(|_| {
            StoreError::MfaSecret {
                user: user.to_owned(),
            }
        })?;
        let conn = self.conn();
        if !user_exists(&conn, user)? {
            return Err(StoreError::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        let inserted = conn.execute(
            "INSERT INTO mfa_enrolments (user_name, method, secret_enc, enrolled_at, last_step) \
             VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT (user_name) DO NOTHING",
            rusqlite::params![user, TOTP, blob, millis(now)],
        )?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists {
                kind: "MFA enrolment of user",
                name: user.to_owned(),
            });
        }
        tracing::info!(user, "MFA enrolled");
        Ok(MfaEnrolment {
            user: user.to_owned(),
            uri: totp::otpauth_uri(user, &secret),
            secret,
        })
    }

    /// Whether `user` is enrolled.
    pub fn mfa_enrolled(&self, user: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM mfa_enrolments WHERE user_name = ?1",
                [user],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// `user`'s MFA state; `None` when not enrolled.
    pub fn mfa_status(&self, user: &str) -> Result<Option<MfaStatus>> {
        Ok(self.mfa_statuses(Some(user))?.into_iter().next())
    }

    /// Every enrolled user's MFA state, by name.
    pub fn list_mfa_status(&self) -> Result<Vec<MfaStatus>> {
        self.mfa_statuses(None)
    }

    fn mfa_statuses(&self, user: Option<&str>) -> Result<Vec<MfaStatus>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT e.user_name, e.method, e.enrolled_at, e.last_step, \
             (SELECT MAX(v.at) FROM mfa_verifications v WHERE v.user_name = e.user_name) \
             FROM mfa_enrolments e WHERE ?1 IS NULL OR e.user_name = ?1 ORDER BY e.user_name",
        )?;
        let rows = stmt.query_map([user], |r| {
            Ok(MfaStatus {
                user: r.get(0)?,
                method: r.get(1)?,
                enrolled_at: r.get(2)?,
                last_step: r.get(3)?,
                last_verified_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Checks `code` for `user` at `now` and, when right and not used before, records a verification
    /// at `now`. One IMMEDIATE transaction, so two processes verifying the same code cannot both win.
    pub fn verify_mfa(&self, user: &str, code: &str, now: OffsetDateTime) -> Result<MfaCheck> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(Vec<u8>, Option<i64>)> = tx
            .query_row(
                "SELECT secret_enc, last_step FROM mfa_enrolments WHERE user_name = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((blob, last_step)) = row else {
            return Ok(MfaCheck::NotEnrolled);
        };
        let secret =
            crypto::decrypt(self.key(), &aad(user), &blob).map_err(|_| StoreError::MfaSecret {
                user: user.to_owned(),
            })?;
        let Some(code) = totp::normalize_code(code) else {
            return Ok(MfaCheck::WrongCode);
        };
        let current = totp::step_at(now);
        // Every candidate is computed, so the time taken does not say which step matched.
        let matched = [current - 1, current, current + 1]
            .into_iter()
            .filter(|step| totp::matches(&secret, *step, &code))
            .max();
        let Some(step) = matched else {
            return Ok(MfaCheck::WrongCode);
        };
        if last_step.is_some_and(|last| last >= step) {
            return Ok(MfaCheck::Replayed);
        }
        let at = millis(now);
        tx.execute(
            "UPDATE mfa_enrolments SET last_step = ?2 WHERE user_name = ?1",
            rusqlite::params![user, step],
        )?;
        tx.execute(
            "INSERT INTO mfa_verifications (user_name, method, at) VALUES (?1, ?2, ?3)",
            rusqlite::params![user, TOTP, at],
        )?;
        tx.commit()?;
        tracing::info!(user, "MFA verified");
        Ok(MfaCheck::Verified { at, step })
    }

    /// When `user` last completed MFA (unix milliseconds), if ever since their enrolment.
    pub fn latest_mfa_verification(&self, user: &str) -> Result<Option<i64>> {
        Ok(self.conn().query_row(
            "SELECT MAX(at) FROM mfa_verifications WHERE user_name = ?1",
            [user],
            |r| r.get(0),
        )?)
    }

    /// Removes `user`'s enrolment and verifications (a lost phone); `false` when not enrolled.
    pub fn reset_mfa(&self, user: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let removed = tx.execute("DELETE FROM mfa_enrolments WHERE user_name = ?1", [user])?;
        tx.execute("DELETE FROM mfa_verifications WHERE user_name = ?1", [user])?;
        tx.commit()?;
        if removed > 0 {
            tracing::info!(user, "MFA reset");
        }
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::{Durability, MasterKey};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Journaled,
        )
        .unwrap();
        store.add_user("alice", "pw").unwrap();
        (dir, store)
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn enrol_verify_and_refuse_replays() {
        let (_dir, store) = store();
        let now = at(1_800_000_000);
        assert_eq!(
            store.verify_mfa("alice", "123456", now).unwrap(),
            MfaCheck::NotEnrolled
        );
        let enrolment = store.enroll_mfa("alice", now).unwrap();
        assert_eq!(enrolment.secret.len(), totp::SECRET_LEN);
        assert_eq!(
            totp::secret_from_uri(&enrolment.uri).unwrap(),
            enrolment.secret
        );
        assert!(!format!("{enrolment:?}").contains(&totp::base32_encode(&enrolment.secret)));
        assert!(matches!(
            store.enroll_mfa("alice", now),
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.enroll_mfa("nobody", now),
            Err(StoreError::NotFound { .. })
        ));

        let code = totp::code_at(&enrolment.secret, now);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(
            store.verify_mfa("alice", &wrong, now).unwrap(),
            MfaCheck::WrongCode
        );
        assert_eq!(
            store.verify_mfa("alice", "12ab56", now).unwrap(),
            MfaCheck::WrongCode
        );
        assert_eq!(store.latest_mfa_verification("alice").unwrap(), None);

        let step = totp::step_at(now);
        assert_eq!(
            store.verify_mfa("alice", &code, now).unwrap(),
            MfaCheck::Verified {
                at: millis(now),
                step
            }
        );
        assert_eq!(
            store.latest_mfa_verification("alice").unwrap(),
            Some(millis(now))
        );
        // The same code again, even a few seconds later, is a replay; so is the previous step's.
        assert_eq!(
            store
                .verify_mfa("alice", &code, now + Duration::seconds(5))
                .unwrap(),
            MfaCheck::Replayed
        );
        let previous = totp::code(&enrolment.secret, step - 1);
        assert_eq!(
            store.verify_mfa("alice", &previous, now).unwrap(),
            MfaCheck::Replayed
        );
        // The next step's code is accepted (clock skew of one step either way).
        let next = totp::code(&enrolment.secret, step + 1);
        assert!(matches!(
            store.verify_mfa("alice", &next, now).unwrap(),
            MfaCheck::Verified { .. }
        ));
        // Two steps away is wrong.
        let later = totp::code(&enrolment.secret, step + 3);
        assert_eq!(
            store.verify_mfa("alice", &later, now).unwrap(),
            MfaCheck::WrongCode
        );

        let status = store.mfa_status("alice").unwrap().unwrap();
        assert_eq!(status.last_step, Some(step + 1));
        assert_eq!(status.last_verified_at, Some(millis(now)));
        assert_eq!(store.list_mfa_status().unwrap(), vec![status]);
        assert!(store.mfa_enrolled("alice").unwrap());

        assert!(store.reset_mfa("alice").unwrap());
        assert!(!store.reset_mfa("alice").unwrap());
        assert!(!store.mfa_enrolled("alice").unwrap());
        assert_eq!(store.latest_mfa_verification("alice").unwrap(), None);
        assert_eq!(store.mfa_status("alice").unwrap(), None);
        // A new enrolment gets a new secret.
        let again = store.enroll_mfa("alice", now).unwrap();
        assert_ne!(again.secret, enrolment.secret);
    }

    #[test]
    fn secrets_are_encrypted_and_bound_to_their_user() {
        let (_dir, store) = store();
        store.add_user("bob", "pw").unwrap();
        let now = at(1_800_000_000);
        let alice = store.enroll_mfa("alice", now).unwrap();
        store.enroll_mfa("bob", now).unwrap();
        let conn = store.conn();
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT secret_enc FROM mfa_enrolments WHERE user_name = 'alice'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!blob.windows(alice.secret.len()).any(|w| w == alice.secret));
        // Alice's ciphertext on Bob's row does not decrypt.
        conn.execute(
            "UPDATE mfa_enrolments SET secret_enc = ?1 WHERE user_name = 'bob'",
            [&blob],
        )
        .unwrap();
        drop(conn);
        let code = totp::code_at(&alice.secret, now);
        assert!(matches!(
            store.verify_mfa("bob", &code, now),
            Err(StoreError::MfaSecret { .. })
        ));
    }

    #[test]
    fn removing_a_user_removes_their_enrolment() {
        let (_dir, store) = store();
        store.enroll_mfa("alice", at(1_800_000_000)).unwrap();
        store.remove_user("alice").unwrap();
        assert_eq!(store.list_mfa_status().unwrap(), Vec::new());
    }
}
