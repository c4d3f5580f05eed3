//! `POST /v1/auth/register`: create an account and start a session.

use super::session::{self, SessionResponse};
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    /// At least 10 characters, mixing letters with digits or symbols.
    password: String,
    name: Option<String>,
}

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse), (status = 400), (status = 409), (status = 413)))]
pub async fn register(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let email = domain::Email::parse(&req.email).map_err(|e| ApiError::bad_field("email", e.0))?;
    let password =
        domain::Password::parse(&req.password).map_err(|e| ApiError::bad_field("password", e.0))?;
    let name = req
        .name
        .as_deref()
        .map(domain::UserName::parse)
        .transpose()
        .map_err(|e| ApiError::bad_field("name", e.0))?;
    let hash = password::hash(password).await?;
    let user = match db::users::insert(
        &state.pool,
        Uuid::now_v7(),
        &email,
        &hash,
        name.as_ref().map(|n| n.as_str()),
    )
    .await
    {
        Ok(u) => u,
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "an account with this email already exists; log in instead".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    db::audit::record(
        &state.pool,
        "user",
        Some(user.id),
        "user.registered",
        serde_json::json!({}),
    )
    .await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(session::issue(&state, &user, None).await?),
    ))
}
