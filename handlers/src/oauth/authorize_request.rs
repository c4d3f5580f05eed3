//! An authorization request (`GET /oauth/authorize` query, or the consent form's hidden
//! fields), checked in RFC 6749 §4.1.2.1's order: a bad client or redirect URI is shown to
//! the person and never redirected to; every other error goes back to the client.

use super::client_id::ClientId;
use super::pkce;
use super::redirect::RedirectUri;
use std::collections::HashMap;

/// The raw parameters, as sent.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub state: Option<String>,
    pub code_challenge: String,
}

pub enum Refusal {
    /// Shown on an error page: the redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the client's (valid) redirect URI.
    Redirect(String),
}

impl AuthorizeParams {
    /// Checks the client and redirect URI against what is recorded for the client
    /// (`recorded`), then the rest.
    pub fn check(&self, recorded: Option<&str>) -> Result<Authorize, Refusal> {
        let client_id = self
            .client_id
            .as_deref()
            .and_then(ClientId::parse)
            .ok_or_else(|| Refusal::Page("The request does not name a valid client_id (the Dex instance's id, such as dex-a1b2c3d4).".into()))?;
        let raw_uri = self
            .redirect_uri
            .as_deref()
            .ok_or_else(|| Refusal::Page("The request has no redirect_uri.".into()))?;
        let redirect_uri = RedirectUri::parse(raw_uri)
            .map_err(|e| Refusal::Page(format!("{}.", capitalise(e))))?;
        if let Some(recorded) = recorded {
            if !redirect_uri.matches(recorded) {
                return Err(Refusal::Page(format!(
                    "This redirect_uri is not the one {} connected with before. If you did not start this, close this page.",
                    client_id.as_str()
                )));
            }
        }
        let back = |error: &str, description: &str| {
            Refusal::Redirect(error_redirect(
                &redirect_uri,
                error,
                description,
                self.state.as_deref(),
            ))
        };
        if self.response_type.as_deref() != Some("code") {
            return Err(back(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let Some(challenge) = self.code_challenge.as_deref() else {
            return Err(back(
                "invalid_request",
                "code_challenge is required (PKCE, S256)",
            ));
        };
        if self.code_challenge_method.as_deref() != Some("S256") {
            return Err(back(
                "invalid_request",
                "code_challenge_method must be S256; plain is not supported",
            ));
        }
        if !pkce::valid_challenge(challenge) {
            return Err(back(
                "invalid_request",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier",
            ));
        }
        if self.state.as_deref().is_some_and(|s| s.len() > 1024) {
            return Err(back("invalid_request", "state is too long"));
        }
        Ok(Authorize {
            client_id,
            redirect_uri,
            state: self.state.clone(),
            code_challenge: challenge.to_owned(),
        })
    }

    /// The request as a path and query on this server (to come back to after sign-up,
    /// checkout, or provisioning).
    pub fn to_path(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            out.append_pair(&k, &v);
        }
        format!("/oauth/authorize?{}", out.finish())
    }

    /// The parameters that are present, as name and value (hidden form fields).
    pub fn pairs(&self) -> Vec<(String, String)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("scope", &self.scope),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .collect()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn with_query(uri: &RedirectUri, pairs: &[(&str, &str)]) -> String {
    let mut url = uri.url().clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

pub fn error_redirect(
    uri: &RedirectUri,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    with_query(uri, &pairs)
}

pub fn code_redirect(uri: &RedirectUri, code: &str, state: Option<&str>) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    with_query(uri, &pairs)
}

/// Parses a local path produced by `to_path` back into parameters (the `next` of a form).
pub fn from_path(path: &str) -> Option<AuthorizeParams> {
    path.strip_prefix("/oauth/authorize?").map(from_query)
}

/// Parses a query string; a repeated parameter keeps its first value.
pub fn from_query(query: &str) -> AuthorizeParams {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()).into_owned() {
        map.entry(k).or_insert(v);
    }
    let get = |k: &str| map.get(k).cloned();
    AuthorizeParams {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        scope: get("scope"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("dex-a1b2c3d4".into()),
            redirect_uri: Some("http://127.0.0.1:5000/callback".into()),
            state: Some("s t&ate".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            scope: None,
        }
    }

    #[test]
    fn a_good_request_round_trips_through_its_path() {
        let p = params();
        assert!(p.check(None).is_ok());
        let back = from_path(&p.to_path()).unwrap();
        assert_eq!(back.state.as_deref(), Some("s t&ate"));
        assert!(back.check(None).is_ok());
    }

    #[test]
    fn plain_or_missing_challenges_go_back_to_the_client_with_state() {
        for (method, challenge) in [
            (
                Some("plain"),
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ),
            (None, Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")),
            (Some("S256"), None),
            (Some("S256"), Some("too-short")),
        ] {
            let mut p = params();
            p.code_challenge_method = method.map(Into::into);
            p.code_challenge = challenge.map(Into::into);
            match p.check(None) {
                Err(Refusal::Redirect(to)) => {
                    assert!(to.starts_with("http://127.0.0.1:5000/callback?error=invalid_request"));
                    assert!(to.contains("state=s+t%26ate"), "{to}");
                }
                _ => panic!("expected a redirect for {method:?} {challenge:?}"),
            }
        }
    }

    #[test]
    fn bad_clients_and_uris_are_never_redirected_to() {
        let mut p = params();
        p.redirect_uri = Some("http://evil.example.com/cb".into());
        assert!(matches!(p.check(None), Err(Refusal::Page(_))));
        let p = params();
        assert!(matches!(
            p.check(Some("http://127.0.0.1:9/other")),
            Err(Refusal::Page(_))
        ));
        assert!(p.check(Some("http://127.0.0.1:9/callback")).is_ok());
        let mut p = params();
        p.client_id = None;
        assert!(matches!(p.check(None), Err(Refusal::Page(_))));
    }
}
