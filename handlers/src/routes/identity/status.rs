//! `GET /v1/identity/status`: per-step provisioning progress, readable while it runs.

use super::load;
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct StepView {
    step: String,
    status: db::status::StepStatus,
    attempts: i32,
    detail: Option<String>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct ProvisioningStatus {
    status: db::status::IdentityStatus,
    signal_status: db::status::SignalStatus,
    failure_reason: Option<String>,
    steps: Vec<StepView>,
}

#[utoipa::path(get, path = "/v1/identity/status", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = ProvisioningStatus), (status = 401), (status = 404)))]
pub async fn status(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<ProvisioningStatus>> {
    let identity = load(&state.pool, auth.user_id).await?;
    let steps = db::identities::steps(&state.pool, identity.id).await?;
    Ok(Json(ProvisioningStatus {
        status: identity.status,
        signal_status: identity.signal_status,
        failure_reason: identity.failure_reason,
        steps: steps
            .into_iter()
            .map(|s| StepView {
                step: s.step,
                status: s.status,
                attempts: s.attempts,
                detail: s.detail,
                started_at: s.started_at,
                finished_at: s.finished_at,
            })
            .collect(),
    }))
}
