//! Control routes (`/stripe/_sandbox/...`, no auth, loopback only): drive a subscription
//! through payment failure, recovery, plan change and cancellation; hold webhook deliveries and
//! release them in any order; redeliver an event; inject faults; list what exists.

use super::state::{Fault, Stripe};
use super::webhooks;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

type S = State<Arc<Stripe>>;

pub fn routes() -> Router<Arc<Stripe>> {
    Router::new()
        .route("/_sandbox/checkout/{id}/pay", post(pay))
        .route(
            "/_sandbox/subscriptions/{id}/payment_failed",
            post(payment_failed),
        )
        .route(
            "/_sandbox/subscriptions/{id}/payment_succeeded",
            post(payment_succeeded),
        )
        .route("/_sandbox/subscriptions/{id}/plan", post(change_plan))
        .route("/_sandbox/subscriptions/{id}/cancel", post(cancel))
        .route("/_sandbox/webhooks/hold", post(hold))
        .route("/_sandbox/webhooks/release", post(release))
        .route("/_sandbox/events", get(events))
        .route("/_sandbox/events/{id}/redeliver", post(redeliver))
        .route("/_sandbox/events/{id}/signed", get(signed))
        .route("/_sandbox/faults", post(add_fault).delete(clear_faults))
        .route("/_sandbox/resources", get(resources))
}

fn emitted(r: Result<Vec<String>, String>) -> Response {
    match r {
        Ok(ids) => Json(json!({ "events": ids })).into_response(),
        Err(m) => (StatusCode::NOT_FOUND, Json(json!({ "error": m }))).into_response(),
    }
}

async fn pay(State(s): S, Path(id): Path<String>) -> Response {
    match webhooks::complete_checkout(&s, &id).await {
        Ok(sub) => Json(json!({ "subscription": sub })).into_response(),
        Err(m) => (StatusCode::NOT_FOUND, Json(json!({ "error": m }))).into_response(),
    }
}

async fn payment_failed(State(s): S, Path(id): Path<String>) -> Response {
    emitted(webhooks::payment_failed(&s, &id).await)
}

async fn payment_succeeded(State(s): S, Path(id): Path<String>) -> Response {
    emitted(webhooks::payment_succeeded(&s, &id).await)
}

#[derive(serde::Deserialize)]
struct PlanChange {
    /// The new plan's base price id.
    price: String,
}

async fn change_plan(State(s): S, Path(id): Path<String>, Json(req): Json<PlanChange>) -> Response {
    emitted(webhooks::change_plan(&s, &id, &req.price).await)
}

async fn cancel(State(s): S, Path(id): Path<String>) -> Response {
    emitted(webhooks::cancel(&s, &id).await)
}

async fn hold(State(s): S) -> Json<Value> {
    s.lock().holding = true;
    Json(json!({ "holding": true }))
}

#[derive(serde::Deserialize, Default)]
struct Release {
    /// "created" (default) or "reverse".
    order: Option<String>,
}

/// Stops holding and delivers what was held, in creation order or reversed.
async fn release(State(s): S, body: Option<Json<Release>>) -> Json<Value> {
    let order = body
        .and_then(|b| b.0.order)
        .unwrap_or_else(|| "created".into());
    let mut held = {
        let mut a = s.lock();
        a.holding = false;
        std::mem::take(&mut a.held)
    };
    if order == "reverse" {
        held.reverse();
    }
    let mut delivered = Vec::new();
    for id in held {
        let status = s.deliver(&id).await;
        let kind = s
            .event(&id)
            .map(|e| e["type"].clone())
            .unwrap_or(Value::Null);
        delivered.push(json!({ "id": id, "type": kind, "status": status }));
    }
    Json(json!({ "delivered": delivered }))
}

async fn events(State(s): S) -> Json<Value> {
    Json(json!({ "data": s.lock().events.clone() }))
}

async fn redeliver(State(s): S, Path(id): Path<String>) -> Response {
    if s.event(&id).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no event {id}") })),
        )
            .into_response();
    }
    let status = s.deliver(&id).await;
    Json(json!({ "id": id, "status": status })).into_response()
}

/// The event's body and a fresh `Stripe-Signature` for it, exactly as a delivery would carry
/// them (for checking the format with other Stripe libraries).
async fn signed(State(s): S, Path(id): Path<String>) -> Response {
    let Some(event) = s.event(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no event {id}") })),
        )
            .into_response();
    };
    let payload = event.to_string();
    let header = billing::signature::sign(
        &s.webhook_secret,
        super::state::now_unix(),
        payload.as_bytes(),
    );
    Json(json!({ "payload": payload, "header": header })).into_response()
}

async fn add_fault(State(s): S, Json(rule): Json<Fault>) -> (StatusCode, Json<Value>) {
    let mut a = s.lock();
    a.faults.push(rule);
    (
        StatusCode::CREATED,
        Json(json!({ "faults": a.faults.clone() })),
    )
}

async fn clear_faults(State(s): S) -> StatusCode {
    s.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn resources(State(s): S) -> Json<Value> {
    Json(s.resources())
}
