//! `GET /v1/usage/remaining`: included tokens left this period on the current plan.

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct Remaining {
    /// None without a subscription (nothing is included then).
    plan: Option<String>,
    included_tokens: i64,
    used_tokens: i64,
    /// Included tokens not yet used; past zero, every token is overage.
    remaining_tokens: i64,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/usage/remaining", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = Remaining), (status = 401)))]
pub async fn remaining(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<Remaining>> {
    let (month, from, to) = super::this_period();
    let plan = db::subscriptions::current(&state.pool, auth.user_id)
        .await?
        .filter(|s| !matches!(s.status.as_str(), "canceled" | "incomplete_expired"))
        .and_then(|s| domain::Plan::parse(&s.plan).ok());
    let totals = db::usage::totals(&state.pool, auth.user_id, month).await?;
    let used = totals.input_tokens + totals.output_tokens;
    let included = plan.map(|p| p.included_tokens()).unwrap_or(0);
    Ok(Json(Remaining {
        plan: plan.map(|p| p.as_str().to_owned()),
        included_tokens: included,
        used_tokens: used,
        remaining_tokens: (included - used).max(0),
        period_start: from,
        period_end: to,
    }))
}
