//! Customers and Billing Portal sessions (and the portal page their URL opens).

use super::{bad, get_object, host, post_request, S};
use crate::stripe::objects;
use crate::stripe::state::now_unix;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, Response};
use serde_json::Value;

pub async fn create(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    post_request(&s, &headers, "/v1/customers", &body, |st, f| {
        let id = st.id("cus");
        let c = objects::customer(
            &id,
            f.get("email"),
            f.get("name"),
            Value::Object(f.map("metadata")),
            now_unix(),
        );
        st.lock().customers.insert(id, c.clone());
        (StatusCode::OK, c)
    })
    .await
}

pub async fn get(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let found = s.lock().customers.get(&id).cloned();
    get_object(&s, &headers, "customer", found, &id)
}

pub async fn create_portal(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    let base = format!("http://{}/stripe", host(&headers));
    post_request(
        &s,
        &headers,
        "/v1/billing_portal/sessions",
        &body,
        |st, f| {
            let Some(customer) = f.get("customer") else {
                return bad("Missing required param: customer.", "customer");
            };
            if !st.lock().customers.contains_key(customer) {
                return bad(&format!("No such customer: '{customer}'"), "customer");
            }
            let id = st.id("bps");
            let url = format!("{base}/p/session/{id}");
            (
                StatusCode::OK,
                objects::portal_session(&id, customer, &url, f.get("return_url"), now_unix()),
            )
        },
    )
    .await
}

pub async fn portal_page(Path(id): Path<String>) -> Html<String> {
    Html(format!("<!doctype html><title>Billing portal</title><h1>Sandbox billing portal</h1><p>Session {id}</p>"))
}
