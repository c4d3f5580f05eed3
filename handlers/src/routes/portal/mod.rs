//! The user portal's pages, server-rendered. Every state-changing form carries a CSRF token;
//! every page gets the security headers of `portal::browser`.

mod account;
mod account_forms;
mod activity;
mod billing;
mod connect;
mod csrf_form;
mod dashboard;
mod instances;
mod keys;
mod login;
mod logout;
mod signup;

use crate::portal::{assets, browser};
use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
        .route("/signup", get(signup::show).post(signup::submit))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", get(logout::show).post(logout::submit))
        .route("/connect", get(connect::start))
        .route("/connect/plan", post(connect::choose_plan))
        .route("/connect/status", get(connect::status))
        .route("/connect/retry", post(connect::retry))
        .route("/dashboard", get(dashboard::show))
        .route("/billing", get(billing::show))
        .route("/billing/cap", post(billing::set_cap))
        .route("/billing/manage", post(billing::manage))
        .route("/keys", get(keys::show).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/account", get(account::show))
        .route("/account/close", post(account::close))
        .route("/instances", get(instances::show))
        .route("/instances/{id}/disconnect", post(instances::disconnect))
        .route("/activity", get(activity::show))
        .route("/static/portal.css", get(assets::css))
        .route("/static/portal.js", get(assets::js))
        .layer(axum::middleware::from_fn_with_state(state, browser::layer))
}
