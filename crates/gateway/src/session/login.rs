//! Authenticating a client as a gateway user with SCRAM-SHA-256.

use bytes::BytesMut;
use portcullis_store::UserLogin;
use portcullis_wire::{
    decode_sasl_initial_response, encode_auth_cleartext, encode_auth_sasl,
    encode_auth_sasl_continue, encode_auth_sasl_final, tag, ScramSecret, ScramServer, WireError,
};
use tokio::io::AsyncWriteExt;

use crate::error::GatewayError;
use crate::frames::read_frame;
use crate::listener::Shared;
use crate::stream::BoxStream;

const SCRAM: &str = "SCRAM-SHA-256";
/// SASL messages are small; anything bigger is an attack or a bug.
const MAX_AUTH_MESSAGE: usize = 16 * 1024;

/// Why a login did not succeed; the client only ever hears "password authentication failed".
#[derive(Debug)]
pub enum LoginFailure {
    /// No such user, or a wrong password: indistinguishable to the client on purpose.
    BadCredentials(&'static str),
    /// The connection broke or spoke nonsense.
    Broken(GatewayError),
}

/// Runs the SCRAM exchange. Unknown users go through a mock exchange that fails at the end, so a client
/// cannot tell which user names exist.
pub async fn authenticate(
    shared: &Shared,
    stream: &mut BoxStream,
    user: &str,
) -> Result<UserLogin, LoginFailure> {
    let login = shared
        .store
        .user_login(user)
        .map_err(|e| LoginFailure::Broken(e.into()))?;
    let secret = login
        .as_ref()
        .and_then(|l| ScramSecret::parse(&l.scram_secret).ok());
    let mut server = match secret {
        Some(secret) => ScramServer::new(secret),
        None => ScramServer::mock(user),
    };
    let mut out = BytesMut::new();
    let mut buf = BytesMut::new();
    encode_auth_sasl(&[SCRAM], &mut out);
    send(stream, &out).await?;

    let body = read_password_message(stream, &mut buf).await?;
    let (mechanism, data) = decode_sasl_initial_response(&body).map_err(broken)?;
    if mechanism != SCRAM {
        return Err(LoginFailure::Broken(
            WireError::Malformed("unsupported SASL mechanism").into(),
        ));
    }
    let server_first = server.client_first(data).map_err(broken)?;
    out.clear();
    encode_auth_sasl_continue(&server_first, &mut out);
    send(stream, &out).await?;

    let body = read_password_message(stream, &mut buf).await?;
    let server_final = match server.client_final(&body) {
        Ok(v) => v,
        Err(WireError::AuthFailed) => {
            return Err(LoginFailure::BadCredentials(if login.is_some() {
                "bad password"
            } else {
                "unknown user"
            }))
        }
        Err(e) => return Err(broken(e)),
    };
    let Some(login) = login else {
        return Err(LoginFailure::BadCredentials("unknown user"));
    };
    out.clear();
    encode_auth_sasl_final(&server_final, &mut out);
    send(stream, &out).await?;
    Ok(login)
}

/// The application_name of the web portal's SQL console (crates/api/src/web/console.rs).
pub const CONSOLE_APPLICATION: &str = "portcullis-console";

/// Whether a connection logs in as the web portal's SQL console. Its password is a login token in clear
/// text, so it is taken only where it cannot have crossed a network unencrypted: over TLS or from
/// loopback. Elsewhere the name is an ordinary application name and SCRAM applies.
pub fn is_console(application_name: Option<&str>, tls: bool, peer: std::net::IpAddr) -> bool {
    application_name == Some(CONSOLE_APPLICATION) && (tls || peer.is_loopback())
}

/// Logs in the web portal's SQL console: its password is a live API login token of this very user,
/// which the portal minted after the user's password and TOTP login and never shows the browser. The
/// token travels in clear text, so the portal connects over loopback (or TLS). Everything after login
/// is the ordinary session pipeline.
pub async fn authenticate_console(
    shared: &Shared,
    stream: &mut BoxStream,
    user: &str,
) -> Result<UserLogin, LoginFailure> {
    let mut out = BytesMut::new();
    let mut buf = BytesMut::new();
    encode_auth_cleartext(&mut out);
    send(stream, &out).await?;
    let body = read_password_message(stream, &mut buf).await?;
    let secret = body.strip_suffix(&[0]).unwrap_or(&body);
    let secret = std::str::from_utf8(secret)
        .map_err(|_| LoginFailure::BadCredentials("bad console ticket"))?;
    let now = shared.config.clock.now().unix_timestamp_nanos() / 1_000_000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let token = shared
        .store
        .api_token(secret)
        .map_err(|e| LoginFailure::Broken(e.into()))?;
    let valid = token.is_some_and(|t| t.is_live(now) && t.user.as_deref() == Some(user));
    if !valid {
        return Err(LoginFailure::BadCredentials("bad console ticket"));
    }
    let login = shared
        .store
        .user_login(user)
        .map_err(|e| LoginFailure::Broken(e.into()))?;
    let login = login.ok_or(LoginFailure::BadCredentials("unknown user"))?;
    // The SCRAM path sends AuthenticationOk after the exchange; the caller does for the rest.
    Ok(login)
}

fn broken(e: WireError) -> LoginFailure {
    LoginFailure::Broken(e.into())
}

async fn read_password_message(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
) -> Result<BytesMut, LoginFailure> {
    match read_frame(stream, buf, MAX_AUTH_MESSAGE).await {
        Ok(Some((tag::frontend::PASSWORD, body))) => Ok(body),
        Ok(Some((_, _))) => Err(broken(WireError::Malformed(
            "expected a SASL response during authentication",
        ))),
        Ok(None) => Err(broken(WireError::Malformed(
            "connection closed during authentication",
        ))),
        Err(e) => Err(LoginFailure::Broken(e)),
    }
}

async fn send(stream: &mut BoxStream, bytes: &[u8]) -> Result<(), LoginFailure> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| LoginFailure::Broken(GatewayError::io("write to client", e)))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn a_console_token_is_taken_only_over_tls_or_loopback() {
        let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let console = Some(CONSOLE_APPLICATION);
        assert!(is_console(console, false, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_console(console, false, IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(is_console(console, true, remote));
        assert!(
            !is_console(console, false, remote),
            "clear text over a network"
        );
        assert!(!is_console(
            Some("psql"),
            true,
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        ));
        assert!(!is_console(None, true, IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
