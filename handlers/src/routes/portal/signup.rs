//! `/signup`: create an account in the browser. Inside the connect flow, the new account's
//! session carries the consent for that instance (once, and only for a loopback redirect URI:
//! a link could name any https site), as the combined flow promises.

use super::account_forms::{
    auto_approvable, connecting, next_or_dashboard, next_query, AccountForm, NextQuery, SignupPage,
};
use crate::auth::accounts;
use crate::error::ApiError;
use crate::portal::browser::BrowserId;
use crate::portal::csrf::CsrfForm;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session};
use crate::state::AppState;
use axum::extract::{Extension, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

fn page(
    state: &AppState,
    browser: &BrowserId,
    next: String,
    error: Option<String>,
    name: String,
    email: String,
) -> SignupPage {
    SignupPage {
        chrome: Chrome {
            title: "Create your account".into(),
            email: None,
            active: "",
            csrf: csrf::token(state, browser),
        },
        connecting: connecting(&next),
        error,
        name,
        email,
        next_query: next_query(&next),
        next,
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: Option<session::PortalUser>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = next_or_dashboard(q.next.as_deref());
    if user.is_some() {
        return Redirect::to(&next).into_response();
    }
    page::render(&page(
        &state,
        &browser,
        next,
        None,
        String::new(),
        String::new(),
    ))
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Response {
    let next = next_or_dashboard(Some(&form.next));
    let refuse = |status: StatusCode, msg: String| {
        page::render_status(
            status,
            &page(
                &state,
                &browser,
                next.clone(),
                Some(msg),
                form.name.clone(),
                form.email.clone(),
            ),
        )
    };
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    let user = match accounts::create(&state, &form.email, &form.password, name, "portal").await {
        Ok(u) => u,
        Err(ApiError::BadRequest { field, message }) => {
            let field = match field.as_deref() {
                Some("email") => "Email: ",
                Some("password") => "Password: ",
                Some("name") => "Name: ",
                _ => "",
            };
            return refuse(StatusCode::BAD_REQUEST, format!("{field}{message}"));
        }
        Err(ApiError::Conflict(_)) => {
            return refuse(
                StatusCode::CONFLICT,
                "An account with this email already exists. Log in instead.".into(),
            )
        }
        Err(e) => return e.into_response(),
    };
    let auto_approve = auto_approvable(&next);
    match session::start(&state, user.id, auto_approve.as_deref()).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
        Err(e) => e.into_response(),
    }
}
