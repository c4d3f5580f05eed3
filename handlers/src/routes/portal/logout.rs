//! `/logout`: ends the session on the server and clears its cookie.

use crate::portal::csrf::CsrfForm;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    chrome: Chrome,
}

pub async fn show(State(state): State<AppState>, user: PortalUser) -> Response {
    page::render(&LogoutPage {
        chrome: Chrome {
            title: "Log out".into(),
            email: Some(user.user.email.clone()),
            active: "",
            csrf: csrf::token(&state, &user.browser),
        },
    })
}

pub async fn submit(
    State(state): State<AppState>,
    user: Option<PortalUser>,
    _: CsrfForm<super::csrf_form::CsrfOnly>,
) -> Response {
    let Some(user) = user else {
        return Redirect::to("/login").into_response();
    };
    match crate::portal::session::end(&state, &user).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response(),
        Err(e) => e.into_response(),
    }
}
