//! Just enough HTTP/1.1 to POST a JSON body and read the status code: one request per connection
//! (`Connection: close`), so there is no pooling, chunking or keep-alive to get wrong.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::WebhookUrl;

/// The longest response head read while looking for the status line.
const MAX_HEAD: usize = 16 * 1024;

/// How to reach the webhook: its URL and, for `https`, the TLS client.
#[derive(Clone)]
pub struct Endpoint {
    /// Where to POST.
    pub url: WebhookUrl,
    /// For `https`: the TLS client and the name the certificate must carry.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Extra request headers (an `Authorization` token, say), checked by [`Endpoint::with_headers`].
    headers: String,
}

impl Endpoint {
    /// Prepares the endpoint; `client` is used only for `https` URLs.
    pub fn new(
        url: WebhookUrl,
        client: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, String>,
    ) -> Result<Endpoint, String> {
        let tls = if url.tls {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| format!("`{}` is not a valid TLS server name", url.host))?;
            Some((TlsConnector::from(client()?), name))
        } else {
            None
        };
        Ok(Endpoint {
            url,
            tls,
            headers: String::new(),
        })
    }

    /// Adds `headers` to every request; refuses names and values that would break the request head.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Endpoint, String> {
        for (name, value) in headers {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(format!("`{name}` is not a valid header name"));
            }
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(format!(
                    "the value of header `{name}` has control characters"
                ));
            }
            let reserved = [
                "host",
                "content-type",
                "content-length",
                "connection",
                "transfer-encoding",
            ];
            if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                return Err(format!("header `{name}` is set by Portcullis"));
            }
            self.headers
                .push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        Ok(self)
    }

    /// Sends `body` and returns the response's status code.
    pub async fn post(&self, body: &[u8]) -> Result<u16, String> {
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The request goes out in two writes; do not let Nagle hold the second one back.
        let _ = tcp.set_nodelay(true);
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portcullis/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
            self.url.target,
            self.url.host_header(),
            env!("CARGO_PKG_VERSION"),
            body.len(),
            self.headers
        );
        match &self.tls {
            None => exchange(tcp, head.as_bytes(), body).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(stream, head.as_bytes(), body).await
            }
        }
    }
}

async fn exchange<S>(mut stream: S, head: &[u8], body: &[u8]) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(head).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(status) = final_status(&buf)? {
            return Ok(status);
        }
        if buf.len() > MAX_HEAD {
            return Err("the response head is too long".into());
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "the server closed the connection without answering".into()
            } else {
                "the server closed the connection mid-response".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status of the final response in `buf`, skipping interim `1xx` responses; `None` until enough has
/// arrived.
fn final_status(mut buf: &[u8]) -> Result<Option<u16>, String> {
    loop {
        let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let status = parse_status_line(&buf[..line_end])?;
        if !(100..200).contains(&status) {
            return Ok(Some(status));
        }
        // An interim response ends with an empty line; the real one follows it.
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        buf = &buf[head_end + 4..];
    }
}

fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split(' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            truncate(&text, 80)
        ));
    }
    code.parse::<u16>()
        .map_err(|_| format!("bad status line: {:?}", truncate(&text, 80)))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::{final_status, Endpoint, WebhookUrl};

    #[test]
    fn extra_headers_are_checked_and_go_into_the_request_head() {
        let endpoint = || {
            let url = WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap();
            Endpoint::new(url, || Err("no TLS".into())).unwrap()
        };
        let e = endpoint()
            .with_headers([("Authorization", "Bearer t0ken "), ("X-Team", "db")])
            .unwrap();
        assert_eq!(e.headers, "Authorization: Bearer t0ken\r\nX-Team: db\r\n");
        assert!(endpoint()
            .with_headers([("X-A", "a\r\nHost: evil")])
            .is_err());
        assert!(endpoint().with_headers([("Bad Name", "v")]).is_err());
        assert!(endpoint().with_headers([("Content-Length", "1")]).is_err());
    }

    #[test]
    fn the_final_status_skips_interim_responses() {
        assert_eq!(final_status(b"HTTP/1.1 20"), Ok(None));
        assert_eq!(final_status(b"HTTP/1.1 204 No Content\r\n"), Ok(Some(204)));
        assert_eq!(final_status(b"HTTP/1.0 500 Oops\r\n\r\n"), Ok(Some(500)));
        assert_eq!(final_status(b"HTTP/1.1 100 Continue\r\n"), Ok(None));
        assert_eq!(
            final_status(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"),
            Ok(Some(201))
        );
        assert!(final_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(final_status(b"HTTP/1.1 2x0 Hm\r\n").is_err());
    }
}
