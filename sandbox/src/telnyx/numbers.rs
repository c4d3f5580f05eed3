//! `/v2/available_phone_numbers`, `/v2/number_orders`, `/v2/phone_numbers`.
//! Available numbers are invented on each search (`+1555` and seven random digits), minus
//! those the account owns; ordering one the account already owns fails as "no longer
//! available", as does an order while the control route asked for it.

use super::{error, invalid, is_e164, not_found, Number, Profile};
use crate::{lock, now_rfc3339, Shared};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

fn phone_number_json(n: &Number) -> Value {
    json!({
        "record_type": "phone_number",
        "id": n.id,
        "phone_number": n.phone_number,
        "status": "active",
        "tags": [],
        "connection_id": null,
        "connection_name": null,
        "customer_reference": n.customer_reference,
        "messaging_profile_id": n.messaging_profile_id,
        "messaging_profile_name": null,
        "billing_group_id": null,
        "emergency_enabled": false,
        "call_forwarding_enabled": true,
        "cnam_listing_enabled": false,
        "caller_id_name_enabled": false,
        "call_recording_enabled": false,
        "t38_fax_gateway_enabled": false,
        "phone_number_type": "local",
        "purchased_at": n.created_at,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    })
}

fn messaging_settings_json(n: &Number) -> Value {
    json!({
        "record_type": "messaging_settings",
        "id": n.id,
        "phone_number": n.phone_number,
        "messaging_profile_id": n.messaging_profile_id,
        "country_code": "US",
        "type": "long-code",
        "eligible_messaging_products": ["A2P"],
        "messaging_product": "A2P",
        "features": { "sms": { "domestic_two_way": true, "international_inbound": true, "international_outbound": true } },
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    })
}

