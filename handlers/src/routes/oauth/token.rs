//! `POST /oauth/token` (form-encoded): `authorization_code` with PKCE, or `refresh_token`.

use crate::oauth::error::{no_store, OAuthError};
use crate::oauth::tokens::{self, Exchange, TokenResponse};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use utoipa::ToSchema;

/// The form fields of a token request (RFC 6749 §4.1.3 and §6).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse,
               description = "A new access and refresh token (the refresh token rotates on every use)"),
              (status = 400, description = "RFC 6749 §5.2 error: invalid_request, invalid_grant, unsupported_grant_type")))]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(t) => no_store(Json(t).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &str,
) -> Result<TokenResponse, OAuthError> {
    let form_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::invalid_request(
            "send the request as application/x-www-form-urlencoded",
        ));
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        // RFC 6749 §3.2: parameters must not be included more than once.
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!("{k} is repeated")));
        }
    }
    let field = |name: &str| -> Result<&str, OAuthError> {
        form.get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    };
    match field("grant_type")? {
        "authorization_code" => {
            tokens::exchange(
                &state.pool,
                Exchange {
                    code: field("code")?,
                    redirect_uri: field("redirect_uri")?,
                    client_id: field("client_id")?,
                    code_verifier: field("code_verifier")?,
                },
            )
            .await
        }
        "refresh_token" => {
            let client = form
                .get("client_id")
                .map(String::as_str)
                .filter(|c| !c.is_empty());
            tokens::refresh(
                &state.pool,
                &refresh_key(state),
                field("refresh_token")?,
                client,
            )
            .await
        }
        other => Err(OAuthError::new(
            "unsupported_grant_type",
            format!(
                "grant_type {other:?} is not supported; use authorization_code or refresh_token"
            ),
        )),
    }
}

/// The key successor tokens are derived with: the server's secret, domain-separated.
fn refresh_key(state: &AppState) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!(
        "poindexter-oauth-refresh:{}",
        state.config.secrets.jwt_secret.expose()
    ))
    .to_vec()
}
