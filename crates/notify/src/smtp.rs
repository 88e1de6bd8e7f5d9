//! E-mail over SMTP with `lettre`: one connection per message, so there is no pool to go stale.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::attempt::AttemptError;
use crate::{NotifyError, SmtpConfig, SmtpTls};

/// Sends e-mail through the configured server.
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

fn setting(setting: &str, reason: impl ToString) -> NotifyError {
    NotifyError::Setting {
        setting: format!("smtp.{setting}"),
        reason: reason.to_string(),
    }
}

impl Mailer {
    /// Checks `config` and prepares the transport (nothing is connected yet).
    pub fn new(config: &SmtpConfig) -> Result<Mailer, NotifyError> {
        let from: Mailbox = config.from.parse().map_err(|e| {
            setting(
                "from",
                format!("`{}` is not an e-mail address: {e}", config.from),
            )
        })?;
        if config.timeout_secs == 0 {
            return Err(setting("timeout_secs", "must be at least 1"));
        }
        // lettre checks the certificate against the system's CAs (rustls-native-certs).
        let tls = |host: &str| {
            TlsParameters::builder(host.to_owned())
                .build_rustls()
                .map_err(|e| setting("tls", e))
        };
        let (tls, default_port) = match config.tls {
            SmtpTls::Starttls => (Tls::Required(tls(&config.host)?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls(&config.host)?), 465),
            SmtpTls::None => (Tls::None, 25),
        };
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(timeout));
        match (&config.username, &config.password_env) {
            (Some(user), Some(var)) => {
                let password = std::env::var(var).map_err(|_| {
                    setting(
                        "password_env",
                        format!("the environment variable {var} is not set"),
                    )
                })?;
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => {
                return Err(setting(
                    "username",
                    "set both username and password_env, or neither",
                ))
            }
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            timeout,
        })
    }

    /// Sends one plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), AttemptError> {
        let to: Mailbox = to.parse().map_err(|e| {
            AttemptError::Permanent(format!("`{to}` is not an e-mail address: {e}"))
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| AttemptError::Permanent(format!("cannot build the message: {e}")))?;
        // lettre's timeout bounds each read and write; this bounds the whole exchange.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(AttemptError::Transient(format!(
                "no answer within {:?}",
                self.timeout
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(AttemptError::Permanent(format!("SMTP: {e}"))),
            Ok(Err(e)) => Err(AttemptError::Transient(format!("SMTP: {e}"))),
        }
    }
}
