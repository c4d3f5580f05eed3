//! The authorization server's metadata (RFC 8414) and the authorize URL the user opens.

use anyhow::{anyhow, bail, Result};
use reqwest::Url;
use serde_json::Value;

pub struct Metadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
}

impl Metadata {
    pub fn from_json(v: &Value) -> Result<Self> {
        let endpoint = |name: &str| -> Option<String> {
            v[name]
                .as_str()
                .filter(|s| Url::parse(s).is_ok())
                .map(str::to_owned)
        };
        let required = |name: &str| {
            endpoint(name).ok_or_else(|| anyhow!("the metadata has no usable `{name}`"))
        };
        // Only S256 is sent. A server that lists methods without it would refuse the request;
        // a missing list is taken as "unstated", not as "no PKCE".
        if let Some(methods) = v["code_challenge_methods_supported"].as_array() {
            if !methods.iter().any(|m| m == "S256") {
                bail!("the server does not list S256 in code_challenge_methods_supported");
            }
        }
        Ok(Self {
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            revocation_endpoint: endpoint("revocation_endpoint"),
        })
    }
}

pub struct Request<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub code_challenge: &'a str,
}

/// The endpoint with the authorization request appended, every value form-encoded.
pub fn url(endpoint: &str, req: &Request<'_>) -> Result<String> {
    let mut url = Url::parse(endpoint)
        .map_err(|e| anyhow!("the authorization endpoint `{endpoint}` is not a URL: {e}"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", req.client_id)
        .append_pair("redirect_uri", req.redirect_uri)
        .append_pair("state", req.state)
        .append_pair("code_challenge", req.code_challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_url_carries_every_parameter_encoded() {
        let req = Request {
            client_id: "dex-a1b2c3d4",
            redirect_uri: "http://127.0.0.1:49152/callback",
            state: "s t&a=te",
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        };
        let s = url("http://127.0.0.1:3000/oauth/authorize", &req).unwrap();
        assert!(s.starts_with("http://127.0.0.1:3000/oauth/authorize?response_type=code&"));
        assert!(
            s.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcallback"),
            "{s}"
        );
        assert!(s.contains("state=s+t%26a%3Dte"), "{s}");
        let parsed = Url::parse(&s).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let expected = [
            ("response_type", "code"),
            ("client_id", "dex-a1b2c3d4"),
            ("redirect_uri", "http://127.0.0.1:49152/callback"),
            ("state", "s t&a=te"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expected);
        // An endpoint that already has a query keeps it.
        let s = url("https://a.example/authorize?tenant=x", &req).unwrap();
        assert!(s.starts_with("https://a.example/authorize?tenant=x&response_type=code&"));
    }

    #[test]
    fn metadata_needs_the_endpoints_and_s256() {
        let good = json!({
            "issuer": "http://127.0.0.1:3000",
            "authorization_endpoint": "http://127.0.0.1:3000/oauth/authorize",
            "token_endpoint": "http://127.0.0.1:3000/oauth/token",
            "revocation_endpoint": "http://127.0.0.1:3000/oauth/revoke",
            "code_challenge_methods_supported": ["S256"],
        });
        let m = Metadata::from_json(&good).unwrap();
        assert_eq!(m.token_endpoint, "http://127.0.0.1:3000/oauth/token");
        assert_eq!(
            m.revocation_endpoint.as_deref(),
            Some("http://127.0.0.1:3000/oauth/revoke")
        );

        let mut plain_only = good.clone();
        plain_only["code_challenge_methods_supported"] = json!(["plain"]);
        let e = Metadata::from_json(&plain_only).err().unwrap();
        assert!(e.to_string().contains("S256"));

        let mut unstated = good.clone();
        unstated
            .as_object_mut()
            .unwrap()
            .remove("code_challenge_methods_supported");
        assert!(Metadata::from_json(&unstated).is_ok());

        let mut no_token = good;
        no_token["token_endpoint"] = json!("not a url");
        let e = Metadata::from_json(&no_token).err().unwrap();
        assert_eq!(e.to_string(), "the metadata has no usable `token_endpoint`");
    }
}
