//! Google Workspace emulator under `/google`: the OAuth token endpoint for service accounts
//! (`/token`), Admin SDK Directory users, Gmail messages and Calendar events. Mail between two
//! users of the sandbox domain arrives in the recipient's inbox; events persist per user.
//! Every API call needs a bearer token from `/token` whose impersonated user (`sub`) may make
//! it: the admin for Directory, the mailbox owner for Gmail and Calendar.

mod calendar;
mod directory;
mod gmail;
mod mail;
mod token;

use crate::{lock, Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use config::Config;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

pub(crate) struct Google {
    domain: String,
    /// The super admin Directory calls must impersonate (any admin when unset).
    admin_email: String,
    state: Mutex<State_>,
}

#[derive(Default)]
struct State_ {
    /// By lower-case primary email.
    users: BTreeMap<String, directory::User>,
    mailboxes: HashMap<String, Vec<gmail::Stored>>,
    calendars: HashMap<String, BTreeMap<String, Value>>,
    tokens: HashMap<String, token::Grant>,
}

/// Google's JSON error body.
pub(crate) fn error_body(status: StatusCode, reason: &str, message: &str) -> Value {
    let code = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({ "error": {
        "code": status.as_u16(),
        "message": message,
        "errors": [{ "message": message, "domain": "global", "reason": reason }],
        "status": code,
    }})
}

pub(crate) fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    (status, Json(error_body(status, reason, message))).into_response()
}

pub(crate) fn router(sandbox: Shared) -> Router {
    let users = "/admin/directory/v1/users";
    let messages = "/gmail/v1/users/{user}/messages";
    let events = "/calendar/v3/calendars/{calendar}/events";
    Router::new()
        .route("/token", post(token::exchange))
        .route(users, post(directory::insert).get(directory::list))
        .route(
            &format!("{users}/{{key}}"),
            get(directory::get)
                .put(directory::update)
                .patch(directory::update)
                .delete(directory::delete),
        )
        .route(messages, get(gmail::list))
        .route(&format!("{messages}/send"), post(gmail::send))
        .route(
            &format!("{messages}/{{id}}"),
            get(gmail::get).delete(gmail::delete),
        )
        .route(&format!("{messages}/{{id}}/trash"), post(gmail::trash))
        .route(events, get(calendar::list).post(calendar::insert))
        .route(
            &format!("{events}/{{id}}"),
            get(calendar::get)
                .put(calendar::update)
                .delete(calendar::delete),
        )
        .with_state(sandbox)
}

impl Google {
    pub fn new(config: &Config) -> Self {
        Self {
            domain: config.google.domain.to_ascii_lowercase(),
            admin_email: config.google.admin_email.to_ascii_lowercase(),
            state: Mutex::default(),
        }
    }

    pub fn reset(&self) {
        *lock(&self.state) = State_::default();
    }

    pub fn users_snapshot(&self) -> Vec<Value> {
        lock(&self.state)
            .users
            .values()
            .map(|u| {
                json!({
                    "id": u.id,
                    "email": u.primary_email,
                    "suspended": u.suspended,
                    "owner": u.owner(),
                    "created_at": u.creation_time,
                })
            })
            .collect()
    }
}
