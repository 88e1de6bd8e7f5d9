//! `portcullis serve`: run the gateway, and the HTTP API when configured, until interrupted.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_api::{ApiConfig, ApiState, TlsServerConfig};
use portcullis_gateway::Gateway;
use portcullis_store::{Clock, Store};
use tokio::sync::watch;

use crate::settings::Settings;

/// The HTTP API to run beside the gateway.
pub struct Api {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Its settings.
    pub config: ApiConfig,
    /// HTTPS when set.
    pub tls: Option<Arc<TlsServerConfig>>,
    /// Token expiry and TOTP steps follow this clock.
    pub clock: Clock,
}

/// How long a stopping gateway waits for notification deliveries in flight.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping gateway lets audit sinks finish a delivery in flight (the rest goes after the
/// next start, from each sink's cursor).
const SINK_GRACE: Duration = Duration::from_secs(5);

/// Runs the gateway on the embedded store in `data_dir`, with the notification delivery worker and,
/// when configured, the HTTP API.
pub fn run(settings: &Settings, data_dir: &Path, listen: Option<SocketAddr>) -> Result<()> {
    let store = settings.open_store(data_dir)?;
    let config = settings.gateway_config(listen, data_dir)?;
    let api = api(settings)?;
    let notifications = settings.notifications.clone();
    let sinks = settings.audit.sinks.clone();
    let retention = settings.audit.retention();
    let metrics = settings.metrics.as_ref().map(|m| m.listen());
    runtime()?.block_on(async move {
        if let Some(listen) = metrics {
            serve_metrics(listen).await?;
        }
        let sinks = portcullis_sinks::start(&store, &sinks, retention)
            .context("cannot start the audit sinks (audit.sinks)")?;
        let notifier = portcullis_notify::start(store.clone(), &notifications)?;
        let served = serve(config, store, api, |_| {}).await;
        notifier.shutdown(NOTIFY_GRACE).await;
        sinks.shutdown(SINK_GRACE).await;
        served
    })
}

/// Serves `/metrics` without authentication on `listen` until the process ends.
async fn serve_metrics(listen: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for metrics (metrics.listen)"))?;
    tracing::info!(address = %listen, "metrics listening");
    let router = portcullis_api::routes::metrics::router();
    tokio::spawn(async move {
        // Never signalled: the listener lasts as long as the runtime.
        let (_never, stop) = watch::channel(false);
        if let Err(error) = portcullis_api::serve(listener, router, None, stop).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// The API the settings ask for, if any.
fn api(settings: &Settings) -> Result<Option<Api>> {
    let Some((listen, config)) = settings.api_config()? else {
        return Ok(None);
    };
    let tls = match settings.api.as_ref().and_then(|api| api.tls.as_ref()) {
        Some(tls) => Some(
            portcullis_gateway::tls_server_config(&tls.cert, &tls.key)
                .context("cannot load the API's TLS certificate (api.tls)")?,
        ),
        None => None,
    };
    Ok(Some(Api {
        listen,
        config,
        tls,
        clock: settings.clock(),
    }))
}

/// A multi-threaded runtime for the gateway.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Binds the gateway (and the API), calls `ready` with the gateway's address, and serves until Ctrl-C
/// or SIGTERM.
pub async fn serve(
    config: portcullis_gateway::GatewayConfig,
    store: Store,
    api: Option<Api>,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let gateway = Gateway::bind(config, store.clone()).await?;
    let addr = gateway.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    if let Some(api) = api {
        let listener = tokio::net::TcpListener::bind(api.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the API", api.listen))?;
        let scheme = if api.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %api.listen, scheme, "HTTP API listening");
        let mut config = api.config;
        // The web portal's SQL console connects to the gateway itself, over loopback when bound to
        // every address.
        let mut console = addr;
        if console.ip().is_unspecified() {
            console.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        config.gateway_addr = Some(console);
        let router =
            portcullis_api::router_with(ApiState::new(store, api.clock, config), api.tls.is_some());
        let stopped = stopped.clone();
        tokio::spawn(async move {
            if let Err(error) = portcullis_api::serve(listener, router, api.tls, stopped).await {
                tracing::error!(%error, "the HTTP API stopped");
            }
        });
    }
    ready(addr);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    gateway.serve(stopped).await?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
