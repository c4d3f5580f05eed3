//! Errors the proxy answers itself, rendered in the caller's dialect: OpenAI's
//! `{"error": {"message", "type", "param", "code"}}` or Anthropic's
//! `{"type": "error", "error": {"type", "message"}}`. 429 carries `Retry-After`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

/// Which API the caller speaks, decided by the route it called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("Missing API key. Send `Authorization: Bearer pk_live_…` or `x-api-key: pk_live_…`.")]
    MissingKey,
    #[error("Invalid API key or access token: unknown, revoked or expired. Check the key, create a new one in the Poindexter dashboard, or reconnect Dex.")]
    InvalidKey,
    #[error(
        "No active Poindexter subscription. Subscribe to a plan at /billing to use AI access."
    )]
    NoSubscription,
    #[error("This account is suspended (for example after a failed payment). Update your payment method at /billing to resume AI access.")]
    Suspended,
    #[error("The spending cap for this billing period is reached. Raise the cap at /billing or wait for the next period.")]
    SpendingCap,
    #[error("Rate limit reached for this API key. Retry after {retry_after_s} s.")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid URL ({0}). The proxy serves POST /v1/chat/completions, POST /v1/messages, POST /v1/embeddings and GET /v1/models.")]
    UnknownRoute(String),
    #[error("Method not allowed ({0}). The proxy serves POST /v1/chat/completions, POST /v1/messages, POST /v1/embeddings and GET /v1/models.")]
    MethodNotAllowed(String),
    #[error("The request body is larger than the {} MiB the proxy accepts.", crate::MAX_REQUEST_BYTES >> 20)]
    TooLarge,
    #[error("The model `{0}` does not exist or is not served by Poindexter. GET /v1/models lists the models.")]
    UnknownModel(String),
    #[error("The upstream AI provider could not be reached. Retry shortly.")]
    UpstreamUnavailable,
    #[error("The upstream AI provider did not answer in time. Retry shortly.")]
    UpstreamTimeout,
    #[error("No upstream is configured for this provider.")]
    NotConfigured,
    #[error("The upstream answered with status {status}.")]
    Upstream { status: u16, message: String },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey => StatusCode::UNAUTHORIZED,
            Self::NoSubscription | Self::Suspended | Self::SpendingCap => {
                StatusCode::PAYMENT_REQUIRED
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }
    }

    /// OpenAI's `(type, code)`.
    fn openai_kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::MissingKey => ("invalid_request_error", "missing_api_key"),
            Self::InvalidKey => ("invalid_request_error", "invalid_api_key"),
            Self::NoSubscription => ("insufficient_quota", "subscription_inactive"),
            Self::Suspended => ("insufficient_quota", "account_suspended"),
            Self::SpendingCap => ("insufficient_quota", "spending_cap_reached"),
            Self::RateLimited { .. } => ("requests", "rate_limit_exceeded"),
            Self::BadRequest(_) => ("invalid_request_error", "invalid_request"),
            Self::TooLarge => ("invalid_request_error", "request_too_large"),
            Self::UnknownRoute(_) => ("invalid_request_error", "unknown_url"),
            Self::MethodNotAllowed(_) => ("invalid_request_error", "method_not_allowed"),
            Self::UnknownModel(_) => ("invalid_request_error", "model_not_found"),
            Self::UpstreamUnavailable | Self::NotConfigured => {
                ("server_error", "upstream_unavailable")
            }
            Self::UpstreamTimeout => ("server_error", "upstream_timeout"),
            Self::Upstream { status, .. } => match status {
                429 => ("requests", "rate_limit_exceeded"),
                400..=499 => ("invalid_request_error", "upstream_error"),
                _ => ("server_error", "upstream_error"),
            },
        }
    }

    /// Anthropic's error `type`.
    fn anthropic_kind(&self) -> &'static str {
        match self {
            Self::MissingKey | Self::InvalidKey => "authentication_error",
            Self::NoSubscription | Self::Suspended | Self::SpendingCap => "billing_error",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::BadRequest(_) => "invalid_request_error",
            Self::TooLarge => "request_too_large",
            Self::UnknownRoute(_) => "not_found_error",
            Self::MethodNotAllowed(_) => "invalid_request_error",
            Self::UnknownModel(_) => "not_found_error",
            Self::UpstreamUnavailable | Self::UpstreamTimeout | Self::NotConfigured => "api_error",
            Self::Upstream { status, .. } => match status {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            },
        }
    }

    pub fn body(&self, dialect: Dialect) -> serde_json::Value {
        let message = match self {
            Self::Upstream { message, .. } if !message.is_empty() => message.clone(),
            other => other.to_string(),
        };
        match dialect {
            Dialect::OpenAi => {
                let (kind, code) = self.openai_kind();
                json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            Dialect::Anthropic => {
                json!({"type": "error", "error": {"type": self.anthropic_kind(), "message": message}})
            }
        }
    }

    pub fn into_response(self, dialect: Dialect) -> Response {
        let body = self.body(dialect).to_string();
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Self::RateLimited { retry_after_s } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        res
    }
}
