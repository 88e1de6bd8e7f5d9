//! The API's listener: plain HTTP/1.1 or HTTPS (rustls, the gateway's certificate setup), one task per
//! connection so a slow client holds up nobody else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A client must finish the TLS handshake, and send a request's headers, within this time.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop` turns true; with `tls`, HTTPS only.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "API listener cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return Ok(()),
        };
        let router = router.clone();
        match acceptor.clone() {
            None => {
                tokio::spawn(connection(tcp, addr, router));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => connection(tls, addr, router).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %addr, "API TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%addr, "API TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn connection<IO>(io: IO, addr: SocketAddr, router: Router)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        router.clone().oneshot(request)
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, %addr, "API connection ended with an error");
    }
}
