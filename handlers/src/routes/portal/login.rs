//! `/login`: throttled per account and per address like the API's login; the answer never
//! says whether the email exists.

use super::account_forms::{
    connecting, next_or_dashboard, next_query, AccountForm, LoginPage, NextQuery,
};
use crate::auth::password;
use crate::portal::browser::BrowserId;
use crate::portal::csrf::CsrfForm;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;

fn page(
    state: &AppState,
    browser: &BrowserId,
    next: String,
    error: Option<String>,
    email: String,
) -> LoginPage {
    LoginPage {
        chrome: Chrome {
            title: "Log in".into(),
            email: None,
            active: "",
            csrf: csrf::token(state, browser),
        },
        connecting: connecting(&next),
        error,
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
    page::render(&page(&state, &browser, next, None, String::new()))
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Response {
    let next = next_or_dashboard(Some(&form.next));
    let refuse = |status: StatusCode, msg: &str| {
        page::render_status(
            status,
            &page(
                &state,
                &browser,
                next.clone(),
                Some(msg.to_owned()),
                form.email.clone(),
            ),
        )
    };
    let Ok(email) = domain::Email::parse(&form.email) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Enter the email address of your account.",
        );
    };
    if form.password.is_empty() || form.password.len() > 1024 {
        return refuse(StatusCode::BAD_REQUEST, "Enter your password.");
    }
    if let Err(secs) = state.throttle.check(email.as_str(), peer.ip()) {
        let mut res = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many login attempts. Try again in {secs} seconds."),
        );
        if let Ok(v) = secs.to_string().parse() {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let user = match db::users::find_by_email(&state.pool, &email).await {
        Ok(u) => u,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let ok = match password::verify(
        form.password.clone(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await
    {
        Ok(ok) => ok,
        Err(e) => return crate::error::ApiError::Internal(e).into_response(),
    };
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!("portal login refused");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an account.",
        );
    };
    if let Err(e) = crate::routes::auth::account::refuse_unless_active(&state, user.id).await {
        return match e {
            crate::error::ApiError::Forbidden(why) => refuse(StatusCode::FORBIDDEN, &why),
            e => e.into_response(),
        };
    }
    match session::start(&state, user.id, None).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
        Err(e) => e.into_response(),
    }
}
