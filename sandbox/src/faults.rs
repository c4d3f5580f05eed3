//! Fault injection and fixed latency, as one middleware in front of every provider prefix.
//!
//! A rule matches a provider, a glob on the path below the provider prefix and optionally a
//! method; it fires with its probability until its count is used up. Kinds:
//! - `status`: answers `status` at once with the provider's error shape; the provider does
//!   nothing.
//! - `reset`: drops the connection without a response; the provider does nothing.
//! - `slow`: waits `delay_ms`, then lets the provider answer.
//! - `timeout`: lets the provider act, then withholds the answer for `delay_ms` (default 60 s),
//!   so a client times out on a call that did happen.

use crate::{lock, Shared};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Every prefix the sandbox serves a provider under.
pub(crate) const PROVIDERS: [&str; 6] = [
    "google",
    "telnyx",
    "signal",
    "stripe",
    "openai",
    "anthropic",
];

const DEFAULT_TIMEOUT_HOLD_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Status,
    Timeout,
    Slow,
    Reset,
}

/// The body of `POST /_sandbox/faults`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FaultSpec {
    pub provider: String,
    #[serde(default = "any_route")]
    pub route: String,
    #[serde(default)]
    pub method: Option<String>,
    pub kind: Kind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(default)]
    pub count: Option<u32>,
}

fn any_route() -> String {
    "*".into()
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rule {
    pub id: String,
    pub provider: String,
    pub route: String,
    pub method: Option<String>,
    pub kind: Kind,
    pub status: u16,
    pub delay_ms: Option<u64>,
    pub probability: f64,
    /// Firings left; `None` is unlimited.
    pub remaining: Option<u32>,
    /// How often it fired.
    pub fired: u32,
}

impl FaultSpec {
    /// Checks the spec; the error names the field.
    pub fn into_rule(self) -> Result<Rule, String> {
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(format!("provider must be one of {}", PROVIDERS.join(", ")));
        }
        let status = self.status.unwrap_or(503);
        if !(100..=599).contains(&status) {
            return Err("status must be an HTTP status code".into());
        }
        let probability = self.probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&probability) {
            return Err("probability must be between 0 and 1".into());
        }
        if self.kind == Kind::Slow && self.delay_ms.is_none() {
            return Err("delay_ms is required for a slow fault".into());
        }
        let method = match self.method {
            Some(m) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| "method is not an HTTP method".to_owned())?
                    .to_string(),
            ),
            None => None,
        };
        let route = if self.route.starts_with('/') || self.route.starts_with('*') {
            self.route
        } else {
            format!("/{}", self.route)
        };
        Ok(Rule {
            id: uuid::Uuid::new_v4().to_string(),
            provider: self.provider,
            route,
            method,
            kind: self.kind,
            status,
            delay_ms: self.delay_ms,
            probability,
            remaining: self.count,
            fired: 0,
        })
    }
}

#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<Rule>>,
    latency_ms: Mutex<BTreeMap<String, u64>>,
}

impl Faults {
    pub fn add(&self, rule: Rule) -> String {
        let id = rule.id.clone();
        lock(&self.rules).push(rule);
        id
    }

    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    pub fn list(&self) -> Vec<Rule> {
        lock(&self.rules).clone()
    }

    pub fn reset(&self) {
        self.clear();
        lock(&self.latency_ms).clear();
    }

    pub fn latency(&self) -> BTreeMap<String, u64> {
        let set = lock(&self.latency_ms);
        PROVIDERS
            .iter()
            .map(|p| ((*p).to_owned(), set.get(*p).copied().unwrap_or(0)))
            .collect()
    }

    /// Sets the given providers' latency; the error names an unknown provider.
    pub fn set_latency(&self, values: BTreeMap<String, u64>) -> Result<(), String> {
        if let Some(bad) = values.keys().find(|k| !PROVIDERS.contains(&k.as_str())) {
            return Err(format!("unknown provider `{bad}`"));
        }
        lock(&self.latency_ms).extend(values);
        Ok(())
    }

    /// The first rule that matches and fires, with its count consumed.
    fn fire(&self, provider: &str, path: &str, method: &Method) -> Option<Rule> {
        let mut rules = lock(&self.rules);
        let index = rules.iter().position(|r| {
            r.provider == provider
                && r.remaining != Some(0)
                && r.method.as_deref().is_none_or(|m| m == method.as_str())
                && glob_match(&r.route, path)
                && (r.probability >= 1.0 || rand::random::<f64>() < r.probability)
        })?;
        let rule = &mut rules[index];
        rule.fired += 1;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.clone())
    }
}

/// `*` matches any run of characters (slashes included), `?` exactly one.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Splits `/google/admin/...` into (`google`, `/admin/...`) for provider paths.
fn split_provider(path: &str) -> Option<(&'static str, String)> {
    let rest = path.strip_prefix('/')?;
    let (first, below) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
    let provider = PROVIDERS.iter().find(|p| **p == first)?;
    Some((provider, format!("/{below}")))
}

pub(crate) async fn layer(State(sandbox): State<Shared>, req: Request, next: Next) -> Response {
    let Some((provider, below)) = split_provider(req.uri().path()) else {
        return next.run(req).await;
    };
    let latency = sandbox.faults.latency().get(provider).copied().unwrap_or(0);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let Some(rule) = sandbox.faults.fire(provider, &below, req.method()) else {
        return next.run(req).await;
    };
    tracing::info!(provider, route = %below, kind = ?rule.kind, "injecting fault");
    match rule.kind {
        Kind::Status => error_response(provider, rule.status),
        Kind::Reset => reset_response(),
        Kind::Slow => {
            tokio::time::sleep(Duration::from_millis(rule.delay_ms.unwrap_or(0))).await;
            next.run(req).await
        }
        Kind::Timeout => {
            let response = next.run(req).await;
            let hold = rule.delay_ms.unwrap_or(DEFAULT_TIMEOUT_HOLD_MS);
            tokio::time::sleep(Duration::from_millis(hold)).await;
            response
        }
    }
}

/// The provider's own error body for an injected status.
fn error_response(provider: &str, status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let text = code.canonical_reason().unwrap_or("Injected fault");
    let body = match provider {
        "google" => crate::google::error_body(code, "backendError", text),
        "telnyx" => {
            crate::telnyx::error_body(&status.to_string(), text, "Injected by the sandbox.")
        }
        "signal" => serde_json::json!({ "error": text }),
        "anthropic" => {
            serde_json::json!({"type": "error", "error": {"type": "api_error", "message": text}})
        }
        _ => {
            serde_json::json!({"error": {"message": text, "type": "server_error", "code": status}})
        }
    };
    (code, axum::Json(body)).into_response()
}

/// A response whose body fails at once: the connection is torn down without a complete
/// answer, which a client sees as a reset.
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_paths() {
        assert!(glob_match(
            "/admin/directory/v1/users*",
            "/admin/directory/v1/users"
        ));
        assert!(glob_match(
            "/admin/directory/v1/users*",
            "/admin/directory/v1/users/a@b/x"
        ));
        assert!(glob_match("*", "/v2/messages"));
        assert!(glob_match("/v?/messages", "/v2/messages"));
        assert!(!glob_match("/v2/messages", "/v2/messages/1"));
        assert!(!glob_match("/gmail/*/send", "/calendar/v3/x"));
    }
}
