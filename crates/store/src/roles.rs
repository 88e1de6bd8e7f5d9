//! Roles: named groups of users that policies refer to.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::error::{is_unique_violation, StoreError};
use crate::users::user_exists;
use crate::{now_millis, validate_name, Result, Store};

/// A role and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Names of the member users, sorted.
    pub members: Vec<String>,
}

fn role_not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "role",
        name: name.to_owned(),
    }
}

impl Store {
    /// Creates a role. [`StoreError::AlreadyExists`] if the name is taken.
    pub fn add_role(&self, name: &str) -> Result<()> {
        validate_name("role name", name)?;
        let res = self.conn().execute(
            "INSERT INTO roles (name, created_at) VALUES (?1, ?2)",
            rusqlite::params![name, now_millis()],
        );
        match res {
            Ok(_) => {
                tracing::info!(role = name, "role added");
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                kind: "role",
                name: name.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a role and all its memberships. [`StoreError::NotFound`] if absent.
    pub fn remove_role(&self, name: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("DELETE FROM roles WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(role_not_found(name));
        }
        tracing::info!(role = name, "role removed");
        Ok(())
    }

    /// All roles with their members, sorted by name.
    pub fn list_roles(&self) -> Result<Vec<Role>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.name, m.user_name FROM roles r \
             LEFT JOIN role_members m ON m.role_name = r.name \
             ORDER BY r.name, m.user_name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut roles: Vec<Role> = Vec::new();
        for row in rows {
            let (name, member) = row?;
            match roles.last_mut() {
                Some(last) if last.name == name => last.members.extend(member),
                _ => roles.push(Role {
                    name,
                    members: member.into_iter().collect(),
                }),
            }
        }
        Ok(roles)
    }

    /// Makes `user` a member of `role`. Granting an existing membership is a no-op.
    /// [`StoreError::NotFound`] if the user or the role does not exist.
    pub fn grant_role(&self, user: &str, role: &str) -> Result<()> {
        let conn = self.conn();
        if !user_exists(&conn, user)? {
            return Err(StoreError::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        let role_exists = conn
            .query_row("SELECT 1 FROM roles WHERE name = ?1", [role], |_| Ok(()))
            .optional()?
            .is_some();
        if !role_exists {
            return Err(role_not_found(role));
        }
        conn.execute(
            "INSERT INTO role_members (role_name, user_name) VALUES (?1, ?2) \
             ON CONFLICT (role_name, user_name) DO NOTHING",
            [role, user],
        )?;
        tracing::info!(user, role, "role granted");
        Ok(())
    }

    /// Removes `user` from `role`. [`StoreError::NotFound`] (kind "role membership") if the user is not
    /// a member.
    pub fn revoke_role(&self, user: &str, role: &str) -> Result<()> {
        let n = self.conn().execute(
            "DELETE FROM role_members WHERE role_name = ?1 AND user_name = ?2",
            [role, user],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                kind: "role membership",
                name: format!("{user} in {role}"),
            });
        }
        tracing::info!(user, role, "role revoked");
        Ok(())
    }
}
