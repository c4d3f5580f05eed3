//! `POST /v1/auth/login`: exchange email and password for a session. Throttled per account and
//! per IP; the answer never says whether the email exists.

use super::session::{self, SessionResponse};
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use std::net::SocketAddr;
use utoipa::ToSchema;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 400), (status = 401), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ValidJson(req): ValidJson<LoginRequest>,
) -> ApiResult<Json<SessionResponse>> {
    let email = domain::Email::parse(&req.email).map_err(|e| ApiError::bad_field("email", e.0))?;
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::bad_field(
            "password",
            "password must be 1 to 1024 bytes",
        ));
    }
    state
        .throttle
        .check(email.as_str(), peer.ip())
        .map_err(|secs| ApiError::TooManyRequests {
            retry_after_secs: secs,
            message: format!("too many login attempts; retry in {secs} s"),
        })?;
    let user = db::users::find_by_email(&state.pool, &email).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!("login refused");
        return Err(ApiError::Unauthorized("invalid email or password".into()));
    };
    super::account::refuse_unless_active(&state, user.id).await?;
    Ok(Json(session::issue(&state, &user, None).await?))
}
