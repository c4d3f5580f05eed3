//! Checkout Sessions (subscription mode); the hosted page their `url` opens is `checkout_page`.

use super::{bad, get_object, host, post_request, S};
use crate::stripe::objects;
use crate::stripe::state::now_unix;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

pub async fn create(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    let base = format!("http://{}/stripe", host(&headers));
    post_request(&s, &headers, "/v1/checkout/sessions", &body, |st, f| {
        if f.get("mode") != Some("subscription") {
            return bad(
                "The sandbox only emulates `mode=subscription` sessions.",
                "mode",
            );
        }
        let items = f.line_items();
        if items.is_empty() {
            return bad("Missing required param: line_items.", "line_items");
        }
        let mut a = st.lock();
        if let Some((p, _)) = items.iter().find(|(p, _)| !a.prices.contains_key(p)) {
            return bad(&format!("No such price: '{p}'"), "line_items[0][price]");
        }
        if let Some(c) = f.get("customer") {
            if !a.customers.contains_key(c) {
                return bad(&format!("No such customer: '{c}'"), "customer");
            }
        }
        let mut methods = f.list("payment_method_types");
        methods.extend(f.list("allowed_payment_method_types"));
        if methods.is_empty() {
            methods = vec!["card".into(), "link".into()];
        }
        let id = st.id("cs_test");
        let url = format!("{base}/c/pay/{id}");
        let session = objects::checkout_session(&objects::SessionSpec {
            id: &id,
            url: &url,
            customer: f.get("customer"),
            client_reference_id: f.get("client_reference_id"),
            success_url: f.get("success_url"),
            cancel_url: f.get("cancel_url"),
            payment_method_types: methods,
            metadata: Value::Object(f.map("metadata")),
            subscription_metadata: Value::Object(f.map("subscription_data[metadata]")),
            billing_cycle_anchor: f
                .get("subscription_data[billing_cycle_anchor]")
                .and_then(|a| a.parse().ok()),
            line_items: items,
            created: now_unix(),
        });
        a.sessions.insert(id, session.clone());
        (StatusCode::OK, public_session(&session))
    })
    .await
}

/// The session without the sandbox's private bookkeeping.
fn public_session(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("x_sandbox");
    }
    v
}

pub async fn get(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let found = s.lock().sessions.get(&id).map(public_session);
    get_object(&s, &headers, "checkout.session", found, &id)
}
