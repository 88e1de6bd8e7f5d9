//! `policy apply`, `show`, `check`, `explain`, `test` and `what-if`. `apply` validates a policy file and
//! stores it as the policy in force (running gateways load it within a second, without dropping
//! sessions); `check`, `explain` and `test` run the same loader and engine the gateway uses, without
//! touching any database; `what-if` replays the audit log through a proposed policy.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use portcullis_policy::explain::{
    self as decide, parse_device_trust, parse_location, parse_time, ContextInput,
};
use portcullis_policy::{CompiledPolicy, Context, Policy, Verdict};
use time::OffsetDateTime;

use super::{explain, policy_cases, policy_test, what_if, ExitStatus};
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
    /// Run a file of cases (statement, who, context, expected verdict, masks, row filters, rules) through
    /// the same analysis and engine as `explain`; prints every mismatch and `N passed, M failed`, and
    /// exits 1 when any case fails (or the file is malformed).
    Test {
        /// The policy file (YAML).
        #[arg(long = "file", short = 'f')]
        file: PathBuf,
        /// The case file (YAML).
        cases: PathBuf,
        /// One JSON object with every case's result instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replay the statements the audit log recorded in a window through a proposed policy and list every
    /// decision that would change, grouped by what makes the difference. Reads the store; changes
    /// nothing.
    WhatIf(WhatIfArgs),
}

/// `policy what-if` arguments.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The proposed policy file (YAML).
    #[arg(long = "file", short = 'f')]
    pub file: PathBuf,
    /// From this time on (RFC 3339, or a relative "15m", "2h", "7d").
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Up to this time (same forms as --since; default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Only statements on this resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// Only statements of this gateway user.
    #[arg(long)]
    pub user: Option<String>,
    /// Example statements shown per group of changes (0: all of them).
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// Exit 1 when any decision would change (for CI); otherwise only errors fail.
    #[arg(long)]
    pub fail_on_change: bool,
    /// One JSON object with every change instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Exit 1 when the verdict is deny, 2 when it is require-approval and 3 when nothing could be
    /// explained (for scripts); by default the exit status only says whether the explanation was made.
    #[arg(long)]
    pub exit_code: bool,
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
        PolicyCommand::Explain(args) => match (explain(&args), args.exit_code) {
            (Ok(Verdict::Allow), _) | (Ok(_), false) => Ok(()),
            (Ok(Verdict::Deny), true) => Err(ExitStatus(1).into()),
            (Ok(Verdict::RequireApproval), true) => Err(ExitStatus(2).into()),
            (Err(e), false) => Err(e),
            // Not 1: a script asserting a denial must not pass because the policy file is broken.
            (Err(e), true) => {
                eprintln!("Error: {e:?}");
                Err(ExitStatus(3).into())
            }
        },
        PolicyCommand::Test { file, cases, json } => {
            let policy = load(&file)?;
            let cases_name = cases.display().to_string();
            let cases = policy_cases::load(&cases).map_err(anyhow::Error::msg)?;
            let summary = policy_test::run(
                &CompiledPolicy::compile(&policy),
                &file.display().to_string(),
                &cases_name,
                &cases,
                OffsetDateTime::now_utc(),
            );
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                policy_test::print_text(&summary);
            }
            if summary.all_passed() {
                Ok(())
            } else {
                Err(ExitStatus(1).into())
            }
        }
        PolicyCommand::WhatIf(args) => {
            let policy = load(&args.file)?;
            let store = settings.open_store(data_dir)?;
            let now = OffsetDateTime::now_utc();
            let time = |flag: &str, t: &str| {
                portcullis_api::parse_time(t, now).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
            };
            let window = what_if::Window {
                since: time("--since", &args.since)?,
                until: args
                    .until
                    .as_deref()
                    .map(|t| time("--until", t))
                    .transpose()?,
                resource: args.resource.clone(),
                user: args.user.clone(),
            };
            let report =
                what_if::replay(&store, &policy, &args.file.display().to_string(), &window)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                what_if::print_text(&report, args.examples);
            }
            if args.fail_on_change && report.changed() > 0 {
                return Err(ExitStatus(1).into());
            }
            Ok(())
        }
    }
}

/// Prints the explanation `args` ask for; the verdict for the whole text.
fn explain(args: &ExplainArgs) -> Result<Verdict> {
    let policy = load(&args.file)?;
    let ctx = context(args)?;
    let now = match &args.at {
        Some(at) => parse_time(at).map_err(|e| anyhow::anyhow!("--at {e}"))?,
        None => OffsetDateTime::now_utc(),
    };
    let request = decide::Request {
        ctx: &ctx,
        search_path: &args.search_path,
        now,
        rows: args.rows,
        sql: &args.sql,
    };
    let compiled = CompiledPolicy::compile(&policy);
    let report = decide::explain(&compiled, &args.file.display().to_string(), &request);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        explain::print_text(&report);
    }
    Ok(report.verdict())
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
    let location = parse_location(&args.location).map_err(|e| anyhow::anyhow!("--location {e}"))?;
    let device_trust = parse_device_trust(&args.device_trust)
        .map_err(|e| anyhow::anyhow!("--device-trust {e}"))?;
    Ok(ContextInput {
        user: &args.user,
        roles: &args.roles,
        resource: &args.resource,
        client_addr: args.client_addr,
        location,
        device_trust,
        mfa_verified: args.mfa_verified,
        justification: args.justification.as_deref(),
        approvals: &args.approvals,
    }
    .build())
}
