//! The PostgreSQL listener: accepts connections and runs one session task per client.

use std::net::SocketAddr;
use std::sync::Arc;

use portcullis_sql::Analyzer;
use portcullis_store::{AuditSink, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::alerts::Alerter;
use crate::cancel::CancelRegistry;
use crate::catalog::CatalogCache;
use crate::config::{ClientTls, GatewayConfig};
use crate::devices::DeviceTrusts;
use crate::error::GatewayError;
use crate::location::Locator;
use crate::mfa::MfaTracker;
use crate::policy::PolicySource;
use crate::session;
use crate::tls;

/// What every session of one gateway shares.
pub(crate) struct Shared {
    pub config: GatewayConfig,
    pub store: Store,
    pub audit: AuditSink,
    pub analyzer: Analyzer,
    pub tls: Option<TlsAcceptor>,
    pub cancels: CancelRegistry,
    pub catalogs: CatalogCache,
    pub policy: Arc<PolicySource>,
    pub locator: Locator,
    pub alerts: Alerter,
    pub mfa: MfaTracker,
    pub devices: DeviceTrusts,
}

/// A bound gateway, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Binds the listener and prepares TLS. Fails early, with a message naming what is wrong, rather than
    /// at the first client.
    pub async fn bind(config: GatewayConfig, store: Store) -> Result<Gateway, GatewayError> {
        let tls = match config.client_tls {
            ClientTls::Disabled => None,
            ClientTls::Optional | ClientTls::Required => {
                Some(TlsAcceptor::from(tls::server_config(&config)?))
            }
        };
        let locator =
            Locator::load(&config.location).map_err(|e| GatewayError::Config(e.to_string()))?;
        let alerts =
            Alerter::start(&config.alerts).map_err(|e| GatewayError::Config(e.to_string()))?;
        let policy = Arc::new(PolicySource::load(&store, &config.clock)?);
        match policy.current().version {
            Some(version) => tracing::info!(version, "policy loaded"),
            None => tracing::warn!("{}", crate::policy::NO_POLICY),
        }
        if let Some(file) = config.clock.offset_file() {
            tracing::warn!(
                file = %file.display(),
                "TESTING ONLY: the MFA clock is shifted by the offset in this file; whoever can write it \
                 can make MFA verifications last forever. Never set testing.clock_offset_file in production"
            );
        }
        let devices = DeviceTrusts::default();
        devices.refresh(&store)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| GatewayError::io(format!("listen on {}", config.listen), e))?;
        let shared = Arc::new(Shared {
            analyzer: Analyzer::new(config.analysis_cache),
            catalogs: CatalogCache::new(config.catalog_ttl, config.catalog_timeout),
            audit: store.audit(),
            cancels: CancelRegistry::default(),
            policy,
            locator,
            alerts,
            mfa: MfaTracker::new(config.mfa, config.clock.clone()),
            devices,
            tls,
            store,
            config,
        });
        Ok(Gateway { listener, shared })
    }

    /// The address clients connect to (useful when the configured port was 0).
    pub fn local_addr(&self) -> Result<SocketAddr, GatewayError> {
        self.listener
            .local_addr()
            .map_err(|e| GatewayError::io("read the listener's address", e))
    }

    /// Serves clients until `shutdown` turns true; sessions already running are left to finish.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) -> Result<(), GatewayError> {
        tracing::info!(addr = %self.local_addr()?, "gateway listening");
        tokio::spawn(Arc::clone(&self.shared.policy).watch(
            self.shared.store.clone(),
            self.shared.config.clock.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(watch_devices(Arc::clone(&self.shared), shutdown.clone()));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let shared = Arc::clone(&self.shared);
                        tokio::spawn(async move { session::run(shared, socket, peer).await });
                    }
                    // Running out of file descriptors must not end the gateway; back off and go on.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        tracing::info!("gateway stopping");
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Reads the device reports again every reload interval until `shutdown` turns true, so open sessions
/// decide their next statement with the trust last reported.
async fn watch_devices(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(crate::policy::RELOAD_INTERVAL) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
        let reader = Arc::clone(&shared);
        match tokio::task::spawn_blocking(move || reader.devices.refresh(&reader.store)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read device reports; the last ones stay")
            }
            Err(e) => tracing::error!(error = %e, "device report task failed"),
        }
    }
}
