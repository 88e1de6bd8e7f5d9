//! The configuration file (`portcullis.yaml`) and where the gateway keeps its state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use portcullis_api::ApiConfig;
use portcullis_gateway::alerts::AlertConfig;
use portcullis_gateway::location::LocationConfig;
use portcullis_gateway::{ClientTls, GatewayConfig};
use portcullis_notify::NotifyConfig;
use portcullis_store::{Clock, Durability, MasterKey, Store};
use serde::Deserialize;

/// The file's shape. Every field is optional; unknown fields are an error so typos do not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Folder for the store, the master key and generated TLS files.
    pub data_dir: Option<PathBuf>,
    /// Address of the PostgreSQL listener (default 127.0.0.1:6432).
    pub listen: Option<SocketAddr>,
    /// TLS towards clients.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Audit log settings.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Seconds a client has to finish logging in.
    pub startup_timeout_secs: Option<u64>,
    /// Seconds a resource's catalog snapshot (names, columns, view definitions) is trusted before sessions
    /// read it again (default 60); DDL through the gateway reads it again at once.
    pub catalog_ttl_secs: Option<u64>,
    /// Seconds reading a resource's catalog may take (default 30); a login waiting for it longer is refused.
    pub catalog_timeout_secs: Option<u64>,
    /// Where clients are, for location conditions in the policy.
    #[serde(default)]
    pub location: LocationConfig,
    /// Where `alert` rules notify (they always log at warn level).
    #[serde(default)]
    pub alerts: AlertConfig,
    /// MFA validity and hold durations.
    #[serde(default)]
    pub mfa: MfaSettings,
    /// Where notifications of approval workflow steps go (e-mail, webhooks) and how they are retried.
    #[serde(default)]
    pub notifications: NotifyConfig,
    /// The HTTP API; it runs only when this section is present.
    pub api: Option<ApiSettings>,
    /// A listener of its own serving `/metrics` without authentication; it runs only when this
    /// section is present (the API serves `/metrics` to auditors and admins either way).
    pub metrics: Option<MetricsSettings>,
    /// Settings for tests only; never set them in production.
    #[serde(default)]
    pub testing: TestingSettings,
}

/// The HTTP API (`api:`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Address of the API listener (default 127.0.0.1:8080).
    pub listen: Option<SocketAddr>,
    /// HTTPS with this certificate and key (PEM); plain HTTP without.
    pub tls: Option<ApiTlsSettings>,
    /// How long a login token is valid (default 900).
    pub token_ttl_secs: Option<u64>,
    /// Refuse API login to users not enrolled in MFA (default true).
    pub require_mfa: Option<bool>,
    /// Members of these gateway roles are API admins (default [portcullis-admin]).
    pub admin_roles: Option<Vec<String>>,
    /// Members of these gateway roles are API auditors (default [portcullis-auditor]).
    pub auditor_roles: Option<Vec<String>>,
    /// The web portal signs a browser out after this many idle seconds (default 900).
    pub web_idle_timeout_secs: Option<u64>,
    /// Where people reach the API and portal (`https://gw.example.com:8443`); MFA notices link there.
    pub public_url: Option<String>,
}

/// The unauthenticated metrics listener (`metrics:`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Its address (default 127.0.0.1:9187); keep it where only the scraper can reach it.
    pub listen: Option<SocketAddr>,
}

impl MetricsSettings {
    /// Where the listener binds.
    pub fn listen(&self) -> SocketAddr {
        self.listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9187)))
    }
}

/// The API's certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// MFA settings (ARCHITECTURE §4); every field in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaSettings {
    /// How long a verification counts (default 300).
    pub validity_secs: Option<u64>,
    /// A user idle this long on a resource is asked to verify again (default 60).
    pub idle_reprompt_secs: Option<u64>,
    /// How long a held connection or statement waits for a verification (default 300).
    pub hold_timeout_secs: Option<u64>,
}

/// Testing-only settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingSettings {
    /// A file holding a number of seconds added to the clock the MFA rules and the `mfa` commands
    /// read, read again on every reading (tests move time forward instead of sleeping).
    pub clock_offset_file: Option<PathBuf>,
}

/// TLS settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `disabled`, `optional` (default) or `required`.
    pub mode: Option<ClientTls>,
    /// PEM certificate chain; a self-signed one is generated when absent.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// Audit settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// `strict` (default): a result reaches the client only after its audit record is on disk.
    /// `journaled`: only after its audit record is in the audit journal, which survives a crash of the
    /// gateway but not of the machine (faster).
    /// `buffered`: records are written in the background (fastest; the last few may be lost in a crash).
    pub durability: Option<DurabilitySetting>,
    /// Sealed journal segments whose last record is older than this many days are removed.
    pub retention_days: Option<u64>,
    /// The journal is kept under this many MB: its oldest sealed segments are removed first.
    pub retention_max_mb: Option<u64>,
    /// Retention waits for the sinks; past this many MB it removes segments a sink has not delivered
    /// (the sink records a gap). Without it, retention waits for the sinks however large the journal.
    pub retention_hard_max_mb: Option<u64>,
    /// Where the journal is streamed to as it is written (see the README, "Streaming the audit trail").
    #[serde(default)]
    pub sinks: Vec<portcullis_sinks::SinkConfig>,
}

