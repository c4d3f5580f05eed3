//! Keep-alive of the Signal numbers, for operators: `GET /v1/admin/signal?stale_after_secs=`
//! lists the registered numbers of active identities that have not been received from for
//! longer than the threshold (default 900 s), or never; `POST /v1/admin/signal/{phone}/receiver`
//! starts a number's receiver (a no-op while it runs), e.g. for a number registered before
//! receivers existed.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_STALE_AFTER_SECS: i64 = 900;
/// A year: a larger threshold lists nothing more, and a huge one overflowed Postgres' interval
/// arithmetic into a 500 (found by schemathesis).
pub const MAX_STALE_AFTER_SECS: i64 = 366 * 24 * 3600;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaleQuery {
    /// Seconds without a successful receive before a number is listed (default 900, at most
    /// a year).
    #[param(minimum = 0, maximum = 31622400)]
    stale_after_secs: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct StaleNumber {
    number: String,
    identity_id: uuid::Uuid,
    user_id: uuid::Uuid,
    /// The last successful receive; absent when never.
    last_received_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    /// Whether the number's receiver loop is scheduled.
    running: bool,
}

#[derive(serde::Serialize, ToSchema)]
pub struct StaleNumbers {
    stale_after_secs: i64,
    data: Vec<StaleNumber>,
}

#[utoipa::path(get, path = "/v1/admin/signal", tag = "admin", security(("admin" = [])),
    params(StaleQuery),
    responses((status = 200, body = StaleNumbers), (status = 400), (status = 403)))]
pub async fn stale(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ValidQuery(q): ValidQuery<StaleQuery>,
) -> ApiResult<Json<StaleNumbers>> {
    let secs = q.stale_after_secs.unwrap_or(DEFAULT_STALE_AFTER_SECS);
    if !(0..=MAX_STALE_AFTER_SECS).contains(&secs) {
        return Err(ApiError::bad_field(
            "stale_after_secs",
            format!("from 0 to {MAX_STALE_AFTER_SECS} (a year)"),
        ));
    }
    let rows = db::signal_messages::stale(&state.pool, secs).await?;
    Ok(Json(StaleNumbers {
        stale_after_secs: secs,
        data: rows
            .into_iter()
            .map(|r| StaleNumber {
                number: r.number,
                identity_id: r.identity_id,
                user_id: r.user_id,
                last_received_at: r.last_received_at,
                last_error: r.last_error,
                last_error_at: r.last_error_at,
                running: r.running,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/admin/signal/{phone}/receiver", tag = "admin", security(("admin" = [])),
    params(("phone" = String, Path)),
    responses((status = 202), (status = 403), (status = 404), (status = 503)))]
pub async fn start_receiver(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(phone): Path<String>,
) -> ApiResult<StatusCode> {
    let phone = domain::PhoneNumber::parse(&phone)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| ApiError::bad_field("phone", e.0))?;
    let identity = db::identities::find_by_phone(&state.pool, &phone)
        .await?
        .ok_or_else(|| ApiError::NotFound("no identity has this number".into()))?;
    state
        .restate
        .send(&workflows::contract::start_receiver(&phone), None)
        .await?;
    db::audit::record(
        &state.pool,
        "admin",
        Some(identity.user_id),
        "signal.receiver.start",
        json!({ "phone": phone }),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}
