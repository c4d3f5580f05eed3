//! The token pair returned by register, login and refresh.

use crate::auth::tokens;
use crate::error::ApiResult;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&db::users::User> for UserView {
    fn from(u: &db::users::User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: u.created_at,
        }
    }
}

#[derive(serde::Serialize, ToSchema)]
pub struct SessionResponse {
    pub user: UserView,
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use; exchange at `/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Issues a new access token and a refresh token in `family` (a new family for a new login).
pub async fn issue(
    state: &AppState,
    user: &db::users::User,
    family: Option<Uuid>,
) -> ApiResult<SessionResponse> {
    let access_token = state.jwt.issue_access(user.id, user.token_version)?;
    let (refresh_token, hash) = tokens::new_refresh_token();
    let family = family.unwrap_or_else(Uuid::now_v7);
    db::refresh_tokens::insert(
        &state.pool,
        user.id,
        family,
        &hash,
        tokens::refresh_expiry(&state.jwt),
    )
    .await?;
    Ok(SessionResponse {
        user: user.into(),
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.jwt.access_ttl.as_secs(),
    })
}
