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
