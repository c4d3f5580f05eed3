//! `POST /v1/api-keys/{id}/rotate`: revoke a key and issue its successor (same name) atomically.

use super::NewApiKey;
use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;

#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "key id")),
    responses((status = 201, body = NewApiKey), (status = 400), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 404)))]
pub async fn rotate(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
    let secret = domain::ApiKeySecret::generate();
    let key = db::api_keys::rotate(&state.pool, auth.user_id, id, Uuid::now_v7(), &secret)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such API key".into()))?;
    db::audit::record(
        &state.pool,
        "user",
        Some(auth.user_id),
        "api_key.rotated",
        serde_json::json!({"key_id": id, "successor": key.id}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(NewApiKey::new(key, &secret))))
}
