//! `resource`, `user` and `role`: administration of the store.

use anyhow::{Context, Result};
use portcullis_store::{ResourceSpec, Secret, Store, TlsMode};

use crate::cli::{ResourceCommand, RoleCommand, UserCommand};
use crate::password;
use crate::table;

/// Runs a `resource` subcommand.
pub fn resource(store: &Store, command: ResourceCommand) -> Result<()> {
    match command {
        ResourceCommand::Add {
            name,
            host,
            port,
            database,
            db_user,
            tls,
            password,
        } => {
            let tls: TlsMode = tls.parse().with_context(|| {
                format!("--tls {tls}: expected disable, prefer, require or verify-full")
            })?;
            let secret = Secret::new(password::read(&password)?);
            store.add_resource(&ResourceSpec {
                name: name.clone(),
                host,
                port,
                database,
                tls,
                username: db_user,
                password: secret,
            })?;
            println!("resource {name} added");
        }
        ResourceCommand::SetCredential {
            name,
            db_user,
            password,
        } => {
            let secret = Secret::new(password::read(&password)?);
            store.update_credential(&name, &db_user, &secret)?;
            println!("credential of {name} replaced");
        }
        ResourceCommand::List { json } => {
            let resources = store.list_resources()?;
            if json {
                for r in &resources {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                let rows: Vec<Vec<String>> = resources
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            format!("{}:{}", r.host, r.port),
                            r.database.clone(),
                            r.tls.to_string(),
                        ]
                    })
                    .collect();
                table::print(&["NAME", "ADDRESS", "DATABASE", "TLS"], &rows);
            }
        }
        ResourceCommand::Remove { name } => {
            store.remove_resource(&name)?;
            println!("resource {name} removed");
        }
    }
    Ok(())
}

/// Runs a `user` subcommand.
pub fn user(store: &Store, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add { name, password } => {
            store.add_user(&name, &password::read(&password)?)?;
            println!("user {name} added");
        }
        UserCommand::Passwd { name, password } => {
            store.set_password(&name, &password::read(&password)?)?;
            println!("password of {name} changed");
        }
        UserCommand::List { json } => {
            let users = store.list_users()?;
            if json {
                for u in &users {
                    println!("{}", serde_json::to_string(u)?);
                }
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| vec![u.name.clone(), u.roles.join(","), u.disabled.to_string()])
                    .collect();
                table::print(&["NAME", "ROLES", "DISABLED"], &rows);
            }
        }
        UserCommand::Remove { name } => {
            store.remove_user(&name)?;
            println!("user {name} removed");
        }
        UserCommand::SetAttribute { name, key, value } => {
            store.set_user_attribute(&name, &key, &value)?;
            println!("attribute {key} of {name} set");
        }
        UserCommand::UnsetAttribute { name, key } => {
            if store.remove_user_attribute(&name, &key)? {
                println!("attribute {key} of {name} removed");
            } else {
                println!("{name} has no attribute {key}");
            }
        }
    }
    Ok(())
}

/// Runs a `role` subcommand.
pub fn role(store: &Store, command: RoleCommand) -> Result<()> {
    match command {
        RoleCommand::Add { name } => {
            store.add_role(&name)?;
            println!("role {name} added");
        }
        RoleCommand::List { json } => {
            let roles = store.list_roles()?;
            if json {
                for r in &roles {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                let rows: Vec<Vec<String>> = roles
                    .iter()
                    .map(|r| vec![r.name.clone(), r.members.join(",")])
                    .collect();
                table::print(&["NAME", "MEMBERS"], &rows);
            }
        }
        RoleCommand::Remove { name } => {
            store.remove_role(&name)?;
            println!("role {name} removed");
        }
        RoleCommand::Grant { role, user } => {
            store.grant_role(&user, &role)?;
            println!("{user} is now a member of {role}");
        }
        RoleCommand::Revoke { role, user } => {
            store.revoke_role(&user, &role)?;
            println!("{user} is no longer a member of {role}");
        }
    }
    Ok(())
}
