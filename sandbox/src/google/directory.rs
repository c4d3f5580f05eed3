//! Admin SDK Directory API users: insert, list, get, update/patch (patch semantics), delete.
//! Callers must impersonate the admin with the `admin.directory.user` scope. Deleting a user
//! deletes its mailbox, calendar and tokens.

use super::{error, Google};
use crate::{lock, now_rfc3339, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user";
const READONLY: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
const OWNER_TYPE: &str = "poindexter_user";

#[derive(Clone)]
pub(crate) struct User {
    pub id: String,
    pub primary_email: String,
    given_name: String,
    family_name: String,
    pub suspended: bool,
    pub creation_time: String,
    external_ids: Value,
}

impl User {
    /// The owner recorded in `externalIds` (`customType` `poindexter_user`).
    pub fn owner(&self) -> Option<String> {
        self.external_ids.as_array()?.iter().find_map(|e| {
            (e["customType"] == OWNER_TYPE).then(|| e["value"].as_str().map(str::to_owned))?
        })
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": format!("\"{}\"", self.id),
            "primaryEmail": self.primary_email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": format!("{} {}", self.given_name, self.family_name),
            },
            "isAdmin": false,
            "isDelegatedAdmin": false,
            "lastLoginTime": "1970-01-01T00:00:00.000Z",
            "creationTime": self.creation_time,
            "agreedToTerms": false,
            "suspended": self.suspended,
            "archived": false,
            "changePasswordAtNextLogin": false,
            "ipWhitelisted": false,
            "emails": [{ "address": self.primary_email, "primary": true }],
            "customerId": "C0sandbox",
            "orgUnitPath": "/",
            "isMailboxSetup": true,
            "includeInGlobalAddressList": true,
        });
        if self.suspended {
            v["suspensionReason"] = json!("ADMIN");
        }
        if !self.external_ids.is_null() {
            v["externalIds"] = self.external_ids.clone();
        }
        v
    }
}

impl Google {
    fn authorize_admin(&self, headers: &HeaderMap, scopes: &[&str]) -> Result<(), Response> {
        let grant = self.authorize(headers, scopes)?;
        if self.is_admin(&grant.sub) {
            Ok(())
        } else {
            Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not Authorized to access this resource/api",
            ))
        }
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        "Resource Not Found: userKey",
    )
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

/// A user by primary email or by id.
fn find_key(users: &std::collections::BTreeMap<String, User>, key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase();
    if users.contains_key(&key) {
        return Some(key);
    }
    users
        .iter()
        .find(|(_, u)| u.id == key)
        .map(|(k, _)| k.clone())
}

pub(super) async fn insert(
    State(sb): State<Shared>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    if let Err(r) = sb.google.authorize_admin(&headers, &[SCOPE]) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return invalid("Invalid JSON payload received.");
    };
    let email = v["primaryEmail"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let given = v["name"]["givenName"].as_str().unwrap_or("").trim();
    let family = v["name"]["familyName"].as_str().unwrap_or("").trim();
    let password = v["password"].as_str().unwrap_or("");
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("Invalid Input: primary_user_email");
    };
    if local.is_empty() || domain != sb.google.domain {
        // Guessed message; Google refuses addresses outside the customer's domains.
        return invalid("Invalid Input: primary_user_email");
    }
    if given.is_empty() {
        return invalid("Invalid Given/Family Name: GivenName");
    }
    if family.is_empty() {
        return invalid("Invalid Given/Family Name: FamilyName");
    }
    if !(8..=100).contains(&password.chars().count()) {
        return invalid("Invalid Password");
    }
    let mut state = lock(&sb.google.state);
    if state.users.contains_key(&email) {
        return error(StatusCode::CONFLICT, "duplicate", "Entity already exists.");
    }
    let user = User {
        id: format!("1{:020}", rand::random::<u64>()),
        primary_email: email.clone(),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        suspended: v["suspended"].as_bool().unwrap_or(false),
        creation_time: now_rfc3339(),
        external_ids: v["externalIds"].clone(),
    };
    let body = user.to_json();
    state.users.insert(email.clone(), user);
    state.mailboxes.insert(email.clone(), Vec::new());
    state.calendars.insert(email, Default::default());
    (StatusCode::OK, Json(body)).into_response()
}

pub(super) async fn list(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = sb.google.authorize_admin(&headers, &[SCOPE, READONLY]) {
        return r;
    }
    if !q.contains_key("domain") && !q.contains_key("customer") {
        return invalid("Bad Request");
    }
    let state = lock(&sb.google.state);
    let users: Vec<Value> = state.users.values().map(User::to_json).collect();
    Json(json!({ "kind": "admin#directory#users", "users": users })).into_response()
}

pub(super) async fn get(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if let Err(r) = sb.google.authorize_admin(&headers, &[SCOPE, READONLY]) {
        return r;
    }
    let state = lock(&sb.google.state);
    match find_key(&state.users, &key).and_then(|k| state.users.get(&k)) {
        Some(u) => Json(u.to_json()).into_response(),
        None => not_found(),
    }
}

/// `users.update` and `users.patch`: only the fields present change.
pub(super) async fn update(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: bytes::Bytes,
) -> Response {
    if let Err(r) = sb.google.authorize_admin(&headers, &[SCOPE]) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return invalid("Invalid JSON payload received.");
    };
    let mut state = lock(&sb.google.state);
    let Some(k) = find_key(&state.users, &key) else {
        return not_found();
    };
    if let Some(p) = v["password"].as_str() {
        if !(8..=100).contains(&p.chars().count()) {
            return invalid("Invalid Password");
        }
    }
    let suspended_now = v["suspended"].as_bool();
    let Some(user) = state.users.get_mut(&k) else {
        return not_found();
    };
    if let Some(s) = suspended_now {
        user.suspended = s;
    }
    if let Some(g) = v["name"]["givenName"].as_str() {
        user.given_name = g.to_owned();
    }
    if let Some(f) = v["name"]["familyName"].as_str() {
        user.family_name = f.to_owned();
    }
    if !v["externalIds"].is_null() {
        user.external_ids = v["externalIds"].clone();
    }
    let body = user.to_json();
    if suspended_now == Some(true) {
        // A suspended user's sessions end: its tokens stop working.
        state.tokens.retain(|_, g| g.sub != k);
    }
    Json(body).into_response()
}

pub(super) async fn delete(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if let Err(r) = sb.google.authorize_admin(&headers, &[SCOPE]) {
        return r;
    }
    let mut state = lock(&sb.google.state);
    let Some(k) = find_key(&state.users, &key) else {
        return not_found();
    };
    state.users.remove(&k);
    state.mailboxes.remove(&k);
    state.calendars.remove(&k);
    state.tokens.retain(|_, g| g.sub != k);
    StatusCode::NO_CONTENT.into_response()
}
