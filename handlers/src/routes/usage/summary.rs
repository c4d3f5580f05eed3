//! `GET /v1/usage`: this period's tokens in and out, cost, a breakdown by model and the most
//! recent requests.

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct ModelUsage {
    model: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_microdollars: i64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RecentRequest {
    request_id: String,
    model: String,
    input_tokens: i64,
    output_tokens: i64,
    cost_microdollars: i64,
    created_at: DateTime<Utc>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Usage {
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    /// Upstream cost of the requests, in microdollars.
    cost_microdollars: i64,
    by_model: Vec<ModelUsage>,
    /// The 20 most recent requests, newest first.
    recent: Vec<RecentRequest>,
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = Usage), (status = 401)))]
pub async fn usage(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Usage>> {
    let (month, from, to) = super::this_period();
    let totals = db::usage::totals(&state.pool, auth.user_id, month).await?;
    let by_model = db::usage::by_model(&state.pool, auth.user_id, month).await?;
    let recent = db::usage::recent(&state.pool, auth.user_id, month, 20).await?;
    Ok(Json(Usage {
        period_start: from,
        period_end: to,
        requests: totals.requests,
        input_tokens: totals.input_tokens,
        output_tokens: totals.output_tokens,
        cost_microdollars: totals.cost_microdollars,
        by_model: by_model
            .into_iter()
            .map(|m| ModelUsage {
                model: m.model,
                requests: m.requests,
                input_tokens: m.input_tokens,
                output_tokens: m.output_tokens,
                cost_microdollars: m.cost_microdollars,
            })
            .collect(),
        recent: recent
            .into_iter()
            .map(|r| RecentRequest {
                request_id: r.request_id,
                model: r.model,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_microdollars: r.cost_microdollars,
                created_at: r.created_at,
            })
            .collect(),
    }))
}
