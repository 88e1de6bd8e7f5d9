//! `portcullis`: the database access gateway and its admin CLI in one binary.

mod cli;
mod commands;
mod password;
mod settings;
mod table;

use std::process::ExitCode;

use clap::Parser;

// Every statement allocates and frees many small buffers on the runtime's workers; mimalloc's
// thread-local free lists make that cheaper than glibc's arenas (about a tenth of the gateway's CPU
// per statement in `bench/pgbench-compare`).
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
    keep_heap_in_small_pages();
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

/// On transparent huge pages the gateway's heap kept growing for minutes under load: its small,
/// churning allocations left 2 MiB pages that a few live ones each held on to (at 50 clients, 16 MiB
/// more resident and +8 % in four minutes, where 4 KiB pages stay flat; see bench/README). mimalloc is
/// built not to ask for them (its `no_thp` feature); this keeps the kernel from using them anyway on
/// hosts whose THP setting is `always`, from here on (the few pages touched before `main` may be huge).
fn keep_heap_in_small_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn off transparent huge pages; memory may grow under load");
    }
}
