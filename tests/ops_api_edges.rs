//! The API's edges answer in its own error format: a bad body names the field it came from
//! (from the deserializer's path, whatever the value says), a bad query string is JSON like
//! every other 400, the contract documents the error body, and the cases schemathesis found
//! stay fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{expect_error, TestApi, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_bad_value_names_its_own_field_whatever_it_says() {
    let api = TestApi::start().await;
    let s = api.register("edges@example.com").await;
    // A value that reads like serde's "missing field" text must not name another field.
    for value in [
        json!("missing field `password`"),
        json!("unknown field `plan`, x"),
    ] {
        let res = api
            .client
            .put(api.url("/v1/billing/spending-cap"))
            .bearer_auth(&s.access)
            .json(&json!({ "cap_cents": value }))
            .send()
            .await
            .unwrap();
        let v = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(v["error"]["field"], "cap_cents", "{v}");
    }
    let res = api
        .client
        .put(api.url("/v1/billing/spending-cap"))
        .bearer_auth(&s.access)
        .json(&json!({ "cap_cents": 500, "extra": 1 }))
        .send()
        .await
        .unwrap();
    let v = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["error"]["field"], "extra", "{v}");
    api.stop().await;
}

#[tokio::test]
async fn billing_usage_refuses_a_bad_query_in_json() {
    let api = TestApi::start().await;
    let s = api.register("usage-query@example.com").await;
    let res = api
        .get(
            "/v1/billing/usage?month=2026-01&month=2026-02",
            Some(&s.access),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    assert_eq!(v["error"]["field"], "month", "{v}");
    // A good query still answers.
    let ok = api
        .get("/v1/billing/usage?month=2026-01", Some(&s.access))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn every_documented_api_error_has_the_error_body_schema() {
    let api = TestApi::start().await;
    let spec: Value = api.get("/openapi.json", None).await.json().await.unwrap();
    let body = &spec["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        body["properties"]["error"]["$ref"],
        "#/components/schemas/ErrorDetail"
    );
    let detail = &spec["components"]["schemas"]["ErrorDetail"];
    let required: Vec<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"code") && required.contains(&"message"),
        "{detail}"
    );
    let mut errors = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        if path.starts_with("/oauth/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}: {response}"
                );
                errors += 1;
            }
            // Credentials required: a missing or bad one is a documented 401.
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
            }
        }
    }
    assert!(errors > 50, "only {errors} error responses documented");
    api.stop().await;
}

/// Found by schemathesis: a huge threshold overflowed Postgres' interval arithmetic (500).
#[tokio::test]
async fn a_huge_staleness_threshold_is_a_400_not_a_500() {
    let api = TestApi::start().await;
    for secs in ["9223372036854775806", "31622401", "-1"] {
        let res = api
            .get(
                &format!("/v1/admin/signal?stale_after_secs={secs}"),
                Some(ADMIN_TOKEN),
            )
            .await;
        let v = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(v["error"]["field"], "stale_after_secs", "{v}");
    }
    let ok = api
        .get(
            "/v1/admin/signal?stale_after_secs=31622400",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    api.stop().await;
}
