//! The billing and usage endpoints' answers before anything is bought, and their refusals:
//! auth, bad input naming the field, operator-only routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::billing_stack;
use common::api::{expect_error, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn before_subscribing_usage_is_empty_and_billing_says_what_to_do() {
    let stack = billing_stack(false).await;
    let s = stack.register("new@example.com").await;

    let res = stack.api_get("/v1/billing/subscription", &s.access).await;
    let v = expect_error(res, StatusCode::NOT_FOUND).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("subscribe"),
        "{v}"
    );
    let res = stack
        .api_post("/v1/billing/portal", &s.access, json!({}))
        .await;
    expect_error(res, StatusCode::CONFLICT).await;

    let usage: Value = stack
        .api_get("/v1/usage", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["requests"], 0);
    assert_eq!(usage["by_model"], json!([]));
    let remaining: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(remaining["plan"], Value::Null);
    assert_eq!(remaining["remaining_tokens"], 0);
    let bill: Value = stack
        .api_get("/v1/billing/usage", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bill["total_microdollars"], 0);

    let res = stack
        .api_get("/v1/billing/usage?month=2026-13", &s.access)
        .await;
    let v = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["error"]["field"], "month");
    for path in [
        "/v1/usage",
        "/v1/usage/remaining",
        "/v1/billing/usage",
        "/v1/billing/subscription",
    ] {
        let res = stack
            .http
            .get(format!("{}{path}", stack.api))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_usage_sync_rerun_is_for_operators_and_checks_its_input() {
    let stack = billing_stack(false).await;
    let s = stack.register("op@example.com").await;
    let path = |u: &str, m: &str| format!("/v1/admin/usage-sync/{u}/{m}");

    let res = stack
        .api_post(&path(&s.user_id, "2026-11"), &s.access, json!({}))
        .await;
    expect_error(res, StatusCode::FORBIDDEN).await;
    let res = stack
        .api_post(&path("not-a-uuid", "2026-11"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(
        expect_error(res, StatusCode::BAD_REQUEST).await["error"]["field"],
        "user_id"
    );
    let res = stack
        .api_post(&path(&s.user_id, "November"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(
        expect_error(res, StatusCode::BAD_REQUEST).await["error"]["field"],
        "month"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let res = stack
        .api_post(&path(&unknown, "2026-11"), ADMIN_TOKEN, json!({}))
        .await;
    expect_error(res, StatusCode::NOT_FOUND).await;
    // Valid, but Restate is unreachable in this stack: a 503 to retry, not a 500.
    let res = stack
        .api_post(&path(&s.user_id, "2026-11"), ADMIN_TOKEN, json!({}))
        .await;
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE).await;

    // The contract lists the new routes.
    let spec: Value = stack
        .http
        .get(format!("{}/openapi.json", stack.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in [
        "/v1/billing/subscribe",
        "/v1/billing/portal",
        "/v1/billing/subscription",
        "/v1/billing/usage",
        "/v1/usage",
        "/v1/usage/remaining",
        "/v1/admin/usage-sync/{user_id}/{month}",
        "/webhooks/stripe",
    ] {
        assert!(
            spec["paths"][p].is_object(),
            "{p} missing from /openapi.json"
        );
    }
    stack.stop().await;
}