pub(super) async fn search(
    State(sb): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit: usize = q
        .get("filter[limit]")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let country = q.get("filter[country_code]").map_or("US", String::as_str);
    let numbers: Vec<Value> = if country.eq_ignore_ascii_case("US") {
        let mut out = Vec::new();
        while out.len() < limit {
            let candidate = format!("+1555{:07}", rand::random::<u32>() % 10_000_000);
            if !sb.telnyx.owns(&candidate) && !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        out.into_iter()
            .map(|n| {
                json!({
                    "record_type": "available_phone_number",
                    "phone_number": n,
                    "vanity_format": null,
                    "best_effort": false,
                    "quickship": true,
                    "reservable": true,
                    "region_information": [
                        { "region_type": "country_code", "region_name": "US" },
                        { "region_type": "rate_center", "region_name": "SANDBOX" },
                    ],
                    "cost_information": { "upfront_cost": "1.00", "monthly_cost": "1.00", "currency": "USD" },
                    "features": [{ "name": "sms" }, { "name": "mms" }, { "name": "voice" }],
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let total = numbers.len();
    Json(json!({ "data": numbers, "metadata": { "total_results": total, "best_effort_results": 0 } }))
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct OrderRequest {
    #[serde(default)]
    phone_numbers: Vec<OrderedNumber>,
    #[serde(default)]
    messaging_profile_id: Option<String>,
    #[serde(default)]
    customer_reference: Option<String>,
    #[serde(default)]
    connection_id: Option<String>,
}

#[derive(Deserialize)]
struct OrderedNumber {
    phone_number: String,
}

pub(super) async fn create_order(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<OrderRequest>(&body) else {
        return invalid("/", "The request body is not a valid number order.");
    };
    if req.phone_numbers.is_empty() {
        return invalid(
            "/phone_numbers",
            "phone_numbers must contain at least one number.",
        );
    }
    if let Some(bad) = req.phone_numbers.iter().find(|n| !is_e164(&n.phone_number)) {
        return invalid(
            "/phone_numbers/phone_number",
            &format!("{} is not in +E.164 format.", bad.phone_number),
        );
    }
    let now = now_rfc3339();
    let mut state = lock(&sb.telnyx.state);
    let taken = req.phone_numbers.iter().find(|n| {
        state
            .numbers
            .values()
            .any(|o| o.phone_number == n.phone_number)
    });
    if state.unavailable_orders > 0 || taken.is_some() {
        state.unavailable_orders = state.unavailable_orders.saturating_sub(1);
        let which = taken.map_or(req.phone_numbers[0].phone_number.as_str(), |n| {
            n.phone_number.as_str()
        });
        // Guessed shape and code: Telnyx documents the failure but not its exact body.
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "85001",
            "Number not available",
            &format!("The phone number {which} is no longer available for purchase."),
        );
    }
    if let Some(p) = &req.messaging_profile_id {
        ensure_profile(&mut state.profiles, p, &now);
    }
    let order_id = uuid::Uuid::new_v4().to_string();
    let mut ordered = Vec::new();
    for n in &req.phone_numbers {
        let number = Number {
            id: format!(
                "{}",
                1_000_000_000_000_000_000u128 + u128::from(rand::random::<u64>())
            ),
            phone_number: n.phone_number.clone(),
            messaging_profile_id: req.messaging_profile_id.clone(),
            customer_reference: req.customer_reference.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        ordered.push(json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "record_type": "number_order_phone_number",
            "phone_number": number.phone_number,
            "status": "success",
            "regulatory_requirements": [],
            "requirements_met": true,
        }));
        state.numbers.insert(number.id.clone(), number);
    }
    let order = json!({
        "id": order_id,
        "record_type": "number_order",
        "phone_numbers": ordered,
        "phone_numbers_count": ordered.len(),
        "connection_id": req.connection_id,
        "messaging_profile_id": req.messaging_profile_id,
        "billing_group_id": null,
        "customer_reference": req.customer_reference,
        "status": "success",
        "requirements_met": true,
        "created_at": now,
        "updated_at": now,
    });
    state.orders.insert(order_id, order.clone());
    (StatusCode::OK, Json(json!({ "data": order }))).into_response()
}

/// The sandbox creates a messaging profile the first time an id is used (Telnyx would require
/// it to exist); it saves configuring one by hand in dev.
pub(super) fn ensure_profile(
    profiles: &mut std::collections::BTreeMap<String, Profile>,
    id: &str,
    now: &str,
) {
    profiles.entry(id.to_owned()).or_insert_with(|| Profile {
        id: id.to_owned(),
        name: id.to_owned(),
        webhook_url: None,
        webhook_failover_url: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    });
}

pub(super) async fn list_orders(
    State(sb): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&sb.telnyx.state);
    let by_reference = q.get("filter[customer_reference]");
    let by_status = q.get("filter[status]");
    let mut found: Vec<&Value> = state
        .orders
        .values()
        .filter(|o| {
            by_reference.is_none_or(|r| o["customer_reference"] == r.as_str())
                && by_status.is_none_or(|s| o["status"] == s.as_str())
        })
        .collect();
    found.sort_by_key(|o| o["created_at"].as_str().map(str::to_owned));
    let total = found.len();
    Json(json!({
        "data": found,
        "meta": { "total_pages": 1, "total_results": total, "page_number": 1, "page_size": total.max(20) },
    }))
    .into_response()
}

pub(super) async fn get_order(State(sb): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&sb.telnyx.state).orders.get(&id) {
        Some(order) => Json(json!({ "data": order })).into_response(),
        None => not_found(),
    }
}

pub(super) async fn list(
    State(sb): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&sb.telnyx.state);
    let by_number = q.get("filter[phone_number]").map(|s| s.trim().to_owned());
    let by_reference = q.get("filter[customer_reference]");
    let found: Vec<Value> = state
        .numbers
        .values()
        .filter(|n| {
            by_number
                .as_ref()
                .is_none_or(|p| n.phone_number.contains(p.as_str()))
                && by_reference.is_none_or(|r| n.customer_reference.as_ref() == Some(r))
        })
        .map(phone_number_json)
        .collect();
    let total = found.len();
    Json(json!({
        "data": found,
        "meta": { "total_pages": 1, "total_results": total, "page_number": 1, "page_size": total.max(20) },
    }))
    .into_response()
}

pub(super) async fn get(State(sb): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&sb.telnyx.state).numbers.get(&id) {
        Some(n) => Json(json!({ "data": phone_number_json(n) })).into_response(),
        None => not_found(),
    }
}

pub(super) async fn release(State(sb): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&sb.telnyx.state).numbers.remove(&id) {
        Some(n) => {
            let mut body = phone_number_json(&n);
            body["status"] = json!("deleted");
            Json(json!({ "data": body })).into_response()
        }
        None => not_found(),
    }
}

pub(super) async fn get_messaging(State(sb): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&sb.telnyx.state).numbers.get(&id) {
        Some(n) => Json(json!({ "data": messaging_settings_json(n) })).into_response(),
        None => not_found(),
    }
}

#[derive(Deserialize)]
pub(super) struct MessagingUpdate {
    messaging_profile_id: Option<String>,
}

pub(super) async fn update_messaging(
    State(sb): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let Ok(update) = serde_json::from_slice::<MessagingUpdate>(&body) else {
        return invalid("/", "The request body is not valid JSON.");
    };
    let now = now_rfc3339();
    let mut guard = lock(&sb.telnyx.state);
    let state = &mut *guard;
    let Some(number) = state.numbers.get_mut(&id) else {
        return not_found();
    };
    if let Some(p) = &update.messaging_profile_id {
        if !p.is_empty() {
            ensure_profile(&mut state.profiles, p, &now);
        }
    }
    number.messaging_profile_id = update.messaging_profile_id.filter(|p| !p.is_empty());
    number.updated_at = now;
    Json(json!({ "data": messaging_settings_json(number) })).into_response()
}
