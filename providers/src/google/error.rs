//! The one error type of the Google client, classified from Google's JSON error bodies.

use crate::http::TransportError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoogleError {
    #[error("google: {0}")]
    Transport(#[from] TransportError),
    /// 409: the resource (user address, event id) exists already. For our own deterministic
    /// names this means an earlier attempt succeeded.
    #[error("google: already exists: {0}")]
    AlreadyExists(String),
    /// 404 or 410: the resource does not exist (a delete can treat this as done).
    #[error("google: not found: {0}")]
    NotFound(String),
    /// The token endpoint refused the service account or the impersonated user, or an API
    /// answered 401: credentials or delegation need fixing.
    #[error("google: authentication failed: {0}")]
    Unauthorized(String),
    /// 403 other than rate limits: missing scope, delegation denied, not an admin.
    #[error("google: forbidden: {0}")]
    Forbidden(String),
    /// 429 or a 403 with reason rateLimitExceeded / userRateLimitExceeded.
    #[error("google: rate limited: {0}")]
    RateLimited(String),
    /// 400 and other statuses.
    #[error("google: HTTP {status}: {message}")]
    Api {
        status: u16,
        reason: Option<String>,
        message: String,
    },
    /// The service account JSON is missing or malformed.
    #[error("google: service account: {0}")]
    Credentials(String),
    #[error("google: unexpected response: {0}")]
    Decode(String),
}

crate::http::classify_failures!(GoogleError);

impl GoogleError {
    /// Classifies an API error response (`{"error": {"code", "message", "errors": [{"reason"}]}}`).
    pub(crate) fn from_api(status: u16, body: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let err = &v["error"];
        let message = err["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}"));
        let reason = err["errors"][0]["reason"].as_str().map(str::to_owned);
        match (status, reason.as_deref()) {
            (404 | 410, _) => Self::NotFound(message),
            (409, _) => Self::AlreadyExists(message),
            (401, _) => Self::Unauthorized(message),
            (429, _) | (403, Some("rateLimitExceeded" | "userRateLimitExceeded")) => {
                Self::RateLimited(message)
            }
            (403, _) => Self::Forbidden(message),
            _ => Self::Api {
                status,
                reason,
                message,
            },
        }
    }

    /// Classifies a token endpoint error (`{"error": "invalid_grant", "error_description"}`).
    pub(crate) fn from_token_endpoint(status: u16, body: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let code = v["error"].as_str().unwrap_or("unknown_error");
        let description = v["error_description"].as_str().unwrap_or("");
        let message = format!("{code}: {description}");
        match status {
            400 | 401 | 403 => Self::Unauthorized(message),
            429 => Self::RateLimited(message),
            _ => Self::Api {
                status,
                reason: Some(code.to_owned()),
                message,
            },
        }
    }
}
