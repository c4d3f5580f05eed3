//! The one error type of the signal-cli-rest-api client. That service answers most failures
//! with 400 `{"error": "<signal-cli message>"}`, so the kind is read from the message as well
//! as from the status (413/429 rate limit, 423 registration lock).

use crate::http::TransportError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("signal: {0}")]
    Transport(#[from] TransportError),
    /// Registration needs a captcha token from an operator.
    #[error("signal: captcha required: {0}")]
    CaptchaRequired(String),
    /// Signal's rate limit (413/429): back off, then try again.
    #[error("signal: rate limited: {0}")]
    RateLimited(String),
    /// The number has a registration lock (PIN): an operator must act.
    #[error("signal: registration locked: {0}")]
    RegistrationLocked(String),
    /// A wrong or expired verification code: register again for a new one.
    #[error("signal: invalid verification code: {0}")]
    InvalidCode(String),
    /// The number is not registered with signal-cli (an unregister can count this as done).
    #[error("signal: not registered: {0}")]
    NotRegistered(String),
    #[error("signal: HTTP {status}: {message}")]
    Api { status: u16, message: String },
    #[error("signal: unexpected response: {0}")]
    Decode(String),
}

crate::http::classify_failures!(SignalError);

impl SignalError {
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let message = v["error"]
            .as_str()
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let lower = message.to_ascii_lowercase();
        if lower.contains("captcha") {
            Self::CaptchaRequired(message)
        } else if status == 413 || status == 429 || lower.contains("rate limit") {
            Self::RateLimited(message)
        } else if status == 423
            || lower.contains("registration lock")
            || lower.contains("pin is locked")
        {
            Self::RegistrationLocked(message)
        } else if lower.contains("verification")
            && (lower.contains("invalid")
                || lower.contains("failed")
                || lower.contains("incorrect"))
        {
            Self::InvalidCode(message)
        } else if lower.contains("not registered")
            || lower.contains("no such account")
            || lower.contains("not found")
        {
            Self::NotRegistered(message)
        } else {
            Self::Api { status, message }
        }
    }
}