impl AuditSettings {
    /// The journal's retention as configured.
    pub fn retention(&self) -> portcullis_store::RetentionPolicy {
        const MB: u64 = 1024 * 1024;
        portcullis_store::RetentionPolicy {
            max_age: self
                .retention_days
                .map(|d| Duration::from_secs(d.saturating_mul(24 * 60 * 60))),
            max_bytes: self.retention_max_mb.map(|m| m.saturating_mul(MB)),
            hard_max_bytes: self.retention_hard_max_mb.map(|m| m.saturating_mul(MB)),
        }
    }
}

/// Audit durability as written in the file.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilitySetting {
    /// See [`Durability::Strict`].
    Strict,
    /// See [`Durability::Journaled`].
    Journaled,
    /// Older configurations' name: since every record goes to the journal, the same as `journaled`.
    Buffered,
}

/// Default address of the PostgreSQL listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6432";

/// Default address of the API listener.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";

impl Settings {
    /// Reads the file, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Settings> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: invalid configuration", path.display()))
    }

    /// The data directory: `--data-dir`, then the file, then `./.portcullis`.
    pub fn data_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(".portcullis"))
    }

    /// Opens (creating on first use) the embedded store in `data_dir`.
    pub fn open_store(&self, data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let key = match std::env::var("PORTCULLIS_MASTER_KEY") {
            Ok(encoded) => MasterKey::from_base64(&encoded)
                .context("PORTCULLIS_MASTER_KEY is not a valid key")?,
            Err(_) => MasterKey::load_or_create(&data_dir.join("master.key"))
                .context("cannot load or create the master key")?,
        };
        let durability = match self.audit.durability {
            Some(DurabilitySetting::Journaled | DurabilitySetting::Buffered) => {
                Durability::Journaled
            }
            Some(DurabilitySetting::Strict) | None => Durability::Strict,
        };
        let path = data_dir.join("portcullis.sqlite");
        Store::open(&path, key, durability)
            .with_context(|| format!("cannot open the store {}", path.display()))
    }

    /// The gateway's runtime configuration.
    pub fn gateway_config(
        &self,
        listen: Option<SocketAddr>,
        data_dir: &Path,
    ) -> Result<GatewayConfig> {
        let listen = match listen.or(self.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let mut config = GatewayConfig::new(listen, data_dir.to_path_buf());
        if let Some(mode) = self.tls.mode {
            config.client_tls = mode;
        }
        config.tls_cert = self.tls.cert.clone();
        config.tls_key = self.tls.key.clone();
        if let Some(secs) = self.startup_timeout_secs {
            config.startup_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.catalog_ttl_secs {
            config.catalog_ttl = Duration::from_secs(secs);
        }
        if let Some(secs) = self.catalog_timeout_secs {
            config.catalog_timeout = Duration::from_secs(secs.max(1));
        }
        config.location = self.location.clone();
        config.alerts = self.alerts.clone();
        let positive = |name: &str, secs: Option<u64>, default: Duration| match secs {
            None => Ok(default),
            Some(0) => bail!("mfa.{name} must be at least 1 second"),
            Some(secs) => Ok(Duration::from_secs(secs)),
        };
        config.mfa.validity =
            positive("validity_secs", self.mfa.validity_secs, config.mfa.validity)?;
        config.mfa.idle_reprompt = positive(
            "idle_reprompt_secs",
            self.mfa.idle_reprompt_secs,
            config.mfa.idle_reprompt,
        )?;
        config.mfa.hold_timeout = positive(
            "hold_timeout_secs",
            self.mfa.hold_timeout_secs,
            config.mfa.hold_timeout,
        )?;
        config.clock = self.clock();
        config.mfa_verify_url = self
            .api
            .as_ref()
            .and_then(|api| api.public_url.as_deref())
            .map(|url| format!("{}/web/mfa", url.trim_end_matches('/')));
        Ok(config)
    }

    /// The API's address and runtime settings, when the file has an `api:` section.
    pub fn api_config(&self) -> Result<Option<(SocketAddr, ApiConfig)>> {
        let Some(api) = &self.api else {
            return Ok(None);
        };
        let listen = match api.listen {
            Some(addr) => addr,
            None => DEFAULT_API_LISTEN.parse().context("default API address")?,
        };
        let mut config = ApiConfig::default();
        match api.token_ttl_secs {
            Some(0) => bail!("api.token_ttl_secs must be at least 1 second"),
            Some(secs) => config.token_ttl = Duration::from_secs(secs),
            None => {}
        }
        if let Some(require) = api.require_mfa {
            config.require_mfa = require;
        }
        if let Some(roles) = &api.admin_roles {
            config.admin_roles = roles.clone();
        }
        if let Some(roles) = &api.auditor_roles {
            config.auditor_roles = roles.clone();
        }
        match api.web_idle_timeout_secs {
            Some(0) => bail!("api.web_idle_timeout_secs must be at least 1 second"),
            Some(secs) => config.web_idle_timeout = Duration::from_secs(secs),
            None => {}
        }
        config.public_url = api
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        Ok(Some((listen, config)))
    }

    /// The clock of the MFA rules: the system clock, shifted when `testing.clock_offset_file` is set.
    pub fn clock(&self) -> Clock {
        match &self.testing.clock_offset_file {
            Some(file) => Clock::with_offset_file(file),
            None => Clock::system(),
        }
    }
}
