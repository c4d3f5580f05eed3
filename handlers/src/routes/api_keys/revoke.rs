//! `DELETE /v1/api-keys/{id}`: revoke a key. Someone else's key id is answered exactly like a
//! key that does not exist.

use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "key id")),
    responses((status = 204), (status = 400), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !db::api_keys::revoke(&state.pool, auth.user_id, id).await? {
        return Err(ApiError::NotFound("no such API key".into()));
    }
    db::audit::record(
        &state.pool,
        "user",
        Some(auth.user_id),
        "api_key.revoked",
        serde_json::json!({"key_id": id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
