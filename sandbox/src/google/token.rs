//! `POST /google/token`: the OAuth 2.0 JWT-bearer grant (RFC 7523) as Google runs it for
//! service accounts. The assertion must be RS256-signed by a known service account's key,
//! addressed to a token URL (`aud`), unexpired and at most an hour long; `sub` names the user
//! to impersonate (the admin, or an existing, unsuspended user). Also the bearer check the
//! APIs share.

use super::{error, Google, State_};
use crate::{lock, Shared};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What an access token allows.
#[derive(Clone)]
pub(crate) struct Grant {
    /// The impersonated user, lower case.
    pub sub: String,
    pub scopes: Vec<String>,
    expires: Instant,
}

impl Grant {
    pub fn has_any_scope(&self, wanted: &[&str]) -> bool {
        self.scopes.iter().any(|s| wanted.contains(&s.as_str()))
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// The service accounts whose assertions the sandbox accepts: the fixed dev account.
fn known_key(client_email: &str) -> Option<DecodingKey> {
    (client_email == config::DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL)
        .then(|| DecodingKey::from_rsa_pem(config::DEV_GOOGLE_PUBLIC_KEY_PEM.as_bytes()).ok())
        .flatten()
}

pub(super) async fn exchange(
    State(sb): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error("unsupported_grant_type", "Invalid grant_type: ");
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    // Read `iss` unverified only to pick the key; everything is verified below.
    let mut peek = Validation::new(Algorithm::RS256);
    peek.insecure_disable_signature_validation();
    peek.validate_aud = false;
    peek.validate_exp = false;
    let Ok(unverified) =
        jsonwebtoken::decode::<Claims>(assertion, &DecodingKey::from_secret(&[]), &peek)
    else {
        return oauth_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        );
    };
    let Some(key) = known_key(&unverified.claims.iss) else {
        return oauth_error("invalid_grant", "Invalid JWT Signature.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.leeway = 60;
    let claims = match jsonwebtoken::decode::<Claims>(assertion, &key, &validation) {
        Ok(d) => d.claims,
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            return oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
        }
        Err(_) => return oauth_error("invalid_grant", "Invalid JWT Signature."),
    };
    if !claims.aud.ends_with("/token") {
        return oauth_error("invalid_grant", "Invalid JWT: Failed audience check.");
    }
    if claims.exp.saturating_sub(claims.iat) > TOKEN_LIFETIME.as_secs() {
        return oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    }
    let scopes: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return oauth_error(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let sub = claims
        .sub
        .unwrap_or_else(|| claims.iss.clone())
        .to_ascii_lowercase();
    let mut state = lock(&sb.google.state);
    if !sb.google.is_admin_in(&state, &sub) {
        // Guessed: Google's wording for a suspended user may differ; both refuse the grant.
        match state.users.get(&sub) {
            None => return oauth_error("invalid_grant", "Invalid email or User ID"),
            Some(u) if u.suspended => {
                return oauth_error("invalid_grant", "Account has been suspended")
            }
            Some(_) => {}
        }
    }
    let token = format!("ya29.sandbox-{}", uuid::Uuid::new_v4().simple());
    state.tokens.insert(
        token.clone(),
        Grant {
            sub,
            scopes,
            expires: Instant::now() + TOKEN_LIFETIME,
        },
    );
    Json(json!({
        "access_token": token,
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

impl Google {
    pub(super) fn is_admin(&self, sub: &str) -> bool {
        self.is_admin_in(&lock(&self.state), sub)
    }

    /// With no admin configured, anyone who is not a Workspace user counts as the admin.
    fn is_admin_in(&self, state: &State_, sub: &str) -> bool {
        if self.admin_email.is_empty() {
            !state.users.contains_key(sub)
        } else {
            sub == self.admin_email
        }
    }

    /// The grant behind the request's bearer token if it carries one of `scopes`.
    pub(super) fn authorize(
        &self,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<Grant, Response> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let grant = lock(&self.state).tokens.get(token).cloned();
        let Some(grant) = grant.filter(|g| g.expires > Instant::now()) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            ));
        };
        if !grant.has_any_scope(scopes) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            ));
        }
        Ok(grant)
    }

    /// The mailbox/calendar owner a user-scoped call names (`me`, `primary` or an address),
    /// which must be the impersonated user.
    pub(super) fn owner_of(&self, grant: &Grant, named: &str) -> Result<String, Response> {
        let named = named.to_ascii_lowercase();
        let user = if named == "me" || named == "primary" {
            grant.sub.clone()
        } else {
            named
        };
        if user != grant.sub {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("Delegation denied for {}", grant.sub),
            ));
        }
        if !lock(&self.state).users.contains_key(&user) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "failedPrecondition",
                "Mail service not enabled",
            ));
        }
        Ok(user)
    }
}
