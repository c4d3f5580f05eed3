//! The one error type of the Telnyx client, classified from Telnyx's
//! `{"errors": [{"code", "title", "detail"}]}` bodies.

use crate::http::TransportError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelnyxError {
    #[error("telnyx: {0}")]
    Transport(#[from] TransportError),
    /// 404: no such number, order or profile (a release can treat this as done).
    #[error("telnyx: not found: {0}")]
    NotFound(String),
    /// The number was taken between search and order; order another one.
    #[error("telnyx: number no longer available: {0}")]
    NumberUnavailable(String),
    /// 401/403: the API key is wrong or lacks permission.
    #[error("telnyx: unauthorized: {0}")]
    Unauthorized(String),
    #[error("telnyx: rate limited: {0}")]
    RateLimited(String),
    /// Validation failures (400/422) and other statuses.
    #[error("telnyx: HTTP {status} (code {code}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// No number could be ordered after trying every candidate.
    #[error("telnyx: no number available: {0}")]
    NoNumberAvailable(String),
    #[error("telnyx: unexpected response: {0}")]
    Decode(String),
}

/// Telnyx error code for a number that can no longer be ordered. Guessed: the public docs do
/// not pin the code of this failure; the title/detail text is checked as well.
pub const NUMBER_UNAVAILABLE_CODE: &str = "85001";

crate::http::classify_failures!(TelnyxError);

impl TelnyxError {
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let first = &v["errors"][0];
        let code = first["code"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| first["code"].as_u64().map(|c| c.to_string()))
            .unwrap_or_default();
        let title = first["title"].as_str().unwrap_or("");
        let detail = first["detail"].as_str().unwrap_or("");
        let message = match (title.is_empty(), detail.is_empty()) {
            (true, true) => format!("HTTP {status}"),
            (false, true) => title.to_owned(),
            (true, false) => detail.to_owned(),
            (false, false) => format!("{title}: {detail}"),
        };
        let unavailable = code == NUMBER_UNAVAILABLE_CODE
            || message.to_ascii_lowercase().contains("no longer available");
        match status {
            404 => Self::NotFound(message),
            401 | 403 => Self::Unauthorized(message),
            429 => Self::RateLimited(message),
            400 | 409 | 422 if unavailable => Self::NumberUnavailable(message),
            _ => Self::Api {
                status,
                code,
                message,
            },
        }
    }
}
