//! Billing Meter events, deduplicated on `identifier` like Stripe.

use super::{bad, post_request, S};
use crate::stripe::objects;
use crate::stripe::state::now_unix;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// Stripe dedupes meter events on `identifier`: a repeated identifier is answered like the
/// original and not counted again.
pub async fn create(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    post_request(&s, &headers, "/v1/billing/meter_events", &body, |st, f| {
        let Some(name) = f.get("event_name") else {
            return bad("Missing required param: event_name.", "event_name");
        };
        let payload = f.map("payload");
        let Some(customer) = payload.get("stripe_customer_id").and_then(Value::as_str) else {
            return bad("Missing required param: payload[stripe_customer_id].", "payload");
        };
        if payload.get("value").and_then(Value::as_str).and_then(|v| v.parse::<i64>().ok()).is_none() {
            return bad("payload[value] must be an integer.", "payload[value]");
        }
        let mut a = st.lock();
        if !a.meters.values().any(|m| m["event_name"] == name) {
            return bad(&format!("No active meter was found for event_name `{name}`."), "event_name");
        }
        if !a.customers.contains_key(customer) {
            return bad(&format!("No such customer: '{customer}'"), "payload[stripe_customer_id]");
        }
        let identifier = f.get("identifier").map(str::to_owned).unwrap_or_else(|| st.id("mev"));
        if let Some(existing) = a.meter_events.get(&identifier) {
            return (StatusCode::OK, existing.clone());
        }
        let now = now_unix();
        let ts = f.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(now);
        if ts < now - 35 * 86_400 || ts > now + 300 {
            return bad("Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.", "timestamp");
        }
        let ev = objects::meter_event(name, &identifier, Value::Object(payload.clone()), ts, now);
        a.meter_events.insert(identifier, ev.clone());
        (StatusCode::OK, ev)
    })
    .await
}
