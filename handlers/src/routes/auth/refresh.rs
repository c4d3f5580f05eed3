//! `POST /v1/auth/refresh`: trade a refresh token for a new pair. Each refresh token works once;
//! presenting a used one revokes its whole family (it was copied).

use super::session::{self, SessionResponse};
use crate::auth::tokens;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use db::refresh_tokens::Consumed;
use utoipa::ToSchema;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = SessionResponse), (status = 400), (status = 401)))]
pub async fn refresh(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<RefreshRequest>,
) -> ApiResult<Json<SessionResponse>> {
    if req.refresh_token.len() > 256 {
        return Err(ApiError::bad_field(
            "refresh_token",
            "malformed refresh token",
        ));
    }
    let hash = tokens::hash_refresh_token(&req.refresh_token);
    let (user_id, family) = match db::refresh_tokens::consume(&state.pool, &hash).await? {
        Consumed::Ok { user_id, family_id } => (user_id, family_id),
        Consumed::Reused => {
            tracing::warn!("refresh token reused; family revoked");
            return Err(ApiError::Unauthorized(
                "refresh token already used; every session from that login was ended".into(),
            ));
        }
        Consumed::Invalid => {
            return Err(ApiError::Unauthorized(
                "invalid or expired refresh token".into(),
            ))
        }
    };
    let user = db::users::find(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired refresh token".into()))?;
    Ok(Json(session::issue(&state, &user, Some(family)).await?))
}
