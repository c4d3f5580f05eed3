//! `/account`: the account's state and the "Close account" form (password confirmation,
//! CSRF-protected). Closing ends this session too, so the answer is a page for a logged-out
//! person saying what happens next.

use crate::auth::password;
use crate::error::ApiError;
use crate::portal::csrf::CsrfForm;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, format, session::PortalUser};
use crate::routes::auth::account::AccountView;
use crate::state::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    /// Under the heading while the account is open (a closing one's card says the same).
    summary: String,
    /// The account is closing: no form, what happens next instead.
    closing: bool,
    erase_after: String,
    retention: String,
    error: Option<String>,
}

fn page(
    state: &AppState,
    user: &PortalUser,
    account: &AccountView,
    error: Option<String>,
) -> AccountPage {
    let closing = account.status != "active";
    let days = state.config.workflows.account_retention.as_secs() / 86_400;
    AccountPage {
        chrome: Chrome {
            title: "Account".into(),
            // A closing account's session has ended: the page is a logged-out one.
            email: (!closing).then(|| user.user.email.clone()),
            active: "account",
            csrf: csrf::token(state, &user.browser),
        },
        summary: account.summary(),
        closing,
        erase_after: account
            .erase_after
            .map(format::datetime)
            .unwrap_or_else(|| "the retention period".into()),
        retention: if days >= 1 {
            format!("{days} days")
        } else {
            format!(
                "{} seconds",
                state.config.workflows.account_retention.as_secs()
            )
        },
        error,
    }
}

async fn account_of(state: &AppState, user: &PortalUser) -> Result<AccountView, ApiError> {
    db::account_closing::state(&state.pool, user.user.id)
        .await?
        .map(|s| AccountView::from(&s))
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))
}

pub async fn show(State(state): State<AppState>, user: PortalUser) -> Response {
    match account_of(&state, &user).await {
        Ok(a) => page::render(&page(&state, &user, &a, None)),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

impl crate::portal::csrf::WithCsrf for CloseForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn close(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<CloseForm>,
) -> Response {
    let account = match account_of(&state, &user).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let refuse = |status: StatusCode, why: &str| {
        page::render_status(status, &page(&state, &user, &account, Some(why.to_owned())))
    };
    if form.password.is_empty() {
        return refuse(
            StatusCode::FORBIDDEN,
            "Enter your password to close the account. Nothing was changed.",
        );
    }
    if let Err(secs) = state.throttle.check(&user.user.email, peer.ip()) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many attempts. Try again in {secs} seconds. Nothing was changed."),
        );
    }
    match password::verify(form.password, Some(user.user.password_hash.clone())).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "That password is wrong. Nothing was changed.",
            )
        }
        Err(e) => return ApiError::Internal(e).into_response(),
    }
    match crate::routes::auth::close::close_account(&state, user.user.id, "portal").await {
        Ok(closed) => {
            let cookie = match crate::portal::session::end(&state, &user).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
            let mut res =
                page::render_status(StatusCode::ACCEPTED, &page(&state, &user, &closed, None));
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res
        }
        Err(e @ ApiError::Unavailable(_)) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{e}. Nothing was changed."),
        ),
        Err(e) => e.into_response(),
    }
}
