//! `/signup`: create an account in the browser. Inside the connect flow, the new account's
//! session carries the consent for that instance (once, and only for a loopback redirect URI:
//! a link could name any https site), as the combined flow promises.

use super::account_forms::{
    auto_approvable, connecting, next_or_dashboard, next_query, AccountForm, NextQuery, SignupPage,
};
use crate::auth::password;
use crate::portal::browser::BrowserId;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session};
use crate::state::AppState;
use axum::extract::{Extension, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use uuid::Uuid;

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
    Form(form): Form<AccountForm>,
) -> Response {
    if !csrf::valid(&state, &browser, &form.csrf) {
        return page::csrf_refused(csrf::token(&state, &browser));
    }
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
    let email = match domain::Email::parse(&form.email) {
        Ok(e) => e,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("Email: {}", e.0)),
    };
    let password = match domain::Password::parse(&form.password) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("Password: {}", e.0)),
    };
    let name = match Some(form.name.trim())
        .filter(|n| !n.is_empty())
        .map(domain::UserName::parse)
        .transpose()
    {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("Name: {}", e.0)),
    };
    let hash = match password::hash(password).await {
        Ok(h) => h,
        Err(e) => return crate::error::ApiError::Internal(e).into_response(),
    };
    let user = match db::users::insert(
        &state.pool,
        Uuid::now_v7(),
        &email,
        &hash,
        name.as_ref().map(|n| n.as_str()),
    )
    .await
    {
        Ok(u) => u,
        Err(e) if db::is_unique_violation(&e) => {
            return refuse(
                StatusCode::CONFLICT,
                "An account with this email already exists. Log in instead.".into(),
            )
        }
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    if let Err(e) = db::audit::record(
        &state.pool,
        "user",
        Some(user.id),
        "user.registered",
        serde_json::json!({"via": "portal"}),
    )
    .await
    {
        return crate::error::ApiError::from(e).into_response();
    }
    tracing::info!(user_id = %user.id, "user registered in the portal");
    let auto_approve = auto_approvable(&next);
    match session::start(&state, user.id, auto_approve.as_deref()).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
        Err(e) => e.into_response(),
    }
}
