//! `portcullis token`: named bearer tokens for the HTTP API (automation, an admin's scripts). The
//! secret is printed once; the store keeps only its SHA-256.

use anyhow::{Context, Result};
use clap::Subcommand;
use portcullis_store::{ApiTokenRole, NewApiToken, Store};

use super::audit::format_micros;
use crate::table;

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (only this once).
    Create {
        /// A unique name, to list and revoke it by.
        #[arg(long)]
        name: String,
        /// What it may do: admin or auditor.
        #[arg(long, value_parser = ["admin", "auditor"])]
        role: String,
        /// How long it lasts, e.g. 90d or 12h (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// Runs a `token` subcommand.
pub fn run(store: &Store, command: TokenCommand) -> Result<()> {
    let now = portcullis_workflows::millis(time::OffsetDateTime::now_utc());
    match command {
        TokenCommand::Create {
            name,
            role,
            expires,
        } => {
            let role: ApiTokenRole = role.parse()?;
            let expires_at = expires
                .as_deref()
                .map(|text| {
                    portcullis_policy::parse_duration(text)
                        .map_err(anyhow::Error::msg)
                        .context("--expires")
                })
                .transpose()?
                .map(|d| {
                    now.saturating_add(i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX))
                });
            let issued =
                store.create_api_token(&NewApiToken::Named { name, role }, now, expires_at)?;
            println!("{}", issued.secret);
            eprintln!(
                "token {} ({role}) made; this is the only time it is shown: send it as \
                 `Authorization: Bearer …`",
                issued.token.name.unwrap_or_default()
            );
        }
        TokenCommand::List { json } => {
            let tokens = store.list_api_tokens()?;
            if json {
                for t in &tokens {
                    println!("{}", serde_json::to_string(t)?);
                }
                return Ok(());
            }
            let ms = |t: i64| format_micros(t.saturating_mul(1000));
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone().unwrap_or_default(),
                        t.role.map(|r| r.to_string()).unwrap_or_default(),
                        ms(t.created_at),
                        t.expires_at.map(ms).unwrap_or_else(|| "never".into()),
                        t.revoked_at.map(ms).unwrap_or_default(),
                    ]
                })
                .collect();
            table::print(&["NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED"], &rows);
        }
        TokenCommand::Revoke { name } => {
            store.revoke_api_token(&name, now)?;
            println!("token {name} revoked");
        }
    }
    Ok(())
}
