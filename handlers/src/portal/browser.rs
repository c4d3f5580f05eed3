//! Every portal response: the browser gets a random id cookie (CSRF tokens are bound to it,
//! so forms work before login too) and the security headers of a page that handles payments.

use super::cookies;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The browser's id, from its cookie or minted for this request.
#[derive(Clone)]
pub struct BrowserId(pub String);

const YEAR_SECS: i64 = 365 * 24 * 3600;

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let existing = cookies::get(req.headers(), cookies::BROWSER)
        .filter(|v| cookies::well_formed(v))
        .map(str::to_owned);
    let fresh = existing.is_none();
    let id = existing.unwrap_or_else(cookies::random_value);
    req.extensions_mut().insert(BrowserId(id.clone()));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if fresh {
        h.append(
            header::SET_COOKIE,
            cookies::set(cookies::BROWSER, &id, YEAR_SECS, secure(&state)),
        );
    }
    // No inline script or style, no framing, no third-party anything; form-action is left
    // open because consent and checkout forms end in redirects to Dex and to Stripe.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Authorization URLs and codes must not leak to other sites through Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

pub fn secure(state: &AppState) -> bool {
    state.config.public_base_url.starts_with("https://")
}
