//! The catalogue: products, prices (found by lookup key) and billing meters.

use super::{bad, get_object, post_request, unauthorized, S};
use crate::stripe::form::Form;
use crate::stripe::objects;
use crate::stripe::state::now_unix;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

pub async fn create_product(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    post_request(&s, &headers, "/v1/products", &body, |st, f| {
        let Some(name) = f.get("name") else {
            return bad("Missing required param: name.", "name");
        };
        let id = f
            .get("id")
            .map(str::to_owned)
            .unwrap_or_else(|| st.id("prod"));
        let mut a = st.lock();
        if a.products.contains_key(&id) {
            return bad(&format!("Product already exists: '{id}'"), "id");
        }
        let p = objects::product(&id, name, now_unix());
        a.products.insert(id, p.clone());
        (StatusCode::OK, p)
    })
    .await
}

pub async fn get_product(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let found = s.lock().products.get(&id).cloned();
    get_object(&s, &headers, "product", found, &id)
}

pub async fn create_price(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    post_request(&s, &headers, "/v1/prices", &body, |st, f| {
        let Some(product) = f.get("product") else {
            return bad("Missing required param: product.", "product");
        };
        let mut a = st.lock();
        if !a.products.contains_key(product) {
            return bad(&format!("No such product: '{product}'"), "product");
        }
        let lookup = f.get("lookup_key").unwrap_or_default();
        if !lookup.is_empty() && a.prices.values().any(|p| p["lookup_key"] == lookup) {
            return bad(
                &format!("A price (`{lookup}`) already uses that lookup key."),
                "lookup_key",
            );
        }
        let meter = f.get("recurring[meter]");
        if let Some(m) = meter {
            if !a.meters.contains_key(m) {
                return bad(&format!("No such billing meter: '{m}'"), "recurring[meter]");
            }
        }
        let id = st.id("price");
        let amount = f.get("unit_amount").and_then(|v| v.parse().ok());
        let p = objects::price(
            &id,
            product,
            lookup,
            amount,
            f.get("unit_amount_decimal"),
            meter,
        );
        a.prices.insert(id, p.clone());
        (StatusCode::OK, p)
    })
    .await
}

pub async fn list_prices(State(s): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let f = Form::parse(q.unwrap_or_default().as_bytes());
    let keys = f.list("lookup_keys");
    let data: Vec<Value> = s
        .lock()
        .prices
        .values()
        .filter(|p| keys.is_empty() || keys.iter().any(|k| p["lookup_key"] == k.as_str()))
        .filter(|p| f.get("product").is_none_or(|x| p["product"] == x))
        .cloned()
        .collect();
    Json(objects::list("/v1/prices", data)).into_response()
}

pub async fn create_meter(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    post_request(&s, &headers, "/v1/billing/meters", &body, |st, f| {
        let (Some(name), Some(display)) = (f.get("event_name"), f.get("display_name")) else {
            return bad(
                "Missing required param: event_name or display_name.",
                "event_name",
            );
        };
        let mut a = st.lock();
        if a.meters.values().any(|m| m["event_name"] == name) {
            return bad(
                &format!("An active meter with event_name `{name}` already exists."),
                "event_name",
            );
        }
        let id = st.id("mtr");
        let m = objects::meter(&id, name, display, now_unix());
        a.meters.insert(id, m.clone());
        (StatusCode::OK, m)
    })
    .await
}

pub async fn list_meters(State(s): S, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let data = s.lock().meters.values().cloned().collect();
    Json(objects::list("/v1/billing/meters", data)).into_response()
}
