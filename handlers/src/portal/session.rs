//! The logged-in person: a `pdx_session` cookie whose hash names a `portal_sessions` row.
//! `PortalUser` sends anyone without one to /login, remembering where they were going.

use super::browser::BrowserId;
use super::cookies;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::{request::Parts, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

const SESSION_SECS: i64 = 30 * 24 * 3600;

pub struct PortalUser {
    pub user: db::users::User,
    pub session_hash: [u8; 32],
    pub auto_approve_client: Option<String>,
    pub browser: BrowserId,
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Not logged in (or a broken request): where to go instead.
pub enum NeedsLogin {
    Redirect(String),
    Error(ApiError),
}

impl IntoResponse for NeedsLogin {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect(to) => Redirect::to(&to).into_response(),
            Self::Error(e) => e.into_response(),
        }
    }
}

async fn find(parts: &Parts, state: &AppState) -> Result<Option<PortalUser>, ApiError> {
    let Some(browser) = parts.extensions.get::<BrowserId>().cloned() else {
        return Ok(None);
    };
    let Some(value) =
        cookies::get(&parts.headers, cookies::SESSION).filter(|v| cookies::well_formed(v))
    else {
        return Ok(None);
    };
    let session_hash = hash(value);
    let Some(session) = db::portal_sessions::find(&state.pool, &session_hash).await? else {
        return Ok(None);
    };
    Ok(Some(PortalUser {
        user: session.user,
        session_hash,
        auto_approve_client: session.auto_approve_client,
        browser,
    }))
}

impl FromRequestParts<AppState> for PortalUser {
    type Rejection = NeedsLogin;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NeedsLogin> {
        match find(parts, state).await {
            Ok(Some(u)) => Ok(u),
            Ok(None) => {
                let here = if parts.method == axum::http::Method::GET {
                    parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| "/dashboard".into())
                } else {
                    section_of(parts.uri.path())
                };
                let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err(NeedsLogin::Redirect(format!("/login?next={next}")))
            }
            Err(e) => Err(NeedsLogin::Error(e)),
        }
    }
}

impl OptionalFromRequestParts<AppState> for PortalUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        find(parts, state).await
    }
}

/// The page a form's action belongs to (`/keys/{id}/revoke` → `/keys`): after logging in,
/// the browser can only GET `next`, and a form's action answers POST alone.
fn section_of(path: &str) -> String {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "billing" | "keys" | "instances" | "activity" | "account" => format!("/{first}"),
        _ => "/dashboard".into(),
    }
}

/// Starts a session for `user_id`; the returned value goes in a `Set-Cookie` header.
pub async fn start(
    state: &AppState,
    user_id: uuid::Uuid,
    auto_approve_client: Option<&str>,
) -> Result<HeaderValue, ApiError> {
    let value = cookies::random_value();
    db::portal_sessions::insert(
        &state.pool,
        &hash(&value),
        user_id,
        auto_approve_client,
        chrono::Utc::now() + chrono::Duration::seconds(SESSION_SECS),
    )
    .await?;
    Ok(cookies::set(
        cookies::SESSION,
        &value,
        SESSION_SECS,
        super::browser::secure(state),
    ))
}

/// Ends the session server-side, so the cookie is worthless even if it was copied.
pub async fn end(state: &AppState, user: &PortalUser) -> Result<HeaderValue, ApiError> {
    db::portal_sessions::delete(&state.pool, &user.session_hash).await?;
    Ok(cookies::clear(
        cookies::SESSION,
        super::browser::secure(state),
    ))
}

/// `next` targets are local paths only: never another site (`//host`, `\\host`, schemes).
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?.trim();
    let local = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/\\")
        && !n.contains(['\r', '\n', '\\']);
    local.then(|| n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{safe_next, section_of};

    #[test]
    fn a_form_action_continues_at_its_page() {
        assert_eq!(section_of("/keys/0190/revoke"), "/keys");
        assert_eq!(section_of("/billing/cap"), "/billing");
        assert_eq!(section_of("/connect/retry"), "/dashboard");
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/dashboard")).as_deref(), Some("/dashboard"));
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "javascript:x",
            "/a\r\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
    }
}
