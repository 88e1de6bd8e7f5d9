//! One client session, from TCP accept to goodbye.

mod admission;
mod alerting;
mod client_side;
mod encoding;
mod flow;
mod login;
mod masking;
mod row_guard;
mod startup;
mod startup_params;
mod statement;
mod upstream_side;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use portcullis_policy::{ConnectionStage, Context, DeviceTrust, Observed, Verdict};
use portcullis_sql::SearchPath;
use portcullis_store::{AuditEvent, ConnectionEvent, ConnectionPhase, DecisionEvent};
use portcullis_wire::{
    encode_auth_ok, encode_backend_key_data, encode_error, encode_negotiate_protocol_version,
    encode_parameter_status, encode_ready_for_query, CancelKey, ErrorInfo, TransactionStatus,
    PROTOCOL_3_0,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::catalog::CatalogSnapshot;
use crate::config::ClientTls;
use crate::error::GatewayError;
use crate::listener::Shared;
use crate::mfa::{Begin, Hold, HoldEnd};
use crate::policy;
use crate::stream::BoxStream;
use crate::upstream::{self, Upstream};
use admission::SessionWindow;
use client_side::{ClientEnd, ClientSide};
use flow::Flow;
use login::LoginFailure;
pub(crate) use statement::now_micros;

/// Who a session is, for audit events and name resolution.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Gateway-made session id.
    pub id: String,
    /// The gateway user.
    pub user: String,
    /// The resource (what the client called its database).
    pub resource: String,
    /// Client address and port.
    pub client_addr: String,
    /// The upstream session's current_user, as the server reported it at login (`$user` in
    /// search_path). Never shown to the client: it names the gateway's credential.
    pub upstream_user: String,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The client's application_name, if it sent one.
    pub application_name: Option<String>,
    /// What policy decisions are made in: identity, roles, address, location, device trust.
    pub ctx: Context,
    /// The reservation window the session was opened in, when its resource needs one.
    pub window: Option<SessionWindow>,
}

/// A connection refused before it became a session.
struct Refused {
    code: &'static str,
    message: String,
    /// What the audit log records.
    reason: String,
    /// Not refused yet: only MFA is missing (what the policy requires, as its reason says it), so the
    /// connection is held until the user verifies. The decision is recorded once the hold ends.
    needs_mfa: Option<String>,
}

impl Refused {
    fn new(code: &'static str, message: impl Into<String>, reason: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
            reason: reason.into(),
            needs_mfa: None,
        }
    }
}

/// Runs one client connection to its end. Never panics on client input; errors end this session only.
pub async fn run(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let _ = socket.set_nodelay(true);
    let mut info = SessionInfo {
        id: format!("{:016x}", rand::random::<u64>()),
        user: String::new(),
        resource: String::new(),
        client_addr: peer.to_string(),
        upstream_user: String::new(),
        tls: false,
        application_name: None,
        ctx: unauthenticated_context(&shared, peer, String::new()),
        window: None,
    };
    // An MFA hold moves the deadline: the user has the hold's timeout to verify, on top of the rest.
    let deadline = Mutex::new(tokio::time::Instant::now() + shared.config.startup_timeout);
    let opened = {
        let opening = open(&shared, socket, peer, &mut info, &deadline);
        tokio::pin!(opening);
        loop {
            let until = *lock_deadline(&deadline);
            tokio::select! {
                opened = &mut opening => break Ok(opened),
                () = tokio::time::sleep_until(until) => {
                    if *lock_deadline(&deadline) <= tokio::time::Instant::now() {
                        break Err(());
                    }
                }
            }
        }
    };
    let (client, upstream, (key, cancelled), catalog, login_path) = match opened {
        Err(()) => {
            record_connection(
                &shared,
                &info,
                ConnectionPhase::Rejected,
                "startup timed out",
                0,
                0,
            )
            .await;
            return;
        }
        Ok(Err(Some((mut stream, refused)))) => {
            let _ = stream
                .write_all(&fatal(refused.code, &refused.message))
                .await;
            let _ = stream.shutdown().await;
            record_connection(
                &shared,
                &info,
                ConnectionPhase::Rejected,
                &refused.reason,
                0,
                0,
            )
            .await;
            return;
        }
        Ok(Err(None)) => return,
        Ok(Ok(opened)) => opened,
    };
    let info = Arc::new(info);
    if !record_connection(&shared, &info, ConnectionPhase::Open, "ok", 0, 0).await {
        // Nothing unrecorded may happen: without an audit log there is no session.
        shared.cancels.remove(&key);
        let mut client = client;
        let _ = client
            .write_all(&fatal("58000", "the audit log is unavailable"))
            .await;
        return;
    }
    portcullis_metrics::gateway::session_opened();
    let bytes_in = AtomicU64::new(0);
    let bytes_out = AtomicU64::new(0);
    let (detail, application_name) = relay(
        &shared,
        &info,
        client,
        (upstream, login_path),
        catalog,
        cancelled,
        (&bytes_in, &bytes_out),
    )
    .await;
    portcullis_metrics::gateway::session_closed();
    shared.cancels.remove(&key);
    let mut info = Arc::unwrap_or_clone(info);
    if application_name.is_some() {
        info.application_name = application_name;
    }
    record_connection(
        &shared,
        &info,
        ConnectionPhase::Close,
        &detail,
        bytes_in.load(Ordering::Relaxed),
        bytes_out.load(Ordering::Relaxed),
    )
    .await;
}

