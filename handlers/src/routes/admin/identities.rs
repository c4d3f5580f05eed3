//! Operator actions on one identity: retry what failed, or deprovision it.

use super::provision::Started;
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use db::status::{IdentityStatus, SignalStatus};
use serde_json::json;
use workflows::contract;

async fn load(state: &AppState, id: uuid::Uuid) -> ApiResult<db::identities::Identity> {
    db::identities::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such identity".into()))
}

/// A failed provisioning starts over as a new generation; a failed Signal registration is
/// retried in its own workflow; anything else has nothing to retry (409).
#[utoipa::path(post, path = "/v1/admin/identities/{id}/retry", tag = "admin", security(("admin" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = Started), (status = 403), (status = 404), (status = 409)))]
pub async fn retry(
    State(state): State<AppState>,
    _admin: AdminAuth,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let identity = load(&state, id).await?;
    if identity.status == IdentityStatus::Failed {
        let plan = identity
            .plan
            .as_deref()
            .and_then(|p| domain::Plan::parse(p).ok())
            .unwrap_or(domain::Plan::Basic);
        let key = format!(
            "admin-retry:{}",
            crate::orchestration::workflow_key(&identity)
        );
        let fresh = state
            .restate
            .start_provisioning(identity.user_id, plan, &key)
            .await?;
        db::audit::record(
            &state.pool,
            "admin",
            Some(identity.user_id),
            "identity.retry",
            json!({"identity_id": id}),
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(Started {
                identity_id: fresh.id,
                user_id: fresh.user_id,
                workflow_id: crate::orchestration::workflow_key(&fresh),
                status: fresh.status,
            }),
        ));
    }
    if identity.signal_status == SignalStatus::Failed {
        let phone = identity
            .phone_number
            .clone()
            .ok_or_else(|| ApiError::Conflict("the identity has no number".into()))?;
        state
            .restate
            .call(&contract::retry_signal(&phone), None)
            .await
            .map_err(|e| {
                ApiError::Conflict(format!(
                    "the Signal registration cannot be retried now: {e}"
                ))
            })?;
        db::audit::record(
            &state.pool,
            "admin",
            Some(identity.user_id),
            "signal.retry",
            json!({"identity_id": id}),
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(Started {
                identity_id: identity.id,
                user_id: identity.user_id,
                workflow_id: contract::signal_registration_id(&phone),
                status: identity.status,
            }),
        ));
    }
    Err(ApiError::Conflict(format!(
        "nothing to retry: the identity is {} and Signal is {}",
        identity.status, identity.signal_status
    )))
}

#[utoipa::path(post, path = "/v1/admin/identities/{id}/deprovision", tag = "admin", security(("admin" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = Started), (status = 403), (status = 404), (status = 409)))]
pub async fn deprovision(
    State(state): State<AppState>,
    _admin: AdminAuth,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let identity = load(&state, id).await?;
    if identity.status == IdentityStatus::Deleted {
        return Err(ApiError::Conflict("the identity is already deleted".into()));
    }
    state
        .restate
        .deprovision_identity(&identity, "admin-deprovision")
        .await?;
    db::audit::record(
        &state.pool,
        "admin",
        Some(identity.user_id),
        "identity.deprovision_requested",
        json!({"identity_id": id}),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            identity_id: identity.id,
            user_id: identity.user_id,
            workflow_id: format!(
                "DeprovisionIdentity/{}",
                crate::orchestration::workflow_key(&identity)
            ),
            status: identity.status,
        }),
    ))
}
