//! `GET /v1/signal/messages`: the Signal messages received since the previous call. signal-cli
//! hands each message out once, so Dex keeps what it needs.

use crate::comms::{signal_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct SignalMessage {
    /// The sender's number.
    from: String,
    from_name: Option<String>,
    /// The sender's timestamp (ms since the epoch).
    timestamp: i64,
    sent_at: Option<DateTime<Utc>>,
    message: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SignalMessages {
    data: Vec<SignalMessage>,
}

#[utoipa::path(get, path = "/v1/signal/messages", tag = "signal", security(("bearer" = [])),
    responses((status = 200, body = SignalMessages), (status = 401), (status = 409),
        (status = 503)))]
pub async fn messages(
    State(state): State<AppState>,
    caller: ActiveIdentity,
) -> ApiResult<Json<SignalMessages>> {
    let received = state
        .providers
        .signal
        .receive(caller.signal_number()?)
        .await
        .map_err(signal_error)?;
    Ok(Json(SignalMessages {
        data: received
            .into_iter()
            .map(|m| SignalMessage {
                from: m.source,
                from_name: m.source_name.filter(|n| !n.is_empty()),
                sent_at: DateTime::from_timestamp_millis(m.timestamp),
                timestamp: m.timestamp,
                message: m.message,
            })
            .collect(),
    }))
}
