//! CSRF tokens: an HMAC of the browser's id, so every state-changing form carries a value
//! another site cannot know, before and after login alike.

use super::browser::BrowserId;
use crate::state::AppState;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub fn token(state: &AppState, browser: &BrowserId) -> String {
    let Ok(mut mac) =
        Hmac::<Sha256>::new_from_slice(state.config.secrets.jwt_secret.expose().as_bytes())
    else {
        return String::new();
    };
    mac.update(b"portal-csrf:");
    mac.update(browser.0.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub fn valid(state: &AppState, browser: &BrowserId, presented: &str) -> bool {
    let expected = token(state, browser);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// A form that carries a CSRF token in its `csrf` field.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// A submitted form whose CSRF token is right; otherwise the request ends with a 403 page
/// and the handler (and so any change) never runs.
pub struct CsrfForm<T>(pub T);

impl<T> axum::extract::FromRequest<AppState> for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = axum::response::Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let browser = req.extensions().get::<BrowserId>().cloned();
        let axum::Form(form) = axum::Form::<T>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match browser {
            Some(b) if valid(state, &b, form.csrf()) => Ok(Self(form)),
            Some(b) => Err(super::page::csrf_refused(token(state, &b))),
            None => Err(super::page::csrf_refused(String::new())),
        }
    }
}