type Opened = (
    BoxStream,
    Upstream,
    (CancelKey, watch::Receiver<u64>),
    Arc<CatalogSnapshot>,
    SearchPath,
);

/// What the upstream session is at login: its search_path (from the role's or database's default or a
/// startup option) and its current_user. Asked, not guessed: names resolve through exactly these.
/// Hex-encoded UTF-8, so the answer reads the same in whatever client_encoding the client chose.
const IDENTITY_QUERY: &str = "SELECT pg_catalog.encode(pg_catalog.convert_to(\
    pg_catalog.current_setting('search_path'), 'UTF8'), 'hex'), \
    pg_catalog.encode(pg_catalog.convert_to(CAST(CURRENT_USER AS text), 'UTF8'), 'hex')";

fn lock_deadline(
    deadline: &Mutex<tokio::time::Instant>,
) -> std::sync::MutexGuard<'_, tokio::time::Instant> {
    deadline.lock().unwrap_or_else(|p| p.into_inner())
}

/// Startup, login and upstream connection. `Err(Some(..))` is a refusal to report to the client;
/// `Err(None)` a connection that ends silently (cancel requests, clients that hung up).
async fn open(
    shared: &Shared,
    socket: TcpStream,
    peer: SocketAddr,
    info: &mut SessionInfo,
    deadline: &Mutex<tokio::time::Instant>,
) -> Result<Opened, Option<(BoxStream, Refused)>> {
    let started = match startup::negotiate(shared, socket).await {
        Ok(Some(started)) => started,
        Ok(None) => return Err(None),
        Err(e) => {
            tracing::debug!(error = %e, client = %info.client_addr, "startup failed");
            return Err(None);
        }
    };
    let startup::Started {
        mut stream,
        startup,
        tls,
    } = started;
    info.tls = tls;
    info.user = startup.user().unwrap_or_default().to_string();
    info.resource = startup
        .database()
        .filter(|d| !d.is_empty())
        .unwrap_or(&info.user)
        .to_string();
    info.application_name = startup.get("application_name").map(str::to_string);
    if shared.config.client_tls == ClientTls::Required && !tls {
        let refused = Refused::new(
            "28000",
            "this gateway accepts TLS connections only",
            "TLS required",
        );
        return Err(Some((stream, refused)));
    }
    if startup.protocol_version >> 16 != 3 {
        let refused = Refused::new(
            "0A000",
            "unsupported frontend protocol",
            "unsupported protocol",
        );
        return Err(Some((stream, refused)));
    }
    if info.user.is_empty() {
        return Err(Some((
            stream,
            Refused::new("28000", "no user name given", "no user"),
        )));
    }
    if startup
        .get("replication")
        .is_some_and(|v| v != "false" && v != "0" && v != "off")
    {
        let refused = Refused::new(
            "0A000",
            "replication connections are not supported through the gateway",
            "replication refused",
        );
        return Err(Some((stream, refused)));
    }
    // Newer minor protocol versions and protocol options are answered with what we speak: 3.0, none.
    let unknown_options: Vec<&str> = startup
        .params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    if startup.protocol_version != PROTOCOL_3_0 || !unknown_options.is_empty() {
        let mut out = BytesMut::new();
        encode_negotiate_protocol_version(0, &unknown_options, &mut out);
        if stream.write_all(&out).await.is_err() {
            return Err(None);
        }
    }

    info.ctx = unauthenticated_context(shared, peer, info.resource.clone());
    if let Err(refused) = decide_connection(shared, info, ConnectionStage::Pre, None).await {
        return Err(Some((stream, refused)));
    }

    let console = login::is_console(info.application_name.as_deref(), info.tls, peer.ip());
    let login = if console {
        login::authenticate_console(shared, &mut stream, &info.user).await
    } else {
        login::authenticate(shared, &mut stream, &info.user).await
    };
    let login = match login {
        Ok(login) => login,
        Err(LoginFailure::BadCredentials(reason)) => {
            let message = format!("password authentication failed for user \"{}\"", info.user);
            return Err(Some((stream, Refused::new("28P01", message, reason))));
        }
        Err(LoginFailure::Broken(e)) => {
            tracing::debug!(error = %e, client = %info.client_addr, "login failed");
            return Err(None);
        }
    };
    tracing::debug!(user = %login.name, roles = ?login.roles, "authenticated");
    let resource = match shared.store.resource(&info.resource) {
        Ok(Some(resource)) => resource,
        Ok(None) => {
            let message = format!("database \"{}\" does not exist", info.resource);
            return Err(Some((
                stream,
                Refused::new("3D000", message, "unknown resource"),
            )));
        }
        Err(e) => {
            tracing::error!(error = %e, "store failed while looking up a resource");
            return Err(Some((
                stream,
                Refused::new("58000", "the gateway's store is unavailable", "store error"),
            )));
        }
    };
    info.ctx.user = Some(login.name.clone());
    info.ctx.roles = login.roles.clone();
    info.ctx.attributes = login.attributes.clone();
    info.ctx.device_trust = device_trust(shared, &login.name, peer);
    info.ctx.justification = startup_params::justification(&startup.params);
    let mut auth_ok_sent = false;
    let mut mfa: Option<Result<(), String>> = None;
    loop {
        let refused =
            match decide_connection(shared, info, ConnectionStage::Post, mfa.as_ref()).await {
                Ok(window) => {
                    info.window = window;
                    break;
                }
                Err(refused) => refused,
            };
        let Some(required) = refused.needs_mfa.clone().filter(|_| mfa.is_none()) else {
            return Err(Some((stream, refused)));
        };
        let hold = Hold::new(shared, info, "connection", "post-connection", required);
        mfa = Some(match hold.begin().await {
            Begin::Verified => Ok(()),
            Begin::Refused(message) => Err(message),
            Begin::Wait => {
                portcullis_metrics::gateway::mfa_hold();
                // libpq reads notices only once authenticated (before that it expects an
                // authentication request), so AuthenticationOk goes first; ReadyForQuery waits.
                let mut out = BytesMut::new();
                encode_auth_ok(&mut out);
                out.extend_from_slice(&hold.notice());
                if stream.write_all(&out).await.is_err() {
                    return Err(None);
                }
                auth_ok_sent = true;
                let timeout = shared.mfa.config().hold_timeout;
                *lock_deadline(deadline) =
                    tokio::time::Instant::now() + timeout + shared.config.startup_timeout;
                let ended = hold.wait().await;
                *lock_deadline(deadline) =
                    tokio::time::Instant::now() + shared.config.startup_timeout;
                match ended {
                    HoldEnd::Verified => Ok(()),
                    HoldEnd::Refused(message) => Err(message),
                }
            }
        });
    }
    shared
        .mfa
        .note_action(&login.name, &info.resource, shared.mfa.now());
    // Decided once the user and their context are known, and before the upstream session applies them.
    if let Err(refused) = startup_params::decide(shared, info, &startup.params).await {
        return Err(Some((stream, refused)));
    }
    // The catalog is read on the gateway's own connection (or taken from the cache) while this
    // session's connection logs in.
    let catalogs = shared.catalogs.handle(&info.resource);
    let (upstream, catalog) = tokio::join!(
        upstream::connect(&resource, &startup.params),
        catalogs.snapshot(&resource, crate::catalog::Need::default())
    );
    let mut upstream = match upstream {
        Ok(upstream) => upstream,
        Err(e) => {
            portcullis_metrics::gateway::upstream_connect_error(&info.resource);
            tracing::warn!(error = %e, resource = %info.resource, "upstream connection failed");
            let message = format!(
                "the gateway could not connect to \"{}\": {e}",
                info.resource
            );
            return Err(Some((
                stream,
                Refused::new("08006", message, "upstream unavailable"),
            )));
        }
    };
    catalogs.watch(&resource);
    let catalog = match catalog.map_err(|e| (catalogs.latest(), e)) {
        Ok(catalog) => catalog,
        Err((Some(older), e)) => {
            // Statements go on with the older snapshot; a later one reads the catalog again.
            tracing::warn!(error = %e, resource = %info.resource, "catalog not read again");
            older
        }
        Err((None, e)) => {
            tracing::warn!(error = %e, resource = %info.resource, "catalog unreadable");
            let message = format!(
                "the gateway could not read the catalog of \"{}\": {e}",
                info.resource
            );
            return Err(Some((
                stream,
                Refused::new("08006", message, "catalog unavailable"),
            )));
        }
    };
    // Nothing is in a transaction before the first ReadyForQuery reaches the client, so this query
    // changes nothing the client will see.
    let identity = upstream::simple_query_rows(&mut upstream, IDENTITY_QUERY)
        .await
        .ok()
        .and_then(|rows| {
            let mut row = rows.into_iter().next()?.into_iter();
            let path = flow::from_hex_utf8(&row.next()??)?;
            let user = flow::from_hex_utf8(&row.next()??)?;
            Some((SearchPath::from_setting(&path), user))
        });
    let Some((login_path, upstream_user)) = identity else {
        return Err(Some((
            stream,
            Refused::new(
                "08006",
                "the gateway could not read the upstream session's search_path",
                "upstream session unreadable",
            ),
        )));
    };
    info.upstream_user = upstream_user;
    let Some(upstream_key) = upstream.cancel_key else {
        return Err(Some((
            stream,
            Refused::new(
                "08006",
                "the upstream sent no cancel key",
                "upstream protocol",
            ),
        )));
    };
    let (key, cancelled) = shared
        .cancels
        .register(upstream.target.clone(), upstream_key);

    let mut out = BytesMut::with_capacity(1024);
    if !auth_ok_sent {
        encode_auth_ok(&mut out);
    }
    for (name, value) in &upstream.parameters {
        let value = if name == "session_authorization" {
            info.user.as_str()
        } else {
            value.as_str()
        };
        encode_parameter_status(name, value, &mut out);
    }
    encode_backend_key_data(key, &mut out);
    encode_ready_for_query(TransactionStatus::Idle, &mut out);
    if stream.write_all(&out).await.is_err() {
        shared.cancels.remove(&key);
        return Err(None);
    }
    Ok((stream, upstream, (key, cancelled), catalog, login_path))
}

