//! A webhook URL, taken apart once at start-up into what an HTTP/1.1 request needs.

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `https`.
    pub tls: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port, the scheme's default when not written.
    pub port: u16,
    /// Path and query, starting with `/`: the request target.
    pub target: String,
}

impl WebhookUrl {
    /// Parses `url`, refusing what this small client cannot send safely.
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` must start with http:// or https://"));
        };
        // The fragment is never sent to the server.
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(
                "user names and passwords in the URL are not supported; put the token in the path or query"
                    .into(),
            );
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{url}` has no valid host"));
        }
        if !target
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>')
        {
            return Err(format!(
                "the path of `{url}` has spaces or characters that must be percent-encoded"
            ));
        }
        let target = match target.as_bytes().first() {
            None => "/".to_string(),
            Some(b'?') => format!("/{target}"),
            Some(_) => target.to_string(),
        };
        Ok(WebhookUrl {
            tls,
            host,
            port,
            target,
        })
    }

    /// The `Host` header: the port only when it is not the scheme's default, IPv6 in brackets.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }

    /// The URL without its path, for logs: webhook tokens often live in the path (Slack's do).
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`[{bracketed}` lacks the closing `]`"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{after}` after `[{host}]`")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{p}` is not a port number"))?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::WebhookUrl;

    #[test]
    fn webhook_urls_become_request_targets_and_host_headers() {
        let u = WebhookUrl::parse("HTTPS://Hooks.Example.com/services/T0/B1/xyz").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port), ("hooks.example.com", 443));
        assert_eq!(u.target, "/services/T0/B1/xyz");
        assert_eq!(u.host_header(), "hooks.example.com");
        assert_eq!(
            u.origin(),
            "https://hooks.example.com:443",
            "no token in logs"
        );

        let u = WebhookUrl::parse("http://[::1]:8080?token=a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.target, "/?token=a");
        assert_eq!(u.host_header(), "[::1]:8080");

        let u = WebhookUrl::parse("http://example.com").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
        assert_eq!(u.host_header(), "example.com");
        assert!(WebhookUrl::parse("http://[::1/").is_err());
        assert!(WebhookUrl::parse("http://[nothost]:80/").is_err());
    }
}
