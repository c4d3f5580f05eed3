//! The Stripe API routes (`/v1/...`), the hosted checkout and portal pages, and what every
//! route shares: Bearer auth, the Idempotency-Key cache, fault rules and Stripe's errors.

mod catalog;
mod checkout;
mod checkout_page;
mod customers;
mod meter_events;
mod subscriptions;

use super::form::Form;
use super::objects;
use super::state::Stripe;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

type S = State<Arc<Stripe>>;

pub fn routes() -> Router<Arc<Stripe>> {
    Router::new()
        .route("/v1/customers", post(customers::create))
        .route("/v1/customers/{id}", get(customers::get))
        .route("/v1/checkout/sessions", post(checkout::create))
        .route("/v1/checkout/sessions/{id}", get(checkout::get))
        .route(
            "/v1/billing_portal/sessions",
            post(customers::create_portal),
        )
        .route("/v1/subscriptions", get(subscriptions::list))
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get).delete(subscriptions::cancel),
        )
        .route("/v1/products", post(catalog::create_product))
        .route("/v1/products/{id}", get(catalog::get_product))
        .route(
            "/v1/prices",
            post(catalog::create_price).get(catalog::list_prices),
        )
        .route(
            "/v1/billing/meters",
            post(catalog::create_meter).get(catalog::list_meters),
        )
        .route("/v1/billing/meter_events", post(meter_events::create))
        .route(
            "/c/pay/{id}",
            get(checkout_page::show).post(checkout_page::submit),
        )
        .route("/p/session/{id}", get(customers::portal_page))
}

/// 401 unless `Authorization: Bearer <secret key>` (any `sk_` key when none is configured).
pub(super) fn unauthorized(stripe: &Stripe, headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = if stripe.secret_key.is_empty() {
        key.starts_with("sk_")
    } else {
        key == stripe.secret_key
    };
    if ok {
        return None;
    }
    let shown: String = key.chars().take(8).collect();
    let message = if key.is_empty() {
        "You did not provide an API key. Provide your API key in the Authorization header, using Bearer auth.".to_owned()
    } else {
        format!("Invalid API Key provided: {shown}****")
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            Json(objects::error("invalid_request_error", &message, None)),
        )
            .into_response(),
    )
}

/// Runs a POST the way Stripe does: authenticated, replayed from the cache for a repeated
/// `Idempotency-Key`; refused or slowed down when a fault rule says so.
pub(super) async fn post_request(
    stripe: &Stripe,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    f: impl FnOnce(&Stripe, &Form) -> (StatusCode, Value),
) -> Response {
    if let Some(r) = unauthorized(stripe, headers) {
        return r;
    }
    let fault = take_fault(stripe, path);
    if let Some(code) = fault.as_ref().and_then(|f| f.status) {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = if status.is_server_error() {
            "api_error"
        } else {
            "invalid_request_error"
        };
        let body = objects::error(kind, "Injected by the sandbox fault rules.", None);
        return (status, Json(body)).into_response();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("{path}|{k}"));
    let cached = key
        .as_ref()
        .and_then(|k| stripe.lock().idempotency.get(k).cloned());
    let (status, value) = match cached {
        Some((s, v)) => (StatusCode::from_u16(s).unwrap_or(StatusCode::OK), v),
        None => {
            let (s, v) = f(stripe, &Form::parse(body));
            // Stripe caches 2xx and 4xx results of an idempotent request, not 5xx.
            if let Some(k) = key {
                if !s.is_server_error() {
                    stripe.lock().idempotency.insert(k, (s.as_u16(), v.clone()));
                }
            }
            (s, v)
        }
    };
    if let Some(ms) = fault.map(|f| f.delay_ms).filter(|ms| *ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    (status, Json(value)).into_response()
}

/// The first live fault rule for `path`, used up by one.
fn take_fault(stripe: &Stripe, path: &str) -> Option<super::state::Fault> {
    let mut a = stripe.lock();
    let rule = a
        .faults
        .iter_mut()
        .find(|r| r.path == path && r.count != Some(0))?;
    if let Some(c) = rule.count.as_mut() {
        *c -= 1;
    }
    Some(rule.clone())
}

pub(super) fn get_object(
    stripe: &Stripe,
    headers: &HeaderMap,
    kind: &str,
    found: Option<Value>,
    id: &str,
) -> Response {
    if let Some(r) = unauthorized(stripe, headers) {
        return r;
    }
    match found {
        Some(v) => Json(v).into_response(),
        None => missing(kind, id),
    }
}

pub(super) fn missing(kind: &str, id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(objects::error(
            "invalid_request_error",
            &format!("No such {kind}: '{id}'"),
            Some("id"),
        )),
    )
        .into_response()
}

pub(super) fn bad(message: &str, param: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        objects::error("invalid_request_error", message, Some(param)),
    )
}

pub(super) fn host(headers: &HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:4010")
        .to_owned()
}
