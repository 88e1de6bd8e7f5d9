//! `portcullis mfa`: TOTP enrolment and verification. A connection or statement the policy requires MFA
//! for (`@mfa` on a Cedar permit) is held by the gateway until the user runs `portcullis mfa verify`;
//! see ARCHITECTURE §4 for how long a verification counts.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use portcullis_store::{Clock, Store};
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

use super::audit::format_micros;
use crate::table;

/// `mfa` subcommands.
#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Enrol a user in TOTP: prints the otpauth:// URI and a QR code of it for an authenticator app.
    Enroll {
        /// The gateway user.
        user: String,
        /// Print the URI only, without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Complete MFA with the 6-digit code the authenticator app shows; a connection or statement the
    /// gateway holds for this user then goes on.
    Verify {
        /// The gateway user.
        #[arg(long)]
        user: String,
        /// The code.
        code: String,
    },
    /// Show the enrolment and last verification of one user, or of every enrolled user.
    Status {
        /// The gateway user (all enrolled users when absent).
        user: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user's enrolment and verifications (a lost device); they must enrol again.
    Reset {
        /// The gateway user.
        user: String,
    },
}

/// Runs an `mfa` subcommand; `clock` is the time the codes and verifications are taken at.
pub fn run(store: &Store, clock: &Clock, command: MfaCommand) -> Result<()> {
    match command {
        MfaCommand::Enroll { user, no_qr } => {
            let enrolment = store.enroll_mfa(&user, clock.now()).with_context(|| {
                format!(
                    "cannot enrol {user} (to enrol again, run `portcullis mfa reset {user}` first)"
                )
            })?;
            record(store, &user, "enroll", "ok")?;
            println!("{}", enrolment.uri);
            if !no_qr {
                let code = QrCode::new(enrolment.uri.as_bytes())
                    .context("cannot make a QR code of the URI")?;
                let image = code
                    .render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .build();
                println!("{image}");
            }
            println!(
                "Scan the QR code (or paste the URI) into an authenticator app, then complete MFA with \
                 `portcullis mfa verify --user {user} <code>`."
            );
            Ok(())
        }
        MfaCommand::Verify { user, code } => {
            let check = store.verify_mfa(&user, &code, clock.now())?;
            let problem = portcullis_api::mfa::problem(&user, check);
            record(
                store,
                &user,
                "verify",
                problem.as_ref().map_or("ok", |p| p.result),
            )?;
            if let Some(problem) = problem {
                bail!(problem.message);
            }
            println!("MFA verified for {user}");
            Ok(())
        }
        MfaCommand::Status { user, json } => {
            let statuses = match &user {
                Some(user) => match store.mfa_status(user)? {
                    Some(status) => vec![status],
                    None => bail!("{user} is not enrolled in MFA"),
                },
                None => store.list_mfa_status()?,
            };
            if json {
                for status in &statuses {
                    println!("{}", serde_json::to_string(status)?);
                }
                return Ok(());
            }
            let ms = |t: i64| format_micros(t.saturating_mul(1000));
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    vec![
                        s.user.clone(),
                        s.method.clone(),
                        ms(s.enrolled_at),
                        s.last_verified_at.map(ms).unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            table::print(&["USER", "METHOD", "ENROLLED", "LAST VERIFIED"], &rows);
            Ok(())
        }
        MfaCommand::Reset { user } => {
            if !store.reset_mfa(&user)? {
                bail!("{user} is not enrolled in MFA");
            }
            record(store, &user, "reset", "ok")?;
            println!("MFA enrolment of {user} removed; they must enrol again");
            Ok(())
        }
    }
}

/// Records an MFA event of the CLI in the audit log and waits until it is written.
fn record(store: &Store, user: &str, action: &str, result: &str) -> Result<()> {
    portcullis_api::mfa::record(store, user, action, result)
        .context("cannot record the MFA event in the audit log")
}
