//! `POST /v1/admin/usage-sync/{user_id}/{month}`: runs UsageSync for one user and month now
//! and returns its report. Always safe: only the not-yet-reported overage is sent, under
//! identifiers Stripe has seen before if it was sent already.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use uuid::Uuid;

#[utoipa::path(post, path = "/v1/admin/usage-sync/{user_id}/{month}", tag = "admin",
    params(("user_id" = Uuid, Path), ("month" = String, Path, description = "YYYY-MM")),
    security(("admin" = [])),
    responses((status = 200, description = "UsageSync's report"), (status = 400), (status = 401),
              (status = 403), (status = 404), (status = 503)))]
pub async fn rerun(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path((user_id, month)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let user_id = Uuid::parse_str(&user_id)
        .map_err(|_| ApiError::bad_field("user_id", "user_id must be a UUID"))?;
    let month = domain::Month::parse(&month).map_err(|e| ApiError::bad_field("month", e.0))?;
    if db::users::find(&state.pool, user_id).await?.is_none() {
        return Err(ApiError::NotFound("no such user".into()));
    }
    db::audit::record(
        &state.pool,
        "admin",
        Some(user_id),
        "usage_sync.rerun",
        serde_json::json!({ "month": month.to_string() }),
    )
    .await?;
    let report = state
        .restate
        .call(&workflows::contract::sync_usage(user_id, month), None)
        .await?;
    Ok(Json(report))
}
