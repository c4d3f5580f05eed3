//! `GET /v1/sms/messages?limit=&before=`: the identity's received SMS, newest first.

use crate::comms::ActiveIdentity;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SmsQuery {
    /// Messages per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_before` of the previous page: continue with older messages.
    before: Option<Uuid>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SmsView {
    id: Uuid,
    from: String,
    to: String,
    body: String,
    received_at: DateTime<Utc>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SmsList {
    data: Vec<SmsView>,
    /// Pass as `before` for older messages; absent on the last page.
    next_before: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/sms/messages", tag = "sms", security(("bearer" = [])),
    params(SmsQuery),
    responses((status = 200, body = SmsList), (status = 400), (status = 401), (status = 409)))]
pub async fn list(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidQuery(q): ValidQuery<SmsQuery>,
) -> ApiResult<Json<SmsList>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ));
    }
    let rows =
        db::incoming_sms::list_for_identity(&state.pool, caller.identity.id, limit + 1, q.before)
            .await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<SmsView> = rows
        .into_iter()
        .take(limit as usize)
        .map(|s| SmsView {
            id: s.id,
            from: s.from_number,
            to: s.to_number,
            body: s.body,
            received_at: s.received_at,
        })
        .collect();
    Ok(Json(SmsList {
        next_before: data.last().map(|s| s.id).filter(|_| more),
        data,
    }))
}
