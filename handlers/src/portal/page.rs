//! Rendering: every page shares the chrome (brand, navigation, who is logged in, the logout
//! form's CSRF token); errors become a page, not JSON.

use crate::error::ApiError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What the layout needs on every page.
pub struct Chrome {
    pub title: String,
    /// The logged-in user's email; `None` on the login and sign-up pages.
    pub email: Option<String>,
    /// Which navigation entry is current (`dashboard`, `billing`, ...).
    pub active: &'static str,
    pub csrf: String,
}

impl Chrome {
    pub fn is(&self, tab: &str) -> bool {
        self.active == tab
    }
}

pub fn render(t: &impl Template) -> Response {
    render_status(StatusCode::OK, t)
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::Internal(anyhow::anyhow!("template: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
}

/// A page saying what went wrong, for the person in the browser.
pub fn error(status: StatusCode, heading: &str, message: &str, csrf: String) -> Response {
    render_status(
        status,
        &ErrorPage {
            chrome: Chrome {
                title: heading.to_owned(),
                email: None,
                active: "",
                csrf,
            },
            heading: heading.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// A form whose CSRF token was missing or wrong: 403, and nothing done.
pub fn csrf_refused(csrf: String) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your safety nothing was changed. Go back, reload the page and try again.",
        csrf,
    )
}
