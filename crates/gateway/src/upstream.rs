//! Opening the real connection to a resource with the credential the gateway holds.

use std::sync::Arc;

use bytes::BytesMut;
use portcullis_store::{Resource, TlsMode};
use portcullis_wire::{
    decode_backend, encode_password, encode_sasl_initial_response, encode_sasl_response,
    encode_ssl_request, encode_startup, md5_password, AuthRequest, BackendMessage, CancelKey,
    ScramClient, StartupMessage,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::GatewayError;
use crate::frames::read_frame;
use crate::stream::BoxStream;
use crate::tls;

/// Largest message accepted from an upstream during login.
const MAX_LOGIN_MESSAGE: usize = 1024 * 1024;
/// Largest message accepted from an upstream in a session (PostgreSQL's own limit is 1 GiB).
pub const MAX_UPSTREAM_MESSAGE: usize = 1 << 30;
const SCRAM: &str = "SCRAM-SHA-256";

/// A logged-in upstream connection, ready for queries.
pub struct Upstream {
    /// The connection.
    pub stream: BoxStream,
    /// Bytes read past the login's final ReadyForQuery (normally none).
    pub buffered: BytesMut,
    /// ParameterStatus values the server reported, in order.
    pub parameters: Vec<(String, String)>,
    /// The server's cancel key for this connection.
    pub cancel_key: Option<CancelKey>,
    /// Where a CancelRequest for this connection must go.
    pub target: CancelTarget,
}

/// Enough to send a CancelRequest to the upstream later, from another task.
#[derive(Clone, Debug)]
pub struct CancelTarget {
    /// Upstream host.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// The resource's TLS mode, honoured for the cancel connection too.
    pub tls: TlsMode,
}

/// Startup parameters a client may pass on; the rest are the gateway's to choose.
fn forwardable(name: &str) -> bool {
    !matches!(name, "user" | "database" | "replication") && !name.starts_with("_pq_.")
}

/// Connects and logs in to `resource`, forwarding the client's own startup parameters
/// (application_name, options, TimeZone, DateStyle, …).
pub async fn connect(
    resource: &Resource,
    client_params: &[(String, String)],
) -> Result<Upstream, GatewayError> {
    let target = CancelTarget {
        host: resource.info.host.clone(),
        port: resource.info.port,
        tls: resource.info.tls,
    };
    let mut stream = open(&target).await?;
    let mut params = vec![
        ("user".to_string(), resource.username.clone()),
        ("database".to_string(), resource.info.database.clone()),
    ];
    params.extend(
        client_params
            .iter()
            .filter(|(k, _)| forwardable(k))
            .cloned(),
    );
    let mut out = BytesMut::new();
    encode_startup(
        &StartupMessage {
            protocol_version: portcullis_wire::PROTOCOL_3_0,
            params,
        },
        &mut out,
    );
    write(&mut stream, &out).await?;
    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramClient> = None;
    let mut parameters = Vec::new();
    let mut cancel_key = None;
    loop {
        let Some((tag, body)) = read_frame(&mut stream, &mut buf, MAX_LOGIN_MESSAGE).await? else {
            return Err(GatewayError::Upstream(
                "server closed the connection during login".into(),
            ));
        };
        out.clear();
        match decode_backend(tag, &body)? {
            BackendMessage::Authentication(request) => match request {
                AuthRequest::Ok => {}
                AuthRequest::CleartextPassword => {
                    encode_password(resource.password.expose(), &mut out)
                }
                AuthRequest::Md5Password { salt } => encode_password(
                    &md5_password(&resource.username, resource.password.expose(), salt),
                    &mut out,
                ),
                AuthRequest::Sasl { mechanisms } => {
                    if !mechanisms.contains(&SCRAM) {
                        return Err(GatewayError::Upstream(format!(
                            "server offers SASL mechanisms {mechanisms:?}, none of which the gateway supports"
                        )));
                    }
                    let mut client = ScramClient::new(resource.password.expose());
                    encode_sasl_initial_response(SCRAM, &client.client_first(), &mut out);
                    scram = Some(client);
                }
                AuthRequest::SaslContinue(data) => {
                    let client = scram.as_mut().ok_or_else(|| {
                        GatewayError::Upstream("SASL continue without a SASL exchange".into())
                    })?;
                    encode_sasl_response(&client.server_first(data)?, &mut out);
                }
                AuthRequest::SaslFinal(data) => {
                    let client = scram.as_mut().ok_or_else(|| {
                        GatewayError::Upstream("SASL final without a SASL exchange".into())
                    })?;
                    client.server_final(data).map_err(|_| {
                        GatewayError::Upstream("the server's SCRAM signature did not verify".into())
                    })?;
                }
                AuthRequest::Other(code) => {
                    return Err(GatewayError::Upstream(format!(
                        "server asks for authentication method {code}, which the gateway does not support"
                    )))
                }
            },
            BackendMessage::ErrorResponse(fields) => {
                return Err(GatewayError::Upstream(
                    fields.message().unwrap_or("login refused").to_string(),
                ))
            }
            BackendMessage::ParameterStatus { name, value } => {
                parameters.push((name.to_string(), value.to_string()))
            }
            BackendMessage::BackendKeyData(key) => cancel_key = Some(key),
            BackendMessage::ReadyForQuery(_) => {
                return Ok(Upstream {
                    stream,
                    buffered: buf,
                    parameters,
                    cancel_key,
                    target,
                })
            }
            // Notices and protocol negotiation during login are informational.
            _ => {}
        }
        if !out.is_empty() {
            write(&mut stream, &out).await?;
        }
    }
}

/// Opens a TCP connection and negotiates TLS as the resource's mode asks.
pub async fn open(target: &CancelTarget) -> Result<BoxStream, GatewayError> {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| GatewayError::io(format!("connect to {addr}"), e))?;
    let _ = tcp.set_nodelay(true);
    if target.tls == TlsMode::Disable {
        return Ok(Box::new(tcp));
    }
    let mut tcp = tcp;
    let mut out = BytesMut::new();
    encode_ssl_request(&mut out);
    write(&mut tcp, &out).await?;
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| GatewayError::io(format!("TLS negotiation with {addr}"), e))?;
    match (answer, target.tls) {
        (b'S', mode) => {
            let config = tls::upstream_config(mode == TlsMode::VerifyFull)?;
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| GatewayError::Tls(format!("{}: {e}", target.host)))?;
            let tls = TlsConnector::from(Arc::clone(&config))
                .connect(name, tcp)
                .await
                .map_err(|e| GatewayError::io(format!("TLS handshake with {addr}"), e))?;
            Ok(Box::new(tls))
        }
        (b'N', TlsMode::Prefer) => Ok(Box::new(tcp)),
        (b'N', _) => Err(GatewayError::Upstream(format!(
            "{addr} does not accept TLS, and the resource requires it"
        ))),
        (other, _) => Err(GatewayError::Upstream(format!(
            "{addr} answered the TLS request with {other:#04x}"
        ))),
    }
}

