//! `portcullis`: the database access gateway and its admin CLI in one binary.

mod cli;
mod commands;
mod password;
mod settings;
mod table;

use std::process::ExitCode;

use clap::Parser;

// Every statement allocates on a session's worker and frees its audit record on the writer thread;
// mimalloc's thread-local free lists make that cheaper than glibc's arenas (about a tenth of the
// gateway's CPU per statement in `bench/pgbench-compare`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<commands::ExitStatus>() {
            Some(status) => ExitCode::from(status.0),
            // As `fn main() -> anyhow::Result<()>` reports it: the error and its causes.
            None => {
                eprintln!("Error: {e:?}");
                ExitCode::FAILURE
            }
        },
    }
}
