//! One module per command family; each takes parsed arguments and does the work.

mod admin;
pub mod audit;
mod demo;
pub mod device;
mod explain;
pub mod mfa;
pub mod monitor;
pub mod notifications;
pub mod policy;
mod policy_cases;
mod policy_test;
mod recorded_catalog;
pub mod requests;
mod serve;
pub mod token;
mod what_if;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

/// Ends the process with this exit status once the command has printed its answer: a denial from
/// `policy explain --exit-code` or a failed `policy test` case is a result for scripts to branch on, not
/// an error to print.
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    let data_dir = settings.data_dir(cli.data_dir.as_deref());
    match cli.command {
        Command::Serve { listen } => serve::run(&settings, &data_dir, listen),
        Command::Demo { listen, api_listen } => {
            demo::run(&settings, cli.data_dir.as_deref(), listen, api_listen)
        }
        Command::Resource(command) => admin::resource(&settings.open_store(&data_dir)?, command),
        Command::User(command) => admin::user(&settings.open_store(&data_dir)?, command),
        Command::Role(command) => admin::role(&settings.open_store(&data_dir)?, command),
        Command::Audit(args) => audit::run(
            &settings.open_store(&data_dir)?,
            &args,
            &settings.audit.sinks,
        ),
        Command::Policy(command) => policy::run(command, &settings, &data_dir),
        Command::Monitor(args) => monitor::run(&settings.open_store(&data_dir)?, &args),
        Command::Device(command) => device::run(&settings.open_store(&data_dir)?, command),
        Command::Request(command) => {
            requests::request(&settings.open_store(&data_dir)?, &settings.clock(), command)
        }
        Command::Reserve(args) => {
            requests::reserve(&settings.open_store(&data_dir)?, &settings.clock(), &args)
        }
        Command::Requests(args) => {
            requests::list(&settings.open_store(&data_dir)?, &settings.clock(), &args)
        }
        Command::Approve(args) => requests::decide(
            &settings.open_store(&data_dir)?,
            &settings.clock(),
            &args,
            portcullis_store::EndorsementDecision::Approve,
        ),
        Command::Reject(args) => requests::decide(
            &settings.open_store(&data_dir)?,
            &settings.clock(),
            &args,
            portcullis_store::EndorsementDecision::Reject,
        ),
        Command::Inbox(args) => {
            requests::inbox(&settings.open_store(&data_dir)?, &settings.clock(), &args)
        }
        Command::Notifications(args) => {
            notifications::deliveries(&settings.open_store(&data_dir)?, &args)
        }
        Command::Token(command) => token::run(&settings.open_store(&data_dir)?, command),
        Command::Mfa(command) => {
            mfa::run(&settings.open_store(&data_dir)?, &settings.clock(), command)
        }
    }
}
