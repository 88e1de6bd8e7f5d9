//! The Portcullis gateway runtime: it accepts PostgreSQL clients, authenticates them as gateway users,
//! opens the upstream connection with the credential it holds, analyses every statement, refuses what it
//! cannot analyse, relays the rest transparently and records everything in the audit log.
//!
//! The protocol codec lives in `portcullis-wire`, SQL analysis in `portcullis-sql` and state in
//! `portcullis-store`; this crate only ties them to sockets.

pub mod alerts;
mod cancel;
mod catalog;
pub mod config;
mod devices;
mod error;
mod frames;
mod listener;
pub mod location;
pub(crate) mod metrics;
mod mfa;
mod policy;
mod rows;
mod session;
mod stream;
mod tls;
mod upstream;

pub use config::{ClientTls, GatewayConfig, MfaConfig};
pub use error::GatewayError;
pub use listener::Gateway;
pub use tls::server_config_from_files as tls_server_config;
