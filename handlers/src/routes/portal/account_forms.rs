//! The sign-up and log-in pages share their form fields and what `next` means: a local path
//! to continue to, usually the connect flow's authorization request.

use crate::oauth::authorize_request::from_path;
use crate::oauth::client_id::ClientId;
use crate::portal::page::Chrome;
use crate::portal::session::safe_next;
use askama::Template;

#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    pub next: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// The client a sign-up consents to by itself: one whose redirect URI is on this machine.
pub fn auto_approvable(next: &str) -> Option<String> {
    let params = from_path(next)?;
    let uri = crate::oauth::redirect::RedirectUri::parse(params.redirect_uri.as_deref()?).ok()?;
    uri.is_loopback().then(|| connecting(next)).flatten()
}

/// The client being connected, when `next` is an authorization request.
pub fn connecting(next: &str) -> Option<String> {
    from_path(next)
        .and_then(|p| p.client_id)
        .and_then(|c| ClientId::parse(&c))
        .map(|c| c.as_str().to_owned())
}

/// `next` if it is a safe local path, else the dashboard.
pub fn next_or_dashboard(next: Option<&str>) -> String {
    safe_next(next.filter(|n| !n.is_empty())).unwrap_or_else(|| "/dashboard".into())
}

/// `?next=…` to carry the destination from one of the two pages to the other.
pub fn next_query(next: &str) -> String {
    if next == "/dashboard" {
        return String::new();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("?next={encoded}")
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub chrome: Chrome,
    pub connecting: Option<String>,
    pub error: Option<String>,
    pub name: String,
    pub email: String,
    pub next: String,
    pub next_query: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub connecting: Option<String>,
    pub error: Option<String>,
    pub email: String,
    pub next: String,
    pub next_query: String,
}

impl crate::portal::csrf::WithCsrf for AccountForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
