//! Admin listing, the OpenAPI contract, health, metrics and request ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{expect_error, TestApi, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn admin_lists_users_page_by_page_and_only_for_the_admin() {
    let api = TestApi::start().await;
    let first = api.register("u1@example.com").await;
    api.register("u2@example.com").await;
    api.register("u3@example.com").await;
    api.create_key(&first.access, "k").await;

    expect_error(
        api.get("/v1/admin/users", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.get("/v1/admin/users", Some("wrong-token")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_error(
        api.get("/v1/admin/users", Some(&first.access)).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let mut emails = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/users?limit=2&cursor={c}"),
            None => "/v1/admin/users?limit=2".into(),
        };
        let page: Value = api
            .get(&path, Some(ADMIN_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        for u in page["data"].as_array().unwrap() {
            emails.push(u["email"].as_str().unwrap().to_owned());
            if u["email"] == "u1@example.com" {
                assert_eq!(u["active_api_keys"], 1);
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        emails,
        ["u1@example.com", "u2@example.com", "u3@example.com"]
    );

    for bad in [
        "/v1/admin/users?limit=0",
        "/v1/admin/users?limit=abc",
        "/v1/admin/users?cursor=%%%",
        "/v1/admin/users?bogus=1",
    ] {
        expect_error(
            api.get(bad, Some(ADMIN_TOKEN)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    api.stop().await;
}

/// A served request, straight into `usage_events` (the proxy's metering is tested elsewhere).
async fn served(api: &TestApi, user: &str, at: &str, input: i64, output: i64, cost: i64) {
    sqlx::query(
        "INSERT INTO usage_events (request_id, user_id, model, provider, input_tokens,
             output_tokens, cost_microdollars, created_at)
         VALUES (gen_random_uuid()::text, $1::uuid, 'gpt-4o-mini', 'openai', $2, $3, $4,
                 $5::timestamptz)",
    )
    .bind(user)
    .bind(input)
    .bind(output)
    .bind(cost)
    .bind(at)
    .execute(&api.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn admin_usage_shows_a_month_heaviest_user_first_with_overage_still_to_bill() {
    let api = TestApi::start().await;
    let light = api.register("light@example.com").await;
    let heavy = api.register("heavy@example.com").await;
    for month in ["2026-09-01", "2026-10-01"] {
        sqlx::query("SELECT ensure_usage_partition($1::date)")
            .bind(month)
            .execute(&api.db.pool)
            .await
            .unwrap();
    }
    served(&api, &light.user_id, "2026-10-03T10:00:00Z", 100, 10, 50).await;
    served(
        &api,
        &heavy.user_id,
        "2026-10-04T10:00:00Z",
        7_000,
        700,
        4_000,
    )
    .await;
    served(
        &api,
        &heavy.user_id,
        "2026-10-31T23:59:59Z",
        3_000,
        300,
        2_000,
    )
    .await;
    // Another month's request counts there, not here.
    served(&api, &heavy.user_id, "2026-09-30T23:59:59Z", 999, 99, 999).await;
    sqlx::query(
        "INSERT INTO usage_monthly (user_id, month, plan, overage_input_tokens,
             overage_output_tokens, reported_input_tokens, reported_output_tokens, synced_at)
         VALUES ($1::uuid, '2026-10-01', 'basic', 1000, 100, 400, 100, now())",
    )
    .bind(&heavy.user_id)
    .execute(&api.db.pool)
    .await
    .unwrap();

    expect_error(
        api.get("/v1/admin/usage", Some(&heavy.access)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let v: Value = api
        .get("/v1/admin/usage?month=2026-10", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["month"], "2026-10");
    assert_eq!(v["totals"]["users"], 2, "{v}");
    assert_eq!(v["totals"]["requests"], 3);
    assert_eq!(v["totals"]["input_tokens"], 10_100);
    assert_eq!(v["totals"]["cost_microdollars"], 6_050);
    let users = v["users"].as_array().unwrap();
    assert_eq!(users[0]["email"], "heavy@example.com");
    assert_eq!(users[0]["requests"], 2);
    assert_eq!(users[0]["output_tokens"], 1_000);
    assert_eq!(users[0]["plan"], "basic");
    assert_eq!(users[0]["unreported_input_tokens"], 600);
    assert_eq!(users[0]["unreported_output_tokens"], 0);
    assert_eq!(users[1]["email"], "light@example.com");
    assert_eq!(users[1]["overage_input_tokens"], 0);
    assert!(users[1]["synced_at"].is_null());

    let top: Value = api
        .get("/v1/admin/usage?month=2026-10&limit=1", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(top["users"].as_array().unwrap().len(), 1);
    assert_eq!(top["totals"]["users"], 2, "totals cover every user");
    // Without a month, the current one, which has no usage here.
    let now: Value = api
        .get("/v1/admin/usage", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["month"], chrono::Utc::now().format("%Y-%m").to_string());
    assert_eq!(now["totals"]["requests"], 0);

    for bad in [
        "/v1/admin/usage?month=2026-13",
        "/v1/admin/usage?month=october",
        "/v1/admin/usage?limit=201",
        "/v1/admin/usage?bogus=1",
    ] {
        expect_error(
            api.get(bad, Some(ADMIN_TOKEN)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    api.stop().await;
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let api = TestApi::start().await;
    let spec: Value = api.get("/openapi.json", None).await.json().await.unwrap();
    let paths = spec["paths"].as_object().unwrap();
    let expected = [
        ("/v1/auth/register", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/me", "get"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys/{id}", "delete"),
        ("/v1/api-keys/{id}/rotate", "post"),
        ("/v1/admin/users", "get"),
        ("/v1/admin/usage", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    // Every documented operation really is served (not 404 from the fallback).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url = api.url(&path.replace("{id}", "00000000-0000-0000-0000-000000000000"));
            let res = api
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap_or_default();
            assert_ne!(
                body["error"]["message"], "no such route",
                "{method} {path} is documented but not routed"
            );
        }
    }
    api.stop().await;
}

#[tokio::test]
async fn health_metrics_and_request_ids() {
    let api = TestApi::start().await;
    assert_eq!(api.get("/healthz", None).await.status(), StatusCode::OK);
    let ready: Value = api.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["dependencies"]["postgres"], "ok");

    let res = api
        .client
        .get(api.url("/v1/me"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
    let res = api.get("/nope", None).await;
    assert!(!res.headers()["x-request-id"].is_empty());
    expect_error(res, StatusCode::NOT_FOUND).await;

    let metrics = api.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    api.stop().await;
}
