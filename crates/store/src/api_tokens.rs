//! Bearer tokens of the HTTP API. A token is 32 random bytes shown once to whoever asked for it; the
//! store keeps only its SHA-256, so a copy of the database does not hand out API access. Named tokens
//! (`portcullis token create`) carry a role; login tokens belong to a user and expire soon. Every call
//! takes `now` so the caller decides which clock counts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{is_unique_violation, StoreError};
use crate::users::user_exists;
use crate::{validate_name, Result, Store};

/// Every token starts with this, so a leaked one is recognisable in logs and secret scanners.
const PREFIX: &str = "pct_";

/// What a named token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiTokenRole {
    /// Manage users, roles, resources, policy and tokens.
    Admin,
    /// Read the audit log, the monitor, requests and the policy.
    Auditor,
}

impl ApiTokenRole {
    /// `admin` or `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiTokenRole::Admin => "admin",
            ApiTokenRole::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for ApiTokenRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiTokenRole {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(ApiTokenRole::Admin),
            "auditor" => Ok(ApiTokenRole::Auditor),
            other => Err(StoreError::Invalid {
                what: "token role",
                reason: format!("{other:?} is not one of admin, auditor"),
            }),
        }
    }
}

/// A token as stored: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// The name of a named token; `None` for a login token.
    pub name: Option<String>,
    /// The role of a named token.
    pub role: Option<ApiTokenRole>,
    /// The user a login token acts as.
    pub user: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix milliseconds.
    pub revoked_at: Option<i64>,
}

impl ApiToken {
    /// Whether the token is usable at `now` (unix milliseconds).
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A token just made: the secret, shown once, and what was stored. `Debug` hides the secret.
#[derive(Clone)]
pub struct IssuedToken {
    /// The bearer token to hand over.
    pub secret: String,
    /// The stored row.
    pub token: ApiToken,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What to create: a named token with a role, or a user's login token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewApiToken {
    /// `portcullis token create`.
    Named {
        /// Unique among named tokens.
        name: String,
        /// What it may do.
        role: ApiTokenRole,
    },
    /// An API login.
    Login {
        /// The user it acts as.
        user: String,
    },
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const COLUMNS: &str = "id, name, role, user_name, created_at, expires_at, revoked_at";

fn from_row(r: &Row<'_>) -> Result<ApiToken> {
    let role: Option<String> = r.get(2)?;
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role
            .map(|role| {
                role.parse()
                    .map_err(|_| StoreError::Corrupt(format!("API token role {role:?}")))
            })
            .transpose()?,
        user: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

impl Store {
    /// Creates a token valid until `expires_at` (unix milliseconds; `None`: until revoked). Login tokens
    /// of users that have expired by `now` are deleted on the way, so they do not pile up.
    pub fn create_api_token(
        &self,
        new: &NewApiToken,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<IssuedToken> {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let (name, role, user) = match new {
            NewApiToken::Named { name, role } => {
                validate_name("token name", name)?;
                (Some(name.clone()), Some(*role), None)
            }
            NewApiToken::Login { user } => (None, None, Some(user.clone())),
        };
        let conn = self.conn();
        if let Some(user) = &user {
            if !user_exists(&conn, user)? {
                return Err(StoreError::NotFound {
                    kind: "user",
                    name: user.clone(),
                });
            }
        }
        conn.execute(
            "DELETE FROM api_tokens WHERE name IS NULL AND expires_at <= ?1",
            [now],
        )?;
        let res = conn.execute(
            "INSERT INTO api_tokens (token_sha256, name, role, user_name, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                hash(&secret),
                name,
                role.map(ApiTokenRole::as_str),
                user,
                now,
                expires_at
            ],
        );
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists {
                    kind: "token",
                    name: name.unwrap_or_default(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        let token = ApiToken {
            id: conn.last_insert_rowid(),
            name,
            role,
            user,
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        Ok(IssuedToken { secret, token })
    }

    /// The token whose secret is `secret`, live or not; `None` when no token has it.
    pub fn api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = ?1"
        ))?;
        let row = stmt
            .query_row([hash(secret)], |r| Ok(from_row(r)))
            .optional()?;
        row.transpose()
    }

    /// Named tokens, oldest first (login tokens are short-lived and not listed).
    pub fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE name IS NOT NULL ORDER BY id"
        ))?;
        let rows = stmt.query_map([], |r| Ok(from_row(r)))?;
        let mut tokens = Vec::new();
        for row in rows {
            tokens.push(row??);
        }
        Ok(tokens)
    }

    /// Revokes the named token at `now`; [`StoreError::NotFound`] when there is no live one by that
    /// name.
    pub fn revoke_api_token(&self, name: &str, now: i64) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            rusqlite::params![name, now],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                kind: "token",
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, MasterKey};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            MasterKey::generate(),
            Durability::Strict,
        )
        .unwrap();
        (dir, store)
    }

    #[test]
    fn named_tokens_are_found_by_secret_only_and_revoked_by_name() {
        let (_dir, store) = store();
        let new = NewApiToken::Named {
            name: "ci".into(),
            role: ApiTokenRole::Auditor,
        };
        let issued = store.create_api_token(&new, 1_000, Some(5_000)).unwrap();
        assert!(issued.secret.starts_with(PREFIX));
        assert!(!format!("{issued:?}").contains(&issued.secret));
        let found = store.api_token(&issued.secret).unwrap().unwrap();
        assert_eq!(found, issued.token);
        assert!(found.is_live(4_999) && !found.is_live(5_000));
        assert!(store.api_token("pct_nope").unwrap().is_none());
        assert!(matches!(
            store.create_api_token(&new, 1_000, None),
            Err(StoreError::AlreadyExists { .. })
        ));
        store.revoke_api_token("ci", 2_000).unwrap();
        assert!(!store
            .api_token(&issued.secret)
            .unwrap()
            .unwrap()
            .is_live(2_001));
        assert!(store.revoke_api_token("ci", 3_000).is_err());
        assert_eq!(store.list_api_tokens().unwrap().len(), 1);
    }

    #[test]
    fn login_tokens_need_a_user_and_expired_ones_are_swept() {
        let (_dir, store) = store();
        let login = NewApiToken::Login {
            user: "alice".into(),
        };
        assert!(matches!(
            store.create_api_token(&login, 0, Some(10)),
            Err(StoreError::NotFound { .. })
        ));
        store.add_user("alice", "pw").unwrap();
        let old = store.create_api_token(&login, 0, Some(10)).unwrap();
        let new = store.create_api_token(&login, 20, Some(30)).unwrap();
        assert!(store.api_token(&old.secret).unwrap().is_none());
        assert_eq!(
            store
                .api_token(&new.secret)
                .unwrap()
                .unwrap()
                .user
                .as_deref(),
            Some("alice")
        );
        assert!(store.list_api_tokens().unwrap().is_empty());
    }
}
