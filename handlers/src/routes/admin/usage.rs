//! `GET /v1/admin/usage`: a month across users (default the current one, UTC): what was served,
//! and per user, the heaviest first, what UsageSync computed as overage and what Stripe has
//! accepted of it, so an operator sees overage still to be billed at a glance.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `YYYY-MM`; default the current month (UTC).
    month: Option<String>,
    /// How many users, heaviest first: 1 to 200, default 50.
    limit: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct MonthTotals {
    users: i64,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_microdollars: i64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct UserUsage {
    user_id: Uuid,
    email: String,
    plan: Option<String>,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_microdollars: i64,
    /// Overage as of the last UsageSync (`synced_at`).
    overage_input_tokens: i64,
    overage_output_tokens: i64,
    /// Overage Stripe has accepted as meter events.
    reported_input_tokens: i64,
    reported_output_tokens: i64,
    /// Overage computed but not yet accepted by Stripe.
    unreported_input_tokens: i64,
    unreported_output_tokens: i64,
    synced_at: Option<DateTime<Utc>>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AdminUsage {
    month: String,
    totals: MonthTotals,
    users: Vec<UserUsage>,
}

#[utoipa::path(get, path = "/v1/admin/usage", tag = "admin", params(UsageQuery), security(("admin" = [])),
    responses((status = 200, body = AdminUsage), (status = 400), (status = 401), (status = 403)))]
pub async fn usage(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ValidQuery(q): ValidQuery<UsageQuery>,
) -> ApiResult<Json<AdminUsage>> {
    let month = match q.month.as_deref() {
        None => crate::routes::usage::this_period().0,
        Some(m) => domain::Month::parse(m).map_err(|e| ApiError::bad_field("month", e.0))?,
    };
    let limit = super::page_limit(q.limit)?;
    let t = db::usage::month_totals(&state.pool, month).await?;
    let users = db::usage::top_users(&state.pool, month, limit)
        .await?
        .into_iter()
        .map(|u| UserUsage {
            unreported_input_tokens: (u.overage_input_tokens - u.reported_input_tokens).max(0),
            unreported_output_tokens: (u.overage_output_tokens - u.reported_output_tokens).max(0),
            user_id: u.user_id,
            email: u.email,
            plan: u.plan,
            requests: u.requests,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cost_microdollars: u.cost_microdollars,
            overage_input_tokens: u.overage_input_tokens,
            overage_output_tokens: u.overage_output_tokens,
            reported_input_tokens: u.reported_input_tokens,
            reported_output_tokens: u.reported_output_tokens,
            synced_at: u.synced_at,
        })
        .collect();
    Ok(Json(AdminUsage {
        month: month.to_string(),
        totals: MonthTotals {
            users: t.users,
            requests: t.requests,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cost_microdollars: t.cost_microdollars,
        },
        users,
    }))
}
