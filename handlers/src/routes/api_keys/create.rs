//! `POST /v1/api-keys`: a new key, returned once.

use super::{NewApiKey, MAX_ACTIVE_KEYS};
use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 64 characters; defaults to "default".
    name: Option<String>,
}

fn parse_name(raw: Option<&str>) -> ApiResult<String> {
    let name = raw.map(str::trim).unwrap_or("default");
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            "name",
            "name must be 1 to 64 printable characters",
        ));
    }
    Ok(name.to_owned())
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    security(("bearer" = [])),
    responses((status = 201, body = NewApiKey), (status = 400), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
    body: Option<ValidJson<CreateApiKey>>,
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let (key, secret) = create_key(&state, auth.user_id, req.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(NewApiKey::new(key, &secret))))
}

/// A new key named `name` for the user (the portal's form creates keys the same way).
pub(crate) async fn create_key(
    state: &AppState,
    user_id: Uuid,
    name: Option<&str>,
) -> ApiResult<(db::api_keys::ApiKey, domain::ApiKeySecret)> {
    let name = parse_name(name)?;
    let active = db::api_keys::list_active(&state.pool, user_id).await?;
    if active.len() >= MAX_ACTIVE_KEYS {
        return Err(ApiError::Conflict(format!(
            "you already have {MAX_ACTIVE_KEYS} active keys; revoke one first"
        )));
    }
    let secret = domain::ApiKeySecret::generate();
    let key = db::api_keys::insert(&state.pool, Uuid::now_v7(), user_id, &name, &secret).await?;
    db::audit::record(
        &state.pool,
        "user",
        Some(user_id),
        "api_key.created",
        serde_json::json!({"key_id": key.id}),
    )
    .await?;
    Ok((key, secret))
}
