//! `POST /v1/auth/logout`: ends every session of the user: all access tokens (token version
//! bump) and all refresh tokens. API keys are not sessions and stay valid.

use crate::auth::AccountOwner;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder")))]
pub async fn logout(
    State(state): State<AppState>,
    AccountOwner(user): AccountOwner,
) -> ApiResult<StatusCode> {
    db::users::bump_token_version(&state.pool, user.user_id).await?;
    db::refresh_tokens::revoke_all_for_user(&state.pool, user.user_id).await?;
    db::audit::record(
        &state.pool,
        "user",
        Some(user.user_id),
        "user.logged_out",
        serde_json::json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
