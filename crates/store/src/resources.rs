//! Resources: upstream PostgreSQL servers and the credential the gateway logs in with.
//! The password is encrypted at rest with the master key; the resource name is the AAD, so a
//! ciphertext moved to another resource's row does not decrypt.

use std::fmt;
use std::str::FromStr;

use rusqlite::{OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::crypto::{decrypt, encrypt, Secret};
use crate::error::{is_unique_violation, StoreError};
use crate::{now_millis, validate_name, Result, Store};

/// How the gateway secures its connection to the upstream server (libpq `sslmode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without certificate verification.
    Prefer,
    /// TLS required, without certificate verification.
    Require,
    /// TLS required, certificate chain and host name verified.
    VerifyFull,
}

impl TlsMode {
    /// The libpq-style name: "disable", "prefer", "require" or "verify-full".
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "disable" => Ok(TlsMode::Disable),
            "prefer" => Ok(TlsMode::Prefer),
            "require" => Ok(TlsMode::Require),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(StoreError::Invalid {
                what: "tls mode",
                reason: format!("{other:?} is not one of disable, prefer, require, verify-full"),
            }),
        }
    }
}

/// Everything needed to register a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The name clients use (as their `database` parameter) to reach this resource.
    pub name: String,
    /// Upstream host name or address.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Upstream database name.
    pub database: String,
    /// TLS towards the upstream.
    pub tls: TlsMode,
    /// Upstream user the gateway logs in as.
    pub username: String,
    /// That user's password.
    pub password: Secret,
}

/// A resource without its credential, safe to list and print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceInfo {
    /// The name clients use to reach this resource.
    pub name: String,
    /// Upstream host name or address.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Upstream database name.
    pub database: String,
    /// TLS towards the upstream.
    pub tls: TlsMode,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change (including credential updates), unix milliseconds.
    pub updated_at: i64,
}

/// A resource with its decrypted credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Where the upstream is.
    pub info: ResourceInfo,
    /// Upstream user the gateway logs in as.
    pub username: String,
    /// That user's password.
    pub password: Secret,
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "resource",
        name: name.to_owned(),
    }
}

fn validate_spec(spec: &ResourceSpec) -> Result<()> {
    validate_name("resource name", &spec.name)?;
    let nonempty = |what: &'static str, v: &str| {
        if v.is_empty() || v.chars().any(char::is_control) {
            Err(StoreError::Invalid {
                what,
                reason: "must be non-empty and free of control characters".into(),
            })
        } else {
            Ok(())
        }
    };
    nonempty("host", &spec.host)?;
    nonempty("database", &spec.database)?;
    nonempty("username", &spec.username)?;
    if spec.port == 0 {
        return Err(StoreError::Invalid {
            what: "port",
            reason: "must not be 0".into(),
        });
    }
    Ok(())
}

const INFO_COLUMNS: &str = "name, host, port, database, tls, created_at, updated_at";

fn info_from_row(r: &Row<'_>) -> Result<ResourceInfo> {
    let name: String = r.get(0)?;
    let port: i64 = r.get(2)?;
    let tls: String = r.get(4)?;
    Ok(ResourceInfo {
        port: u16::try_from(port)
            .map_err(|_| StoreError::Corrupt(format!("resource {name:?} has port {port}")))?,
        tls: tls
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("resource {name:?} has tls mode {tls:?}")))?,
        host: r.get(1)?,
        database: r.get(3)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        name,
    })
}

impl Store {
    fn seal(&self, resource: &str, password: &Secret) -> Result<Vec<u8>> {
        encrypt(
            self.key(),
            resource.as_bytes(),
            password.expose().as_bytes(),
        )
        .map_err(|_| StoreError::Encrypt {
            resource: resource.to_owned(),
        })
    }

    /// Registers a resource. [`StoreError::AlreadyExists`] if the name is taken.
    pub fn add_resource(&self, spec: &ResourceSpec) -> Result<()> {
        validate_spec(spec)?;
        let sealed = self.seal(&spec.name, &spec.password)?;
        let now = now_millis();
        let res = self.conn().execute(
            "INSERT INTO resources (name, host, port, database, tls, username, password_enc, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            rusqlite::params![
                spec.name,
                spec.host,
                spec.port,
                spec.database,
                spec.tls.as_str(),
                spec.username,
                sealed,
                now
            ],
        );
        match res {
            Ok(_) => {
                tracing::info!(resource = %spec.name, host = %spec.host, port = spec.port, "resource added");
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                kind: "resource",
                name: spec.name.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the upstream credential of a resource. [`StoreError::NotFound`] if absent.
    pub fn update_credential(
        &self,
        resource: &str,
        username: &str,
        password: &Secret,
    ) -> Result<()> {
        if username.is_empty() || username.chars().any(char::is_control) {
            return Err(StoreError::Invalid {
                what: "username",
                reason: "must be non-empty and free of control characters".into(),
            });
        }
        let sealed = self.seal(resource, password)?;
        let n = self.conn().execute(
            "UPDATE resources SET username = ?2, password_enc = ?3, updated_at = ?4 WHERE name = ?1",
            rusqlite::params![resource, username, sealed, now_millis()],
        )?;
        if n == 0 {
            return Err(not_found(resource));
        }
        tracing::info!(resource, "resource credential updated");
        Ok(())
    }

    /// Deletes a resource. [`StoreError::NotFound`] if absent.
    pub fn remove_resource(&self, name: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("DELETE FROM resources WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(not_found(name));
        }
        tracing::info!(resource = name, "resource removed");
        Ok(())
    }

    /// All resources (without credentials), sorted by name.
    pub fn list_resources(&self) -> Result<Vec<ResourceInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INFO_COLUMNS} FROM resources ORDER BY name"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(info_from_row(row)?);
        }
        Ok(out)
    }

    /// One resource with its decrypted credential; `None` if absent.
    /// [`StoreError::Decrypt`] if the stored credential does not decrypt with this store's key.
    pub fn resource(&self, name: &str) -> Result<Option<Resource>> {
        let row = {
            let conn = self.conn();
            conn.query_row(
                &format!(
                    "SELECT {INFO_COLUMNS}, username, password_enc FROM resources WHERE name = ?1"
                ),
                [name],
                |r| {
                    Ok((
                        info_from_row(r),
                        r.get::<_, String>(7)?,
                        r.get::<_, Vec<u8>>(8)?,
                    ))
                },
            )
            .optional()?
        };
        let Some((info, username, sealed)) = row else {
            return Ok(None);
        };
        let info = info?;
        let decrypt_err = || StoreError::Decrypt {
            resource: name.to_owned(),
        };
        let plain = decrypt(self.key(), name.as_bytes(), &sealed).map_err(|_| decrypt_err())?;
        let password = String::from_utf8(plain).map_err(|_| decrypt_err())?;
        Ok(Some(Resource {
            info,
            username,
            password: Secret::new(password),
        }))
    }
}
