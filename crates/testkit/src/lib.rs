//! Throwaway PostgreSQL servers for tests.
//!
//! [`PgServer::start`] runs `initdb` into a temporary directory and starts a server on a free
//! 127.0.0.1 port, with role [`APP_USER`] (SCRAM password [`APP_PASSWORD`], superuser) and
//! database [`APP_DB`]. Every call makes an independent server, so tests can run in parallel;
//! [`PgServer::shared`] gives one lazily started server per test process instead.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `pg_ctl` are run
//! as the OS user `postgres` through `runuser`.

mod binaries;
mod error;
mod net;
mod rsyslog;
mod server;
mod ssl;
mod watchdog;

pub use binaries::pg_bin_dir;
pub use error::TestkitError;
pub use net::{free_port, wait_for_port};
pub use rsyslog::Rsyslog;
pub use server::{PgServer, APP_DB, APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD};
