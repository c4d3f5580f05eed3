//! Redirect URIs a Dex instance may use: loopback `http` on any port (RFC 8252 §7.3; the
//! `localhost` name too, since real clients send it) or `https` (Dex on a Tailscale name or
//! its own domain). Once a client is recorded, later URIs must equal its recorded one,
//! except for the port of a loopback URI.

use url::{Host, Url};

/// The URI as the client sent it (compared byte for byte at the token endpoint) and parsed.
#[derive(Debug, Clone)]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

impl RedirectUri {
    /// Why a URI is refused is said to the person in the browser, never to the URI itself.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let url = Url::parse(input).map_err(|_| "redirect_uri is not an absolute URL")?;
        if url.fragment().is_some() {
            return Err("redirect_uri must not contain a fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("redirect_uri must not contain credentials");
        }
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self::new(input, url)),
            "http" if is_loopback(&url) => Ok(Self::new(input, url)),
            "http" => Err("an http redirect_uri must be a loopback address (127.0.0.1, [::1] or localhost); use https otherwise"),
            _ => Err("redirect_uri must use https, or http on a loopback address"),
        }
    }

    fn new(raw: &str, url: Url) -> Self {
        Self {
            raw: raw.to_owned(),
            url,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Dex on this very machine: the only place a sign-up may send a code without consent,
    /// since a link could name any https site as the place to come back to.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether this URI may be used by a client whose recorded URI is `recorded`.
    pub fn matches(&self, recorded: &str) -> bool {
        let Ok(recorded) = Url::parse(recorded) else {
            return false;
        };
        if self.url == recorded {
            return true;
        }
        if !(is_loopback(&self.url) && is_loopback(&recorded)) || self.url.scheme() != "http" {
            return false;
        }
        let (mut a, mut b) = (self.url.clone(), recorded);
        // Infallible for http URLs with a host.
        let _ = a.set_port(None);
        let _ = b.set_port(None);
        a == b
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::RedirectUri;

    #[test]
    fn loopback_and_https_are_accepted() {
        for ok in [
            "http://127.0.0.1:5173/callback",
            "http://[::1]:8080/cb",
            "http://localhost:49152/callback",
            "https://dex.tailnet-1234.ts.net/oauth/callback",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://dex.example.com/callback",
            "http://192.168.1.10:8080/cb",
            "ftp://127.0.0.1/cb",
            "com.example.app:/cb",
            "/relative",
            "https://dex.example.com/cb#frag",
            "https://user:pw@dex.example.com/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_loopback_port_may_differ() {
        let recorded = "http://127.0.0.1:5000/callback";
        let m = |u: &str| RedirectUri::parse(u).unwrap().matches(recorded);
        assert!(m("http://127.0.0.1:5000/callback"));
        assert!(m("http://127.0.0.1:61234/callback"));
        assert!(!m("http://127.0.0.1:61234/other"));
        assert!(!m("http://localhost:5000/callback"));
        assert!(!m("http://127.0.0.1:5000/callback?x=1"));
        let https = RedirectUri::parse("https://dex.example.com:8443/cb").unwrap();
        assert!(!https.matches("https://dex.example.com/cb"));
        assert!(https.matches("https://dex.example.com:8443/cb"));
    }
}
