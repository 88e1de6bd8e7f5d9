//! Gateway runtime settings, validated before anything listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use portcullis_store::Clock;

use crate::alerts::AlertConfig;
use crate::location::LocationConfig;

/// How the gateway treats TLS from clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClientTls {
    /// Answer SSLRequest with 'N'; only plaintext.
    Disabled,
    /// Offer TLS; plaintext is allowed too.
    #[default]
    Optional,
    /// Refuse any session that did not negotiate TLS.
    Required,
}

/// Everything the PostgreSQL listener needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address the PostgreSQL listener binds to.
    pub listen: SocketAddr,
    /// TLS policy towards clients.
    pub client_tls: ClientTls,
    /// PEM certificate chain; when absent a self-signed one is made in `data_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where generated files (self-signed certificate) live.
    pub data_dir: PathBuf,
    /// How long a client may take from TCP accept to a finished login.
    pub startup_timeout: Duration,
    /// Largest message a client may send (bytes).
    pub max_client_message: usize,
    /// Distinct statement texts whose analysis is kept.
    pub analysis_cache: usize,
    /// How long a resource's catalog snapshot is trusted before it is read again.
    pub catalog_ttl: Duration,
    /// How long reading a resource's catalog may take; also the statement and lock timeouts of the
    /// gateway's own connection that reads it.
    pub catalog_timeout: Duration,
    /// Where clients are, from their addresses.
    pub location: LocationConfig,
    /// Where `alert` rules notify.
    pub alerts: AlertConfig,
    /// How long MFA verifications count and how long a request waits for one.
    pub mfa: MfaConfig,
    /// The clock the MFA rules read (the system clock, or a shifted one in tests).
    pub clock: Clock,
    /// The web portal's MFA page (`api.public_url` + `/web/mfa`); MFA notices send users there.
    pub mfa_verify_url: Option<String>,
}

/// The MFA rules (ARCHITECTURE §4, seed 002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaConfig {
    /// How long a verification counts (default 5 minutes).
    pub validity: Duration,
    /// A user idle this long on a resource is asked again, however recent their verification (default 1
    /// minute).
    pub idle_reprompt: Duration,
    /// How long a connection or statement waits for the user to verify before it fails (default 5
    /// minutes).
    pub hold_timeout: Duration,
    /// How often a held request looks for a verification (default 500 ms).
    pub poll_interval: Duration,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            validity: Duration::from_secs(5 * 60),
            idle_reprompt: Duration::from_secs(60),
            hold_timeout: Duration::from_secs(5 * 60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

impl GatewayConfig {
    /// A configuration with the defaults, listening on `listen` and keeping files in `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        GatewayConfig {
            listen,
            client_tls: ClientTls::Optional,
            tls_cert: None,
            tls_key: None,
            data_dir,
            startup_timeout: Duration::from_secs(60),
            max_client_message: 64 * 1024 * 1024,
            analysis_cache: 10_000,
            catalog_ttl: Duration::from_secs(60),
            catalog_timeout: Duration::from_secs(30),
            location: LocationConfig::default(),
            alerts: AlertConfig::default(),
            mfa: MfaConfig::default(),
            clock: Clock::system(),
            mfa_verify_url: None,
        }
    }
}
