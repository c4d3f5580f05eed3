//! `POST /v1/auth/register`: create an account and start a session.

use super::session::{self, SessionResponse};
use crate::error::ApiResult;
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;

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
    let user = crate::auth::accounts::create(
        &state,
        &req.email,
        &req.password,
        req.name.as_deref(),
        "api",
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(session::issue(&state, &user, None).await?),
    ))
}
