//! `/logout`: ends the session on the server and clears its cookie.

use crate::portal::browser::BrowserId;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

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
    Extension(browser): Extension<BrowserId>,
    user: Option<PortalUser>,
    Form(form): Form<super::csrf_form::CsrfOnly>,
) -> Response {
    if !csrf::valid(&state, &browser, &form.csrf) {
        return page::csrf_refused(csrf::token(&state, &browser));
    }
    let Some(user) = user else {
        return Redirect::to("/login").into_response();
    };
    match crate::portal::session::end(&state, &user).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response(),
        Err(e) => e.into_response(),
    }
}
