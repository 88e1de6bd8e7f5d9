//! What every handler shares: the store, the clock and the API settings.

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{Clock, Store};

use crate::error::{ApiError, ApiResult};

/// The API's settings (`api:` in the configuration file).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a login token is valid.
    pub token_ttl: Duration,
    /// Refuse login to users not enrolled in MFA.
    pub require_mfa: bool,
    /// Members of these gateway roles have the API's admin role.
    pub admin_roles: Vec<String>,
    /// Members of these gateway roles have the API's auditor role.
    pub auditor_roles: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The web portal signs a browser out after this long without a request.
    pub web_idle_timeout: Duration,
    /// The address people reach the API at (`https://gw.example.com:8443`), used in links the
    /// gateway and the portal hand out.
    pub public_url: Option<String>,
    /// The gateway's PostgreSQL listener, which the portal's SQL console connects to.
    pub gateway_addr: Option<std::net::SocketAddr>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token_ttl: Duration::from_secs(900),
            require_mfa: true,
            admin_roles: vec!["portcullis-admin".into()],
            auditor_roles: vec!["portcullis-auditor".into()],
            body_limit: 1 << 20,
            web_idle_timeout: Duration::from_secs(900),
            public_url: None,
            gateway_addr: None,
        }
    }
}

/// Shared by all handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: Clock,
    config: ApiConfig,
}

impl ApiState {
    /// State over `store`; `clock` decides token expiry and TOTP steps (the gateway's MFA clock).
    pub fn new(store: Store, clock: Clock, config: ApiConfig) -> ApiState {
        ApiState {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Runs store work on the blocking pool: SQLite calls and password hashing must not stall the
    /// runtime the gateway's sessions run on.
    pub async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &Clock) -> ApiResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner.store, &inner.clock))
            .await
            .map_err(|e| ApiError::internal(&e))?
    }
}

/// Unix milliseconds of the clock's now.
pub fn now_millis(clock: &Clock) -> i64 {
    portcullis_workflows::millis(clock.now())
}
