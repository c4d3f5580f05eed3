//! `POST /v1/signal/send` {to, message}: a Signal message from the identity's number.

use crate::comms::{signal_error, ActiveIdentity};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

pub const MAX_MESSAGE_CHARS: usize = 4096;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSignal {
    /// E.164 number of the recipient, e.g. `+15551234567`.
    to: String,
    /// 1 to 4096 characters.
    message: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SentSignal {
    to: String,
    /// Signal's timestamp of the message (ms since the epoch); it identifies the message.
    timestamp: i64,
    sent_at: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/v1/signal/send", tag = "signal", security(("bearer" = [])),
    request_body = SendSignal,
    responses((status = 200, body = SentSignal), (status = 400), (status = 401),
        (status = 409, description = "identity not active, or Signal not registered"),
        (status = 422, description = "Signal refused it, e.g. the recipient is not on Signal"),
        (status = 503)))]
pub async fn send(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidJson(req): ValidJson<SendSignal>,
) -> ApiResult<Json<SentSignal>> {
    let to = domain::PhoneNumber::parse(&req.to).map_err(|e| ApiError::bad_field("to", e.0))?;
    if req.message.trim().is_empty() {
        return Err(ApiError::bad_field("message", "must not be empty"));
    }
    if req.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::bad_field(
            "message",
            format!("at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let from = caller.signal_number()?;
    let timestamp = state
        .providers
        .signal
        .send(from, &[to.as_str()], &req.message)
        .await
        .map_err(signal_error)?;
    tracing::info!("signal message sent");
    crate::comms::record_sent(&state, &caller, "signal.sent", 1).await;
    Ok(Json(SentSignal {
        to: to.as_str().to_owned(),
        timestamp,
        sent_at: DateTime::from_timestamp_millis(timestamp),
    }))
}
