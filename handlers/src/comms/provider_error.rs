//! Provider failures as API errors: retryable → 503 with `Retry-After`; "not found" → 404 (an
//! id from another mailbox is simply not found in the caller's); a refused request → 422 with
//! the provider's reason; our own credentials or configuration → 500, logged, opaque.
//! Logged errors never carry message bodies (the clients' errors do not contain them).

use crate::error::ApiError;
use providers::{GoogleError, SignalError};

/// `what` names the resource for a 404, e.g. "message".
pub fn google_error(e: GoogleError, what: &str) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "Google unavailable");
        return ApiError::Unavailable(
            "the mail and calendar provider is unavailable; retry shortly".into(),
        );
    }
    match e {
        GoogleError::NotFound(_) => ApiError::NotFound(format!("no such {what}")),
        GoogleError::AlreadyExists(_) => ApiError::Conflict(format!("this {what} exists already")),
        GoogleError::Api {
            status: 400..=499,
            message,
            ..
        } => ApiError::Unprocessable(format!("Google refused the request: {message}")),
        // A decoding error can quote the response, i.e. mail or event text: keep it out of logs.
        GoogleError::Decode(_) => ApiError::Internal(anyhow::anyhow!(
            "google: unexpected response (details withheld)"
        )),
        other => ApiError::Internal(anyhow::anyhow!("google: {other}")),
    }
}

pub fn signal_error(e: SignalError) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "signal-cli unavailable");
        return ApiError::Unavailable("Signal is unavailable; retry shortly".into());
    }
    match e {
        SignalError::NotRegistered(_) => ApiError::Conflict(
            "Signal is not registered on your number; see GET /v1/identity/signal".into(),
        ),
        SignalError::Api {
            status: 400..=499,
            message,
        } => ApiError::Unprocessable(format!("Signal refused the request: {message}")),
        SignalError::Decode(_) => ApiError::Internal(anyhow::anyhow!(
            "signal: unexpected response (details withheld)"
        )),
        other => ApiError::Internal(anyhow::anyhow!("signal: {other}")),
    }
}
