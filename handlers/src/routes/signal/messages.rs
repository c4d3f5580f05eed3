//! `GET /v1/signal/messages?after=&limit=`: the Signal messages received on the identity's
//! number, oldest first, from Postgres. Reading acknowledges nothing: a response that never
//! reaches Dex is read again with the same `after`. Dex passes each response's `next` as the
//! following `after`.
//!
//! The number's SignalReceiver (workflows) takes messages from signal-cli on its own timer, so
//! they are kept whether or not Dex polls. A read also asks the receiver for one round first
//! (so a message sent a moment ago shows at once): signal-cli hands a message out once, and the
//! receiver journals it in Restate before storing it, so neither a crash of the api nor a
//! database outage can lose it (a direct receive from here could). The read also (re)starts the
//! number's loop, so numbers registered before receivers existed get one. If Restate is
//! unreachable the read receives here itself, and answers from what is stored if signal-cli
//! is unreachable too.

use crate::comms::ActiveIdentity;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::{IntoParams, ToSchema};
use workflows::contract;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// `next` of the previous response (or a message's `cursor`): only later messages.
    /// Absent: from the oldest message kept.
    after: Option<i64>,
    /// Messages per response, 1 to 500 (default 100).
    limit: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SignalMessage {
    /// This message's position; pass it (or `next`) as `after`.
    cursor: i64,
    /// The sender's number.
    from: String,
    from_name: Option<String>,
    /// The sender's timestamp (ms since the epoch).
    timestamp: i64,
    sent_at: Option<DateTime<Utc>>,
    message: String,
    /// When Poindexter took it from signal-cli.
    received_at: DateTime<Utc>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SignalMessages {
    data: Vec<SignalMessage>,
    /// Pass as `after` next time: the last message's cursor, or the `after` given when
    /// there was nothing new (so it never goes back).
    next: i64,
}

#[utoipa::path(get, path = "/v1/signal/messages", tag = "signal", security(("bearer" = [])),
    params(MessagesQuery),
    responses((status = 200, body = SignalMessages), (status = 400), (status = 401),
        (status = 409)))]
pub async fn messages(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidQuery(q): ValidQuery<MessagesQuery>,
) -> ApiResult<Json<SignalMessages>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ));
    }
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_field(
            "after",
            "a cursor from a previous response",
        ));
    }
    let number = caller.number()?.to_owned();
    let identity = caller.identity.id;
    if caller.identity.signal_status == db::status::SignalStatus::Registered {
        pull_through(&state, identity, &number).await?;
    }
    let rows = db::signal_messages::list_after(&state.pool, identity, q.after, limit).await?;
    let next = rows.last().map_or(q.after.unwrap_or(0), |m| m.id);
    Ok(Json(SignalMessages {
        next,
        data: rows
            .into_iter()
            .map(|m| SignalMessage {
                cursor: m.id,
                from: m.sender,
                from_name: m.sender_name,
                sent_at: DateTime::from_timestamp_millis(m.sent_at_ms),
                timestamp: m.sent_at_ms,
                message: m.body,
                received_at: m.received_at,
            })
            .collect(),
    }))
}

/// One journaled receive-and-store by the number's receiver before the read (bounded, so a
/// slow signal-cli delays a read by at most a few seconds), and the loop started if it is not
/// running.
async fn pull_through(state: &AppState, identity: uuid::Uuid, number: &str) -> ApiResult<()> {
    let start = contract::start_receiver(number);
    if let Err(e) = state.restate.send(&start, None).await {
        tracing::warn!(error = %e, "starting the Signal receiver failed");
    }
    let now = contract::receive_now(number);
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.restate.call(&now, None),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the Signal receiver is unreachable; receiving here");
            pull_direct(state, identity, number).await
        }
        Err(_) => {
            tracing::warn!("receiving for a read took too long; answering from what is stored");
            Ok(())
        }
    }
}

/// Without Restate: receives from signal-cli here and stores before the read (retried a few
/// times; only a crash right between the two could lose what signal-cli handed out).
async fn pull_direct(state: &AppState, identity: uuid::Uuid, number: &str) -> ApiResult<()> {
    let received = match state.providers.signal.receive(number).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "receiving from signal-cli for a read failed");
            return Ok(());
        }
    };
    let rows: Vec<db::signal_messages::NewMessage> = received
        .into_iter()
        .map(|m| db::signal_messages::NewMessage {
            sender: m.source,
            sender_name: m.source_name.filter(|n| !n.is_empty()),
            sent_at_ms: m.timestamp,
            body: m.message,
        })
        .collect();
    // signal-cli has handed these out: try hard to keep them.
    let mut attempt = 0;
    loop {
        match db::signal_messages::store(&state.pool, identity, number, &rows).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "storing received Signal messages failed");
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, lost = rows.len(), "Signal messages received but not stored");
                return Err(e.into());
            }
        }
    }
}
