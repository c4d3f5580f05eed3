//! `GET /v1/billing/subscription`: the caller's plan and its Stripe status.

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct SubscriptionView {
    plan: String,
    /// Stripe's status: active, trialing, past_due, unpaid, canceled, …
    status: String,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    included_tokens: i64,
    monthly_price_microdollars: i64,
    overage_input_per_mtok_microdollars: i64,
    overage_output_per_mtok_microdollars: i64,
}

#[utoipa::path(get, path = "/v1/billing/subscription", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionView), (status = 401), (status = 404)))]
pub async fn subscription(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<SubscriptionView>> {
    let sub = db::subscriptions::current(&state.pool, auth.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("you have no subscription; subscribe to a plan".into())
        })?;
    let plan =
        domain::Plan::parse(&sub.plan).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    Ok(Json(SubscriptionView {
        plan: sub.plan,
        status: sub.status,
        current_period_start: sub.current_period_start,
        current_period_end: sub.current_period_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        included_tokens: plan.included_tokens(),
        monthly_price_microdollars: plan.monthly_price_microdollars(),
        overage_input_per_mtok_microdollars: plan.overage_input_per_mtok_microdollars(),
        overage_output_per_mtok_microdollars: plan.overage_output_per_mtok_microdollars(),
    }))
}
