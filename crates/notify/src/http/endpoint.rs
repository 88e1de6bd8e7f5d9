//! Where a POST goes: a checked `http://` or `https://` URL, extra headers and a timeout.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

/// The default bound on one exchange.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers the client sets itself.
const RESERVED: [&str; 5] = [
    "host",
    "content-type",
    "content-length",
    "connection",
    "transfer-encoding",
];

/// A URL to POST to, checked once at start-up, with its headers and timeout.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
}

impl Endpoint {
    /// Parses `url`. Refuses other schemes, credentials in the URL (they would end up in logs; put
    /// a token in a header or the path), and paths with characters that must be percent-encoded
    /// (written as-is they are almost always a mistake in the setting).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let text = url.trim();
        let rest = strip_prefix_ignore_case(text, "https://")
            .or_else(|| strip_prefix_ignore_case(text, "http://"))
            .ok_or_else(|| format!("`{text}` must start with http:// or https://"))?;
        // The fragment is never sent.
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, target) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(
                "user names and passwords in the URL are not supported; put the token in the path or query"
                    .into(),
            );
        }
        let (host, port) = match authority.rfind(':') {
            // A colon inside IPv6 brackets is not a port separator.
            Some(at) if !authority[at..].contains(']') => {
                (&authority[..at], Some(&authority[at + 1..]))
            }
            _ => (authority, None),
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{text}` has no valid host"));
        }
        if let Some(port) = port {
            if !port.parse::<u16>().is_ok_and(|p| p != 0) {
                return Err(format!("`{port}` is not a port number"));
            }
        }
        if !target
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>')
        {
            return Err(format!(
                "the path of `{text}` has spaces or characters that must be percent-encoded"
            ));
        }
        let mut url = Url::parse(text).map_err(|e| format!("`{text}`: {e}"))?;
        url.set_fragment(None);
        Ok(Endpoint {
            url,
            headers: HeaderMap::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Adds `headers` to every request; refuses invalid names and values, and the headers the client
    /// sets itself.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Endpoint, String> {
        for (name, value) in headers {
            if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                return Err(format!("header `{name}` is set by Portcullis"));
            }
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("the value of header `{name}` has control characters"))?;
            // Kept out of debug output and logs.
            value.set_sensitive(true);
            self.headers.append(header, value);
        }
        Ok(self)
    }

    /// Bounds each exchange, connecting included, by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Endpoint {
        self.timeout = timeout;
        self
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The extra headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The bound on one exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Scheme, host and port, for logs: webhook tokens often live in the path (Slack's do).
    pub fn origin(&self) -> String {
        format!(
            "{}://{}:{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or_default()
        )
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn urls_are_checked_and_keep_path_and_query() {
        let e = Endpoint::parse("HTTPS://Hooks.Example.com/services/T0/B1/xyz#frag").unwrap();
        assert_eq!(
            e.url().as_str(),
            "https://hooks.example.com/services/T0/B1/xyz"
        );
        assert_eq!(
            e.origin(),
            "https://hooks.example.com:443",
            "no token in logs"
        );

        let e = Endpoint::parse("http://[::1]:8080?token=a").unwrap();
        assert_eq!(e.url().as_str(), "http://[::1]:8080/?token=a");
        assert_eq!(e.origin(), "http://[::1]:8080");

        let e = Endpoint::parse("http://example.com").unwrap();
        assert_eq!(e.origin(), "http://example.com:80");

        let err = |url: &str| Endpoint::parse(url).unwrap_err();
        assert!(err("ftp://example.com/").contains("must start with http://"));
        assert!(err("https://user:pw@example.com/").contains("passwords in the URL"));
        assert!(err("http://example.com:99999/").contains("`99999` is not a port number"));
        assert!(err("http://example.com:0/").contains("`0` is not a port number"));
        assert!(err("http:///path").contains("no valid host"));
        assert!(err("http://example.com/a path").contains("percent-encoded"));
        assert!(Endpoint::parse("http://[::1/").is_err());
        assert!(Endpoint::parse("http://[nothost]:80/").is_err());
    }

    #[test]
    fn extra_headers_are_checked() {
        let endpoint = || Endpoint::parse("http://127.0.0.1:9/hook").unwrap();
        let e = endpoint()
            .with_headers([("Authorization", "Bearer t0ken "), ("X-Team", "db")])
            .unwrap();
        assert_eq!(e.headers()["authorization"], "Bearer t0ken");
        assert_eq!(e.headers()["x-team"], "db");
        assert!(!format!("{e:?}").contains("t0ken"), "{e:?}");
        assert!(endpoint()
            .with_headers([("X-A", "a\r\nHost: evil")])
            .is_err());
        assert!(endpoint().with_headers([("Bad Name", "v")]).is_err());
        assert!(endpoint().with_headers([("Content-Length", "1")]).is_err());
    }
}
