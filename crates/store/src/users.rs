//! Gateway users: an argon2id hash (for password checks outside the wire protocol, e.g. the admin API)
//! and a SCRAM-SHA-256 secret (for PostgreSQL clients) for each.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{is_unique_violation, StoreError};
use crate::{now_millis, scram, validate_name, Result, Store};

/// A gateway user as listed by [`Store::list_users`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Roles the user is a member of, sorted.
    pub roles: Vec<String>,
    /// When the user was created (millisecond precision). Serialized as RFC 3339.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: OffsetDateTime,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// Attributes policies read (`:user.attributes.region` in a row filter).
    pub attributes: BTreeMap<String, String>,
}

/// What the gateway needs to authenticate a client as this user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserLogin {
    /// Login name.
    pub name: String,
    /// The SCRAM-SHA-256 secret in PostgreSQL's `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey` form.
    pub scram_secret: String,
    /// Roles the user is a member of, sorted.
    pub roles: Vec<String>,
    /// Attributes policies read.
    pub attributes: BTreeMap<String, String>,
}

impl std::fmt::Debug for UserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserLogin")
            .field("name", &self.name)
            .field("scram_secret", &"***")
            .field("roles", &self.roles)
            .field("attributes", &self.attributes)
            .finish()
    }
}

fn serialize_rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// The argon2id PHC string and the SCRAM secret for a new password. Slow on purpose: call without
/// holding the connection lock.
fn password_material(password: &str) -> Result<(String, String)> {
    if password.is_empty() {
        return Err(StoreError::Invalid {
            what: "password",
            reason: "must not be empty".into(),
        });
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::PasswordHash(e.to_string()))?
        .to_string();
    Ok((hash, scram::scram_secret_for(password)))
}

/// A hash to verify against when the user does not exist, so that the answer takes as long as for a
/// real user and does not reveal which names exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"portcullis-no-such-user", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn millis_to_datetime(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

pub(crate) fn roles_of(conn: &Connection, user: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT role_name FROM role_members WHERE user_name = ?1 ORDER BY role_name",
    )?;
    let roles = stmt
        .query_map([user], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(roles)
}

fn attributes_of(conn: &Connection, user: &str) -> Result<BTreeMap<String, String>> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM user_attributes WHERE user_name = ?1")?;
    let attributes = stmt
        .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<String, String>>>()?;
    Ok(attributes)
}

/// An attribute key is what a policy can name after `:user.attributes.`: letters, digits and `_`.
fn validate_attribute_key(key: &str) -> Result<()> {
    if !key.is_empty()
        && key.len() <= 63
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    Err(StoreError::Invalid {
        what: "attribute key",
        reason: format!("{key:?} must be 1 to 63 letters, digits or underscores"),
    })
}

pub(crate) fn user_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "user",
        name: name.to_owned(),
    }
}

impl Store {
    /// Creates a user. Fails with [`StoreError::AlreadyExists`] if the name is taken.
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        validate_name("user name", name)?;
        let (hash, scram) = password_material(password)?;
        let res = self.conn().execute(
            "INSERT INTO users (name, password_hash, scram_secret, created_at, disabled) \
             VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![name, hash, scram, now_millis()],
        );
        match res {
            Ok(_) => {
                tracing::info!(user = name, "user added");
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                kind: "user",
                name: name.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a user's password (both the argon2id hash and the SCRAM secret).
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let (hash, scram) = password_material(password)?;
        let n = self.conn().execute(
            "UPDATE users SET password_hash = ?2, scram_secret = ?3 WHERE name = ?1",
            rusqlite::params![name, hash, scram],
        )?;
        if n == 0 {
            return Err(not_found(name));
        }
        tracing::info!(user = name, "password changed");
        Ok(())
    }

    /// Enables or disables a user. A disabled user has no [`UserLogin`] and never verifies.
    pub fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE users SET disabled = ?2 WHERE name = ?1",
            rusqlite::params![name, disabled],
        )?;
        if n == 0 {
            return Err(not_found(name));
        }
        tracing::info!(user = name, disabled, "user enabled/disabled");
        Ok(())
    }

    /// Deletes a user and their role memberships. [`StoreError::NotFound`] if absent.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("DELETE FROM users WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(not_found(name));
        }
        tracing::info!(user = name, "user removed");
        Ok(())
    }

    /// Sets a user's attribute (replacing its value). [`StoreError::NotFound`] if the user is absent.
    pub fn set_user_attribute(&self, name: &str, key: &str, value: &str) -> Result<()> {
        validate_attribute_key(key)?;
        if value.chars().any(char::is_control) {
            return Err(StoreError::Invalid {
                what: "attribute value",
                reason: "must not contain control characters".into(),
            });
        }
        let conn = self.conn();
        if !user_exists(&conn, name)? {
            return Err(not_found(name));
        }
        conn.execute(
            "INSERT INTO user_attributes (user_name, key, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_name, key) DO UPDATE SET value = excluded.value",
            [name, key, value],
        )?;
        tracing::info!(user = name, key, "user attribute set");
        Ok(())
    }

    /// Removes a user's attribute; `false` when it was not set.
    pub fn remove_user_attribute(&self, name: &str, key: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM user_attributes WHERE user_name = ?1 AND key = ?2",
            [name, key],
        )?;
        Ok(n > 0)
    }

    /// All users, sorted by name.
    pub fn list_users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
        {
            let mut stmt =
                conn.prepare("SELECT user_name, role_name FROM role_members ORDER BY role_name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (user, role) = row?;
                memberships.entry(user).or_default().push(role);
            }
        }
        let mut stmt =
            conn.prepare("SELECT name, created_at, disabled FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        let mut users = Vec::new();
        for row in rows {
            let (name, created_ms, disabled) = row?;
            users.push(User {
                roles: memberships.remove(&name).unwrap_or_default(),
                attributes: attributes_of(&conn, &name)?,
                name,
                created_at: millis_to_datetime(created_ms)?,
                disabled,
            });
        }
        Ok(users)
    }

    /// The SCRAM secret and roles of an enabled user; `None` if the user does not exist or is disabled.
    pub fn user_login(&self, name: &str) -> Result<Option<UserLogin>> {
        let conn = self.conn();
        let row: Option<(String, bool)> = conn
            .query_row(
                "SELECT scram_secret, disabled FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((scram_secret, false)) => Ok(Some(UserLogin {
                name: name.to_owned(),
                scram_secret,
                roles: roles_of(&conn, name)?,
                attributes: attributes_of(&conn, name)?,
            })),
            _ => Ok(None),
        }
    }

    /// Checks `password` against the user's argon2id hash. `false` for a wrong password, an unknown
    /// user or a disabled user (all take about the same time). Slow (tens of milliseconds): from async
    /// code, call it in `spawn_blocking`.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<bool> {
        let row: Option<(String, bool)> = self
            .conn()
            .query_row(
                "SELECT password_hash, disabled FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((hash_text, disabled)) = row else {
            if let Ok(dummy) = PasswordHash::new(dummy_hash()) {
                let _ = Argon2::default().verify_password(password.as_bytes(), &dummy);
            }
            return Ok(false);
        };
        let hash = PasswordHash::new(&hash_text)
            .map_err(|e| StoreError::Corrupt(format!("password hash of user {name:?}: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        Ok(ok && !disabled)
    }
}
