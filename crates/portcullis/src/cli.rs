//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Portcullis: a database access gateway. Users connect their own tools with their own identity; the
/// gateway holds the database credentials, checks every statement and records everything.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(long, short = 'c', global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder for the embedded store and keys (default: ./.portcullis, or the file's data_dir).
    #[arg(long, global = true, env = "PORTCULLIS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Address of the PostgreSQL listener (default 127.0.0.1:6432).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Start a throwaway PostgreSQL with sample data, register it, and run the gateway in front of it.
    Demo {
        /// Address of the PostgreSQL listener.
        #[arg(long, default_value = "127.0.0.1:6432")]
        listen: SocketAddr,
        /// Address of the HTTP API and web portal.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api_listen: SocketAddr,
    },
    /// Manage resources (upstream databases) and their credentials.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Manage gateway users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage roles and membership.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Query the audit log; verify, re-index or export the key of its journal.
    Audit(AuditArgs),
    /// Apply, show, check, explain or test the policy the gateway enforces, or replay the audit log
    /// through a proposed one.
    #[command(subcommand)]
    Policy(crate::commands::policy::PolicyCommand),
    /// The policy monitor: every decision (connection stages and statements) and why it was made.
    Monitor(crate::commands::monitor::MonitorArgs),
    /// Device trust reported by an endpoint-management integration.
    #[command(subcommand)]
    Device(crate::commands::device::DeviceCommand),
    /// Ask for access on demand (a bundle, or objects and privileges on a resource) for a while.
    #[command(subcommand)]
    Request(crate::commands::requests::RequestCommand),
    /// Reserve a resource that needs a reservation for a window (an approver decides).
    Reserve(crate::commands::requests::ReserveArgs),
    /// List approval requests (access, held statements and connections, reservations).
    Requests(crate::commands::requests::RequestsArgs),
    /// Approve a request as one of its workflow's approvers.
    Approve(crate::commands::requests::DecideArgs),
    /// Reject a request as one of its workflow's approvers (final).
    Reject(crate::commands::requests::DecideArgs),
    /// Pending requests you may decide, and your notifications.
    Inbox(crate::commands::requests::InboxArgs),
    /// Notification deliveries (e-mail, webhooks): where each stands, its attempts and last error.
    Notifications(crate::commands::notifications::DeliveriesArgs),
    /// Multi-factor authentication: enrol users in TOTP, verify a code, see and reset enrolments.
    #[command(subcommand)]
    Mfa(crate::commands::mfa::MfaCommand),
    /// Bearer tokens for the HTTP API: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(crate::commands::token::TokenCommand),
}

/// How a command gets a password without it appearing in the process list or shell history.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
    pub password_env: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `resource` subcommands.
#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register a PostgreSQL upstream and the credential the gateway uses for it.
    Add {
        /// Name clients use as their database name.
        name: String,
        /// Upstream host.
        #[arg(long)]
        host: String,
        /// Upstream port.
        #[arg(long, default_value_t = 5432)]
        port: u16,
        /// Database on the upstream.
        #[arg(long)]
        database: String,
        /// Role the gateway logs in as.
        #[arg(long = "db-user")]
        db_user: String,
        /// TLS to the upstream: disable, prefer, require or verify-full.
        #[arg(long, default_value = "prefer")]
        tls: String,
        /// Where the credential's password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Replace a resource's stored credential.
    SetCredential {
        /// Resource name.
        name: String,
        /// Role the gateway logs in as.
        #[arg(long = "db-user")]
        db_user: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List resources (never their secrets).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a resource and its credential.
    Remove {
        /// Resource name.
        name: String,
    },
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// User name.
        name: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change a user's password.
    Passwd {
        /// User name.
        name: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List users and their roles.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user.
    Remove {
        /// User name.
        name: String,
    },
    /// Set an attribute policies read (`:user.attributes.KEY` in a row filter).
    SetAttribute {
        /// User name.
        name: String,
        /// Attribute key: letters, digits and `_`.
        key: String,
        /// Its value.
        value: String,
    },
    /// Remove an attribute.
    UnsetAttribute {
        /// User name.
        name: String,
        /// Attribute key.
        key: String,
    },
}

/// `role` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role.
    Add {
        /// Role name.
        name: String,
    },
    /// List roles and members.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a role.
    Remove {
        /// Role name.
        name: String,
    },
    /// Make a user a member of a role.
    Grant {
        /// Role name.
        role: String,
        /// User name.
        user: String,
    },
    /// Remove a user from a role.
    Revoke {
        /// Role name.
        role: String,
        /// User name.
        user: String,
    },
}

/// Filters and output options `audit` and `monitor` share.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Only this gateway user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// From this time on (RFC 3339, e.g. 2026-11-23T10:00:00Z, or a relative "15m", "2h", "1d").
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `audit` filters, or one of its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    /// Who, where, when, how many, and the output form.
    #[command(flatten)]
    pub records: RecordArgs,
    /// Statement text contains this.
    #[arg(long)]
    pub text: Option<String>,
    /// Touches an object whose name contains this (e.g. "hr.employees").
    #[arg(long)]
    pub object: Option<String>,
    /// Only connections, only statements, only approval request steps (workflows) or only MFA events.
    #[arg(long, value_parser = ["connections", "statements", "workflows", "mfa"])]
    pub kind: Option<String>,
    /// Only this decision (allow or deny).
    #[arg(long)]
    pub decision: Option<String>,
    /// Only the records of this session id (what the portal replays).
    #[arg(long)]
    pub session: Option<String>,
}

/// What else `audit` does with the journal.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the journal's hash chain, sequences and signed checkpoints, and the index against it;
    /// exits non-zero at the first sign of tampering.
    Verify {
        /// Start at the segment holding this record.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// The public key to check signatures with (hex, as `audit public-key` prints it); the
        /// journal's own key file by default.
        #[arg(long)]
        public_key: Option<String>,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index (the tables `audit` and the API read) from the journal.
    Reindex,
    /// Print the journal's public key, for auditors to verify with.
    PublicKey,
    /// How far the index and each audit sink are behind the journal, and each sink's last error.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}
