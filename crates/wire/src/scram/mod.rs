//! SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it.
//!
//! PostgreSQL flavour: the username in client-first-message is ignored (clients send `n=`),
//! passwords are SASLprep'ed (falling back to the raw bytes when SASLprep fails), and only
//! channel-binding flags `n` and `y` are accepted because `-PLUS` is never advertised.

mod client;
mod crypto;
mod secret;
mod server;

pub use client::ScramClient;
pub use secret::ScramSecret;
pub use server::ScramServer;

/// The SASL mechanism name to advertise and expect.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Iteration count PostgreSQL uses by default (`scram_iterations`), used for new secrets.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Largest iteration count the client accepts from a server, bounding the CPU a hostile
/// upstream can make us burn.
pub const MAX_CLIENT_ITERATIONS: u32 = 10_000_000;

#[cfg(test)]
mod tests;
