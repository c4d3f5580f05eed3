//! `AuthUser`: the caller, authenticated by an API key (`pk_live_…`), a connected instance's
//! OAuth access token (`pdx_at_…`) or a session access token.
//! `AdminAuth`: the operator, authenticated by `ADMIN_TOKEN`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use subtle::ConstantTimeEq;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Session,
    ApiKey {
        key_id: Uuid,
    },
    /// A connected Dex instance's access token, under this grant.
    OAuth {
        grant_id: Uuid,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub credential: Credential,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    Ok(token)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if token.starts_with(domain::API_KEY_PREFIX) {
            return api_key(token, state).await;
        }
        if token.starts_with(domain::ACCESS_TOKEN_PREFIX) {
            return access_token(token, state).await;
        }
        let invalid = || ApiError::Unauthorized("invalid or expired token".into());
        let claims = state.jwt.verify_access(token).ok_or_else(invalid)?;
        let user = db::users::find(&state.pool, claims.sub)
            .await?
            .ok_or_else(invalid)?;
        if user.token_version != claims.ver {
            return Err(ApiError::Unauthorized(
                "this session has ended; log in again".into(),
            ));
        }
        Ok(Self {
            user_id: user.id,
            credential: Credential::Session,
        })
    }
}

async fn api_key(token: &str, state: &AppState) -> Result<AuthUser, ApiError> {
    let invalid = || ApiError::Unauthorized("invalid or revoked API key".into());
    let secret = domain::ApiKeySecret::parse(token).ok_or_else(invalid)?;
    let hash = secret.hash();
    let owner = db::api_keys::find_active_by_hash(&state.pool, &hash.0)
        .await?
        .ok_or_else(invalid)?;
    if !hash.matches(&owner.key_hash) {
        return Err(invalid());
    }
    state.key_usage.touch(owner.id);
    Ok(AuthUser {
        user_id: owner.user_id,
        credential: Credential::ApiKey { key_id: owner.id },
    })
}

async fn access_token(token: &str, state: &AppState) -> Result<AuthUser, ApiError> {
    let invalid = || {
        ApiError::Unauthorized(
            "invalid, expired or revoked access token; refresh it or connect Dex again".into(),
        )
    };
    let hash = domain::bearer_hash(token).ok_or_else(invalid)?;
    let (user_id, grant_id) = db::oauth::find_access(&state.pool, &hash.0)
        .await?
        .ok_or_else(invalid)?;
    state.key_usage.touch_grant(grant_id);
    Ok(AuthUser {
        user_id,
        credential: Credential::OAuth { grant_id },
    })
}

/// The operator. A missing token is 401; a token that is not the admin token is 403.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let expected = state.config.secrets.admin_token.expose().as_bytes();
        if expected.is_empty() || !bool::from(token.as_bytes().ct_eq(expected)) {
            return Err(ApiError::Forbidden("admin token required".into()));
        }
        Ok(Self)
    }
}

/// The account holder themself (session or API key), not a connected instance: managing keys,
/// billing and sessions is beyond what an instance was granted, and a key it could mint would
/// outlive its Disconnect.
pub struct AccountOwner(pub AuthUser);

impl FromRequestParts<AppState> for AccountOwner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        if let Credential::OAuth { .. } = auth.credential {
            return Err(ApiError::Forbidden(
                "a connected instance cannot manage keys, billing or sessions; do it in the portal"
                    .into(),
            ));
        }
        Ok(Self(auth))
    }
}
