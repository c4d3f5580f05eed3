//! Telnyx API v2 emulator under `/telnyx`: available numbers, number orders, phone numbers
//! and their messaging settings, messaging profiles, and messages. An SMS to a number of the
//! account arrives as a signed `message.received` webhook at the number's messaging-profile
//! webhook URL, or at `{SANDBOX_WEBHOOK_BASE}/webhooks/telnyx` when the profile has none.
//! Every call needs `Authorization: Bearer {TELNYX_API_KEY}`.

mod messaging;
mod numbers;

use crate::webhooks::WebhookSender;
use crate::{lock, now_rfc3339, Shared};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use config::Config;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

pub(crate) struct Telnyx {
    api_key: String,
    webhooks: WebhookSender,
    state: Mutex<State_>,
}

#[derive(Default)]
struct State_ {
    /// Phone numbers on the account, by id.
    numbers: BTreeMap<String, Number>,
    orders: HashMap<String, Value>,
    profiles: BTreeMap<String, Profile>,
    /// Number orders still to fail with "no longer available".
    unavailable_orders: u32,
}

#[derive(Clone)]
struct Number {
    id: String,
    phone_number: String,
    messaging_profile_id: Option<String>,
    customer_reference: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Clone)]
struct Profile {
    id: String,
    name: String,
    webhook_url: Option<String>,
    webhook_failover_url: Option<String>,
    created_at: String,
    updated_at: String,
}

/// `{"errors": [{"code", "title", "detail"}]}`.
pub(crate) fn error_body(code: &str, title: &str, detail: &str) -> Value {
    json!({ "errors": [{ "code": code, "title": title, "detail": detail }] })
}

pub(crate) fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (status, Json(error_body(code, title, detail))).into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "10005",
        "Resource not found",
        "The requested resource or URL could not be found.",
    )
}

fn invalid(pointer: &str, detail: &str) -> Response {
    let body = json!({ "errors": [{
        "code": "10015", "title": "Invalid value", "detail": detail,
        "source": { "pointer": pointer },
    }]});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn router(sandbox: Shared) -> Router {
    Router::new()
        .route("/v2/available_phone_numbers", get(numbers::search))
        .route(
            "/v2/number_orders",
            post(numbers::create_order).get(numbers::list_orders),
        )
        .route("/v2/number_orders/{id}", get(numbers::get_order))
        .route("/v2/phone_numbers", get(numbers::list))
        .route(
            "/v2/phone_numbers/{id}",
            get(numbers::get).delete(numbers::release),
        )
        .route(
            "/v2/phone_numbers/{id}/messaging",
            patch(numbers::update_messaging).get(numbers::get_messaging),
        )
        .route("/v2/messaging_profiles", post(messaging::create_profile))
        .route(
            "/v2/messaging_profiles/{id}",
            get(messaging::get_profile).patch(messaging::update_profile),
        )
        .route("/v2/messages", post(messaging::send))
        .route_layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            authenticate,
        ))
        .with_state(sandbox)
}

/// Telnyx API keys go in `Authorization: Bearer`.
async fn authenticate(State(sb): State<Shared>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok =
        !presented.is_empty() && (sb.telnyx.api_key.is_empty() || presented == sb.telnyx.api_key);
    if ok {
        next.run(req).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The required authentication headers were either invalid or not included in the request.",
        )
    }
}

impl Telnyx {
    pub fn new(config: &Config, webhooks: WebhookSender) -> Self {
        Self {
            api_key: config.telnyx.api_key.expose().to_owned(),
            webhooks,
            state: Mutex::default(),
        }
    }

    pub fn reset(&self) {
        *lock(&self.state) = State_::default();
    }

    pub fn fail_next_orders(&self, count: u32) {
        lock(&self.state).unavailable_orders = count;
    }

    pub fn numbers_snapshot(&self) -> Vec<Value> {
        lock(&self.state)
            .numbers
            .values()
            .map(|n| {
                json!({
                    "id": n.id,
                    "phone_number": n.phone_number,
                    "status": "active",
                    "owner": n.customer_reference,
                    "messaging_profile_id": n.messaging_profile_id,
                    "created_at": n.created_at,
                })
            })
            .collect()
    }

    /// Whether the account owns `phone_number`.
    pub fn owns(&self, phone_number: &str) -> bool {
        lock(&self.state)
            .numbers
            .values()
            .any(|n| n.phone_number == phone_number)
    }

    /// An SMS from `from` to the account's number `to`: a signed `message.received` webhook.
    /// False when the account does not own `to` (the message goes nowhere).
    pub fn deliver_inbound(&self, from: &str, to: &str, text: &str) -> bool {
        let (profile_id, url) = {
            let state = lock(&self.state);
            let Some(number) = state.numbers.values().find(|n| n.phone_number == to) else {
                return false;
            };
            let profile_id = number.messaging_profile_id.clone();
            let url = profile_id
                .as_ref()
                .and_then(|p| state.profiles.get(p))
                .and_then(|p| p.webhook_url.clone())
                .unwrap_or_else(|| format!("{}/webhooks/telnyx", self.webhooks.base));
            (profile_id, url)
        };
        let now = now_rfc3339();
        let event = json!({
            "data": {
                "record_type": "event",
                "id": uuid::Uuid::new_v4().to_string(),
                "event_type": "message.received",
                "occurred_at": now,
                "payload": {
                    "record_type": "message",
                    "direction": "inbound",
                    "id": uuid::Uuid::new_v4().to_string(),
                    "type": "SMS",
                    "messaging_profile_id": profile_id,
                    "from": { "phone_number": from, "carrier": "SANDBOX WIRELESS", "line_type": "Wireless" },
                    "to": [{ "phone_number": to, "status": "webhook_delivered", "carrier": "TELNYX LLC", "line_type": "VoIP" }],
                    "cc": [],
                    "text": text,
                    "media": [],
                    "encoding": "GSM-7",
                    "parts": 1,
                    "tags": [],
                    "received_at": now,
                    "sent_at": null,
                    "completed_at": null,
                    "valid_until": null,
                    "errors": [],
                    "webhook_url": url,
                    "webhook_failover_url": null,
                },
            },
            "meta": { "attempt": 1, "delivered_to": url },
        });
        self.webhooks.send_telnyx(url, event);
        true
    }
}
