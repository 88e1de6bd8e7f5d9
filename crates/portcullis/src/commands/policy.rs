//! `policy apply`, `show`, `check` and `explain`. `apply` validates a policy file and stores it as the
//! policy in force (running gateways load it within a second, without dropping sessions); `check` and
//! `explain` run the same loader and engine the gateway uses, without touching any database.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use portcullis_policy::{CompiledPolicy, Context, DeviceTrust, Observed, Policy};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::explain;
use crate::settings::Settings;

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and make it the policy in force. Running gateways pick it up within a
    /// second; open sessions are decided with it from their next statement.
    Apply {
        /// The policy file (YAML).
        #[arg(long = "file", short = 'f')]
        file: PathBuf,
    },
    /// Print the policy in force, as it was applied.
    Show {
        /// One JSON object with the version, source, time and text.
        #[arg(long)]
        json: bool,
    },
    /// Load and validate a policy file; prints `FILE: ok (N grants, M rules)` or every error as
    /// `file:line:column: message` and exits non-zero.
    Check {
        /// The policy file (YAML).
        #[arg(long = "file", short = 'f')]
        file: PathBuf,
    },
    /// Show what the policy decides for SQL: each statement's components, the rule each one fires, missing
    /// grants and the verdict. Nothing is sent to a database.
    ///
    /// Without a catalog, names are resolved by assumption: every schema on --search-path exists, and
    /// unqualified relations resolve to the first schema of --search-path (`$user` is --user).
    /// Unqualified function names are taken to be built-ins in pg_catalog. Qualify names
    /// (`hr.employees`, `util.f()`) to explain exactly the object you mean.
    Explain(Box<ExplainArgs>),
}

/// `policy explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The policy file (YAML).
    #[arg(long = "file", short = 'f')]
    pub file: PathBuf,
    /// The gateway user running the SQL.
    #[arg(long)]
    pub user: String,
    /// A role the user is a member of (repeat for several).
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// The resource (database name clients connect to).
    #[arg(long)]
    pub resource: String,
    /// The client's IP address (default: none, as over a Unix socket).
    #[arg(long)]
    pub client_addr: Option<IpAddr>,
    /// The client's country, ISO 3166-1 alpha-2 (e.g. DE), or `unknown`.
    #[arg(long, default_value = "unknown")]
    pub location: String,
    /// The client device's trust: high, medium, low, exempt or unknown.
    #[arg(long, default_value = "unknown")]
    pub device_trust: String,
    /// The session's search_path, as `SHOW search_path` prints it.
    #[arg(long, default_value = "\"$user\", public")]
    pub search_path: String,
    /// The time of the statement, RFC 3339 (default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Treat the user as having completed MFA within its validity.
    #[arg(long)]
    pub mfa_verified: bool,
    /// The justification the user gave.
    #[arg(long)]
    pub justification: Option<String>,
    /// An approval workflow that has approved this (repeat for several).
    #[arg(long = "approval", value_name = "WORKFLOW")]
    pub approvals: Vec<String>,
    /// Rows the statement fetched or affected: decides row-count rules as after execution.
    #[arg(long)]
    pub rows: Option<u64>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// The SQL (one or more statements).
    pub sql: String,
}

/// Runs a `policy` subcommand.
pub fn run(command: PolicyCommand, settings: &Settings, data_dir: &Path) -> Result<()> {
    match command {
        PolicyCommand::Apply { file } => {
            let text = read(&file)?;
            let name = file.display().to_string();
            let policy = Policy::from_yaml(&text, &name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = settings.open_store(data_dir)?;
            let applied_by = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let version = store.apply_policy(&name, &text, &applied_by)?;
            println!(
                "{name}: applied as policy version {version} ({} grants, {} rules, {} Cedar \
                 policies); running gateways load it within a second",
                policy.grants.len(),
                policy.rules.len(),
                policy.cedar.len()
            );
            Ok(())
        }
        PolicyCommand::Show { json } => {
            let store = settings.open_store(data_dir)?;
            let Some(active) = store.active_policy()? else {
                bail!(
                    "no policy has been applied; apply one with `portcullis policy apply -f FILE`"
                );
            };
            if json {
                println!("{}", serde_json::to_string(&active)?);
            } else {
                print!("{}", active.text);
                if !active.text.ends_with('\n') {
                    println!();
                }
            }
            Ok(())
        }
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Explain(args) => {
            let policy = load(&args.file)?;
            let ctx = context(&args)?;
            let now = match &args.at {
                Some(at) => OffsetDateTime::parse(at, &Rfc3339).with_context(|| {
                    format!("--at `{at}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z")
                })?,
                None => OffsetDateTime::now_utc(),
            };
            let request = explain::Request {
                policy_file: args.file.display().to_string(),
                ctx: &ctx,
                search_path: &args.search_path,
                now,
                rows: args.rows,
                sql: &args.sql,
            };
            let report = explain::explain(&CompiledPolicy::compile(&policy), &request);
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                explain::print_text(&report);
            }
            Ok(())
        }
    }
}

fn check(file: &Path) -> Result<()> {
    let text = read(file)?;
    let name = file.display().to_string();
    match Policy::from_yaml(&text, &name) {
        Ok(policy) => {
            let compiled = CompiledPolicy::compile(&policy);
            println!(
                "{name}: ok ({} grants, {} rules, {} Cedar policies)",
                policy.grants.len(),
                compiled.rules().len(),
                policy.cedar.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors.errors {
                eprintln!("{e}");
            }
            bail!("{name}: {} error(s)", errors.errors.len())
        }
    }
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the policy file {}", file.display()))
}

/// Loads and validates a policy file; its errors become the command's error.
fn load(file: &Path) -> Result<Policy> {
    let text = read(file)?;
    Policy::from_yaml(&text, &file.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn context(args: &ExplainArgs) -> Result<Context> {
    let location = if args.location.eq_ignore_ascii_case("unknown") {
        Observed::Unknown
    } else if args.location.len() == 2 && args.location.bytes().all(|b| b.is_ascii_alphabetic()) {
        Observed::Known(args.location.to_ascii_uppercase())
    } else {
        bail!(
            "--location `{}`: write an ISO 3166-1 alpha-2 country code such as DE, or unknown",
            args.location
        );
    };
    let device_trust = if args.device_trust.eq_ignore_ascii_case("unknown") {
        Observed::Unknown
    } else {
        match DeviceTrust::from_tag(&args.device_trust) {
            Some(t) => Observed::Known(t),
            None => bail!(
                "--device-trust `{}`: use high, medium, low, exempt or unknown",
                args.device_trust
            ),
        }
    };
    let mut ctx = Context::new(args.user.clone(), args.resource.clone())
        .with_roles(args.roles.iter().cloned())
        .with_location(location)
        .with_device_trust(device_trust);
    if let Some(addr) = args.client_addr {
        ctx = ctx.with_addr(addr);
    }
    ctx = ctx.with_mfa_verified(args.mfa_verified);
    if let Some(justification) = &args.justification {
        ctx = ctx.with_justification(justification.clone());
    }
    for workflow in &args.approvals {
        ctx = ctx.with_approval(workflow.clone());
    }
    Ok(ctx)
}
