//! Subscriptions: list, retrieve, cancel.

use super::{get_object, missing, unauthorized, S};
use crate::stripe::form::Form;
use crate::stripe::objects;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

pub async fn list(State(s): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let f = Form::parse(q.unwrap_or_default().as_bytes());
    let data: Vec<Value> = s
        .lock()
        .subscriptions
        .values()
        .filter(|v| f.get("customer").is_none_or(|c| v["customer"] == c))
        .cloned()
        .collect();
    Json(objects::list("/v1/subscriptions", data)).into_response()
}

pub async fn get(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let found = s.lock().subscriptions.get(&id).cloned();
    get_object(&s, &headers, "subscription", found, &id)
}

/// `DELETE /v1/subscriptions/{id}`: cancels now and sends `customer.subscription.deleted`;
/// cancelling a canceled subscription answers it unchanged.
pub async fn cancel(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let status = s.lock().subscriptions.get(&id).map(|v| v["status"].clone());
    match status {
        None => missing("subscription", &id),
        Some(st) if st == "canceled" => {
            Json(s.lock().subscriptions.get(&id).cloned()).into_response()
        }
        Some(_) => {
            if let Err(m) = crate::stripe::webhooks::cancel(&s, &id).await {
                return missing("subscription", &m);
            }
            Json(s.lock().subscriptions.get(&id).cloned()).into_response()
        }
    }
}
