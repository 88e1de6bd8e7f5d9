//! `portcullis serve`: run the gateway until interrupted.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_gateway::Gateway;
use portcullis_store::Store;
use tokio::sync::watch;

use crate::settings::Settings;

/// How long a stopping gateway waits for notification deliveries in flight.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// Runs the gateway on the embedded store in `data_dir`, with the notification delivery worker.
pub fn run(settings: &Settings, data_dir: &Path, listen: Option<SocketAddr>) -> Result<()> {
    let store = settings.open_store(data_dir)?;
    let config = settings.gateway_config(listen, data_dir)?;
    let notifications = settings.notifications.clone();
    runtime()?.block_on(async move {
        // Only https webhooks need it; a missing CA bundle fails them when they are configured.
        let tls = portcullis_gateway::system_tls_client().ok();
        let notifier = portcullis_notify::start(store.clone(), &notifications, tls)?;
        let served = serve(config, store, |_| {}).await;
        notifier.shutdown(NOTIFY_GRACE).await;
        served
    })
}

/// A multi-threaded runtime for the gateway.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Binds, calls `ready` with the bound address, and serves until Ctrl-C or SIGTERM.
pub async fn serve(
    config: portcullis_gateway::GatewayConfig,
    store: Store,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let gateway = Gateway::bind(config, store).await?;
    let addr = gateway.local_addr()?;
    ready(addr);
    let (stop, stopped) = watch::channel(false);
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