/// Runs both directions until either ends; returns what the audit log says about the end and the
/// application_name in force at the end.
async fn relay(
    shared: &Shared,
    info: &Arc<SessionInfo>,
    client: BoxStream,
    (upstream, login_path): (Upstream, SearchPath),
    catalog: Arc<CatalogSnapshot>,
    cancelled: watch::Receiver<u64>,
    (bytes_in, bytes_out): (&AtomicU64, &AtomicU64),
) -> (String, Option<String>) {
    let flow = Mutex::new(Flow::new(login_path, catalog, &upstream.parameters));
    let (mut client_rd, mut client_wr) = tokio::io::split(client);
    let (mut up_rd, mut up_wr) = tokio::io::split(upstream.stream);
    let (to_client, own_messages) = tokio::sync::mpsc::unbounded_channel();
    let window_notices = to_client.clone();
    let mut client_side = ClientSide::new(shared, info, &flow, to_client, cancelled);
    let window_closed = async {
        match info.window {
            Some(window) => admission::guard_window(shared, window, window_notices).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        e = window_closed => Err(e),
        r = client_side.run(&mut client_rd, &mut up_wr, bytes_in) => match r {
            Ok(ClientEnd::Terminated) => Ok("client terminated".to_string()),
            Ok(ClientEnd::Closed) => Ok("client closed the connection".to_string()),
            Err(e) => Err(e),
        },
        r = upstream_side::run(shared, info, &flow, &mut up_rd, &mut client_wr, upstream.buffered, upstream_side::ToClient { bytes_out, own: own_messages }) => match r {
            Ok(()) => Ok("upstream closed the connection".to_string()),
            Err(e) => Err(e),
        },
    };
    let mut events = Vec::new();
    let application_name = {
        let mut flow = flow.lock().unwrap_or_else(|p| p.into_inner());
        flow.drain_refusals(info, &mut events);
        flow.application_name.take()
    };
    for event in events {
        let _ = shared.audit.record(event).durable().await;
    }
    let _ = up_wr.shutdown().await;
    let detail = match ended {
        Ok(detail) => detail,
        Err(e) => {
            // Tell the client why, if it is still listening: protocol violations end the session.
            let (code, message) = match &e {
                GatewayError::Protocol(w) => ("08P01", format!("protocol violation: {w}")),
                GatewayError::Logout(reason) => {
                    ("42501", format!("portcullis ended the session: {reason}"))
                }
                GatewayError::Store(_) => (
                    "58000",
                    "the audit log is unavailable; the session is closed".to_string(),
                ),
                _ => ("08006", format!("session ended: {e}")),
            };
            let mut out = BytesMut::new();
            encode_error(
                &ErrorInfo {
                    severity: "FATAL",
                    code,
                    message: &message,
                    detail: None,
                    hint: None,
                    position: None,
                },
                &mut out,
            );
            let _ = client_wr.write_all(&out).await;
            let _ = client_wr.shutdown().await;
            tracing::info!(session = %info.id, error = %e, "session ended with an error");
            format!("error: {e}")
        }
    };
    (detail, application_name)
}

/// The context of a client that has not authenticated yet: its address, where that is, the target.
fn unauthenticated_context(shared: &Shared, peer: SocketAddr, resource: String) -> Context {
    let mut ctx = Context::new(String::new(), resource)
        .with_addr(peer.ip())
        .with_location(shared.locator.locate(Some(peer.ip())));
    ctx.user = None;
    ctx
}

/// The trust of `user`'s device at the client's address, as last reported (see `portcullis device`).
fn device_trust(shared: &Shared, user: &str, peer: SocketAddr) -> Observed<DeviceTrust> {
    match shared.store.device_report(user, &peer.ip().to_string()) {
        Ok(Some(report)) => DeviceTrust::from_tag(&report.trust)
            .map(Observed::Known)
            .unwrap_or(Observed::Unknown),
        Ok(None) => Observed::Unknown,
        Err(e) => {
            tracing::error!(error = %e, "cannot read device trust; treating it as unknown");
            Observed::Unknown
        }
    }
}

/// Runs a connection stage of the policy and records the decision; a refusal when it does not allow.
/// `mfa` is how a hold for MFA ended (`None`: no hold yet); when only MFA is missing and there was no
/// hold, the refusal says so in `needs_mfa` and nothing is recorded yet. After authentication a
/// connection held for approval is let in by a valid approval of the user's connections (or files the
/// request), and one to a reserved resource needs an approved reservation covering now, whose window
/// is returned.
async fn decide_connection(
    shared: &Shared,
    info: &SessionInfo,
    stage: ConnectionStage,
    mfa: Option<&Result<(), String>>,
) -> Result<Option<SessionWindow>, Refused> {
    let stage_name = match stage {
        ConnectionStage::Pre => "pre-connection",
        ConnectionStage::Post => "post-connection",
    };
    let active = shared.policy.current();
    let now = shared.mfa.now();
    let (mut verdict, mut trail, held) = match active.version {
        None => (
            Verdict::Deny,
            policy::no_policy_trail(stage_name, &info.ctx),
            None,
        ),
        Some(version) => {
            let mut ctx = info.ctx.clone();
            ctx.mfa_verified = match (stage, mfa) {
                (ConnectionStage::Pre, _) => false,
                (ConnectionStage::Post, Some(Ok(()))) => true,
                (ConnectionStage::Post, _) => shared.mfa.verified(&info.user, &info.resource, now),
            };
            let mut decision = active.compiled.evaluate_connection(stage, &ctx, now);
            if stage == ConnectionStage::Post && decision.verdict == Verdict::RequireApproval {
                if let Some((approved, used)) =
                    admission::approvals(shared, info, &decision, &ctx, now).await
                {
                    ctx = approved;
                    decision = active.compiled.evaluate_connection(stage, &ctx, now);
                    if decision.verdict == Verdict::Allow {
                        admission::record_used(shared, info, &used, now);
                    }
                }
            }
            let missing_mfa = match stage {
                ConnectionStage::Post => {
                    crate::mfa::only_mfa_missing(&decision.requirements, decision.verdict, || {
                        let verified = ctx.clone().with_mfa_verified(true);
                        active
                            .compiled
                            .evaluate_connection(stage, &verified, now)
                            .verdict
                    })
                }
                ConnectionStage::Pre => None,
            };
            let mut trail = policy::connection_trail(stage_name, Some(version), &ctx, &decision);
            match (missing_mfa, mfa) {
                (Some(required), None) => {
                    let mut held = Refused::new("28000", String::new(), String::new());
                    held.needs_mfa = Some(required);
                    return Err(held);
                }
                (Some(_), Some(Err(why))) => trail.reason.clone_from(why),
                _ => {}
            }
            shared
                .alerts
                .fired(info, decision.fired.as_slice(), &[], None);
            let held = match (stage, decision.verdict) {
                (ConnectionStage::Post, Verdict::RequireApproval) => {
                    Some(admission::hold(shared, info, &active, &decision, now).await)
                }
                _ => None,
            };
            (decision.verdict, trail, held)
        }
    };
    let mut window = None;
    if verdict == Verdict::Allow && stage == ConnectionStage::Post {
        match admission::reserved_window(shared, info, &active, now).await {
            Ok(found) => window = found,
            Err(why) => {
                verdict = Verdict::Deny;
                trail.result = policy::verdict_name(verdict).into();
                trail.reason = why;
            }
        }
    }
    let reason = &trail.reason;
    let refused = match verdict {
        Verdict::Allow => None,
        Verdict::RequireApproval => Some(Refused::new(
            "28000",
            held.unwrap_or_else(|| format!("portcullis holds the connection: {reason}")),
            format!("{stage_name} approval required: {reason}"),
        )),
        Verdict::Deny => Some(Refused::new(
            "28000",
            format!("portcullis denied the connection: {reason}"),
            format!("{stage_name} denied: {reason}"),
        )),
    };
    crate::metrics::connection_decision(stage, verdict);
    let event = AuditEvent::Decision(DecisionEvent {
        session_id: info.id.clone(),
        at: now_micros(),
        user: info.user.clone(),
        resource: info.resource.clone(),
        client_addr: info.client_addr.clone(),
        policy: trail,
    });
    if let Err(e) = shared.audit.record(event).durable().await {
        tracing::error!(error = %e, "could not record a connection decision");
        return Err(Refused::new(
            "58000",
            "the audit log is unavailable",
            "audit unavailable",
        ));
    }
    refused.map_or(Ok(window), Err)
}

/// A FATAL ErrorResponse, the last thing a client hears before the gateway closes its connection.
fn fatal(code: &str, message: &str) -> BytesMut {
    let mut out = BytesMut::new();
    encode_error(
        &ErrorInfo {
            severity: "FATAL",
            code,
            message,
            detail: None,
            hint: None,
            position: None,
        },
        &mut out,
    );
    out
}

/// Records a connection event durably; false when the audit log could not take it.
async fn record_connection(
    shared: &Shared,
    info: &SessionInfo,
    phase: ConnectionPhase,
    result: &str,
    bytes_in: u64,
    bytes_out: u64,
) -> bool {
    let event = AuditEvent::Connection(ConnectionEvent {
        session_id: info.id.clone(),
        phase,
        at: now_micros(),
        user: info.user.clone(),
        client_addr: info.client_addr.clone(),
        resource: info.resource.clone(),
        auth_result: result.to_string(),
        tls: info.tls,
        application_name: info.application_name.clone(),
        bytes_in,
        bytes_out,
        detail: None,
    });
    match shared.audit.record(event).durable().await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "could not record a connection event");
            false
        }
    }
}
