//! `/_sandbox/*`: the control surface tests, `poindexter dev` and benchmarks use.
//! - `POST /_sandbox/faults` (201 `{"id"}`), `GET` lists rules with how often each fired,
//!   `DELETE` clears them;
//! - `GET /_sandbox/resources`; `POST /_sandbox/reset`;
//! - `GET` / `PUT /_sandbox/latency` (`{"google": 50, ...}` milliseconds per call);
//! - `PUT /_sandbox/signal/captcha` `{"required": true}`: registrations need a captcha token;
//! - `POST /_sandbox/telnyx/unavailable` `{"count": n}`: the next n number orders fail with
//!   "no longer available";
//! - `POST /_sandbox/telnyx/inbound` `{"from", "to", "text"}`: an SMS from the outside world
//!   to a sandbox number (delivered as a signed `message.received` webhook).
//! - `POST /_sandbox/signal/inbound` `{"from", "to", "text"}`: a Signal message from the outside
//!   world to a registered sandbox account; it waits for a receive (202 `{"timestamp"}`).

use crate::faults::FaultSpec;
use crate::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

pub(crate) fn router(sandbox: Shared) -> Router {
    Router::new()
        .route(
            "/_sandbox/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/_sandbox/resources", get(resources))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/latency", get(get_latency).put(put_latency))
        .route("/_sandbox/signal/captcha", put(set_captcha))
        .route("/_sandbox/telnyx/unavailable", post(make_unavailable))
        .route("/_sandbox/telnyx/inbound", post(inbound_sms))
        .route("/_sandbox/signal/inbound", post(inbound_signal))
        .with_state(sandbox)
}

fn bad_request(field: &str, message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(
            json!({"error": {"code": "invalid_request", "message": format!("{field}: {message}")}}),
        ),
    )
        .into_response()
}

/// Parses a JSON body, answering 400 with the reason instead of axum's plain-text rejection.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| bad_request("body", e))
}

async fn add_fault(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let spec: FaultSpec = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match spec.into_rule() {
        Ok(rule) => {
            let id = sb.faults.add(rule);
            (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
        }
        Err(msg) => bad_request("fault", msg),
    }
}

async fn list_faults(State(sb): State<Shared>) -> Response {
    Json(json!({ "faults": sb.faults.list() })).into_response()
}

async fn clear_faults(State(sb): State<Shared>) -> StatusCode {
    sb.faults.clear();
    StatusCode::NO_CONTENT
}

async fn resources(State(sb): State<Shared>) -> Response {
    Json(crate::resources::snapshot(&sb)).into_response()
}

async fn reset(State(sb): State<Shared>) -> StatusCode {
    sb.reset();
    StatusCode::NO_CONTENT
}

async fn get_latency(State(sb): State<Shared>) -> Response {
    Json(sb.faults.latency()).into_response()
}

async fn put_latency(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let values: BTreeMap<String, u64> = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match sb.faults.set_latency(values) {
        Ok(()) => Json(sb.faults.latency()).into_response(),
        Err(msg) => bad_request("latency", msg),
    }
}

#[derive(Deserialize)]
struct Captcha {
    required: bool,
}

async fn set_captcha(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let c: Captcha = match parse(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    sb.signal.set_captcha_required(c.required);
    Json(json!({ "required": c.required })).into_response()
}

#[derive(Deserialize)]
struct Unavailable {
    count: u32,
}

async fn make_unavailable(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let u: Unavailable = match parse(&body) {
        Ok(u) => u,
        Err(r) => return r,
    };
    sb.telnyx.fail_next_orders(u.count);
    Json(json!({ "count": u.count })).into_response()
}

#[derive(Deserialize)]
struct Inbound {
    from: String,
    to: String,
    text: String,
}

async fn inbound_sms(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let m: Inbound = match parse(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if sb.telnyx.deliver_inbound(&m.from, &m.to, &m.text) {
        (StatusCode::ACCEPTED, Json(json!({ "delivered_to": m.to }))).into_response()
    } else {
        bad_request("to", "is not a number of the sandbox account")
    }
}

async fn inbound_signal(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let m: Inbound = match parse(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match sb.signal.deliver_inbound(&m.from, &m.to, &m.text) {
        Some(timestamp) => (
            StatusCode::ACCEPTED,
            Json(json!({ "timestamp": timestamp })),
        )
            .into_response(),
        None => bad_request("to", "is not a registered Signal account of the sandbox"),
    }
}
