//! `POST /v1/admin/provision/{user_id}`: an operator starts provisioning for a user.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathId, ValidJson};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionBody {
    /// basic or pro
    plan: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Started {
    pub identity_id: Uuid,
    pub user_id: Uuid,
    pub workflow_id: String,
    pub status: db::status::IdentityStatus,
}

#[utoipa::path(post, path = "/v1/admin/provision/{user_id}", tag = "admin", security(("admin" = [])),
    params(("user_id" = Uuid, Path)), request_body = ProvisionBody,
    responses((status = 202, body = Started), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn provision(
    State(state): State<AppState>,
    _admin: AdminAuth,
    PathId(user_id): PathId,
    ValidJson(body): ValidJson<ProvisionBody>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let plan = domain::Plan::parse(&body.plan).map_err(|e| ApiError::bad_field("plan", e.0))?;
    db::users::find(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    if let Some(i) = db::identities::find_by_user(&state.pool, user_id).await? {
        use db::status::IdentityStatus::{Deprovisioning, Suspended};
        if matches!(i.status, Suspended | Deprovisioning) {
            return Err(ApiError::Conflict(format!(
                "the identity is {}; resolve that first",
                i.status
            )));
        }
    }
    let key = format!("admin-provision:{user_id}");
    let identity = state
        .restate
        .start_provisioning(user_id, plan, &key)
        .await?;
    db::audit::record(
        &state.pool,
        "admin",
        Some(user_id),
        "identity.provision_requested",
        serde_json::json!({"identity_id": identity.id, "plan": plan.as_str()}),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            identity_id: identity.id,
            user_id,
            workflow_id: crate::orchestration::workflow_key(&identity),
            status: identity.status,
        }),
    ))
}
