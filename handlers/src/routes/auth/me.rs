//! `GET /v1/me`: the authenticated user.

use super::account::AccountView;
use super::session::UserView;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct MeResponse {
    user: UserView,
    /// Active, closing or closed.
    account: AccountView,
    /// `session` or `api_key`.
    authenticated_with: &'static str,
}

#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401)))]
pub async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<MeResponse>> {
    let user = db::users::find(&state.pool, auth.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))?;
    let account = db::account_closing::state(&state.pool, auth.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))?;
    let authenticated_with = match auth.credential {
        crate::auth::Credential::Session => "session",
        crate::auth::Credential::ApiKey { .. } => "api_key",
        crate::auth::Credential::OAuth { .. } => "oauth",
    };
    Ok(Json(MeResponse {
        user: (&user).into(),
        account: (&account).into(),
        authenticated_with,
    }))
}
