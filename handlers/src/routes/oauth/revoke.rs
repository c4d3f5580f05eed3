//! `POST /oauth/revoke` (RFC 7009): ends the whole grant of an access or refresh token.
//! Answers 200 for unknown tokens too, so it tells nothing about which tokens exist.

use crate::oauth::error::{no_store, OAuthError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

/// The form fields of a revocation request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevokeRequest {
    token: String,
    /// `access_token` or `refresh_token` (optional; either token ends the grant).
    token_type_hint: Option<String>,
    client_id: Option<String>,
}

#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or the token was unknown"),
              (status = 400, description = "No token given")))]
pub async fn revoke(State(state): State<AppState>, body: String) -> Response {
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return OAuthError::invalid_request("token is required").into_response();
    };
    match crate::oauth::tokens::revoke(&state.pool, &token).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}