async fn write<S: tokio::io::AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    bytes: &[u8],
) -> Result<(), GatewayError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| GatewayError::io("write to upstream", e))
}

/// Runs one query of the gateway's own on a logged-in connection and returns its rows as text.
pub async fn simple_query_rows(
    upstream: &mut Upstream,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, GatewayError> {
    let mut out = BytesMut::new();
    portcullis_wire::encode_query(sql, &mut out);
    write(&mut upstream.stream, &out).await?;
    let mut rows = Vec::new();
    let mut failure = None;
    loop {
        let Some((tag, body)) = read_frame(
            &mut upstream.stream,
            &mut upstream.buffered,
            MAX_UPSTREAM_MESSAGE,
        )
        .await?
        else {
            return Err(GatewayError::Upstream(
                "server closed the connection".into(),
            ));
        };
        match decode_backend(tag, &body)? {
            BackendMessage::DataRow => rows.push(
                crate::rows::data_row_texts(&body).map_err(|e| GatewayError::Upstream(e.into()))?,
            ),
            BackendMessage::ErrorResponse(fields) => {
                failure = Some(fields.message().unwrap_or("query failed").to_string())
            }
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    match failure {
        Some(message) => Err(GatewayError::QueryFailed(message)),
        None => Ok(rows),
    }
}
