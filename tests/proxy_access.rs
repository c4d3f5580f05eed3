//! Who gets through the proxy: 401 for unknown or revoked keys, 402 without an active plan,
//! when suspended or at the spending cap, 429 with Retry-After over the per-key rate; each
//! in the caller's error format, with x-request-id and the tokens-remaining header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use proxy_support as ps;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn unknown_or_missing_keys_get_401_in_the_callers_format() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();
    let fake = format!("pk_live_{}", "A".repeat(43));

    let res = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&fake)
        .json(&ps::chat_body("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid API key"));

    let res = c
        .post(proxy.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn plan_states_get_402_with_a_clear_message() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let none = ps::user(&db.pool, None, None).await;
    let canceled = ps::user(&db.pool, Some(("basic", "canceled")), None).await;
    let suspended = ps::user(&db.pool, Some(("pro", "active")), None).await;
    sqlx::query("INSERT INTO identities (id, user_id, short_id, status) VALUES ($1, $2, 'abc123', 'suspended')")
        .bind(uuid::Uuid::new_v4())
        .bind(suspended.id)
        .execute(&db.pool)
        .await
        .unwrap();
    // A cap of 1 microdollar: the first request is served, the second is refused.
    let capped = ps::user(&db.pool, Some(("basic", "active")), Some(1)).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();
    let chat = |key: String| {
        let c = c.clone();
        let url = proxy.url("/v1/chat/completions");
        async move {
            c.post(url)
                .bearer_auth(key)
                .json(&ps::chat_body("gpt-4o-mini", false))
                .send()
                .await
                .unwrap()
        }
    };

    for (user, code) in [
        (&none, "subscription_inactive"),
        (&canceled, "subscription_inactive"),
        (&suspended, "account_suspended"),
    ] {
        let res = chat(user.key.clone()).await;
        assert_eq!(res.status(), 402, "{code}");
        assert_eq!(res.headers()["x-poindexter-tokens-remaining"], "0");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }

    let first = chat(capped.key.clone()).await;
    assert_eq!(first.status(), 200);
    // A finished (non-streamed) answer's own tokens are already counted in its header.
    let remaining = |res: &reqwest::Response| -> i64 {
        res.headers()["x-poindexter-tokens-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let after_first = remaining(&first);
    assert!(
        after_first < 5_000_000 && after_first > 4_999_900,
        "{after_first}"
    );
    let second = chat(capped.key.clone()).await;
    assert_eq!(second.status(), 402);
    assert_eq!(remaining(&second), after_first);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "spending_cap_reached");

    // Anthropic callers get Anthropic's billing error.
    let res = c
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", &none.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 402);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "billing_error");

    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn over_the_rate_gets_429_with_retry_after() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.rate_per_minute = 2;
    options.rate_burst = 2;
    let proxy = ps::RunningProxy::start(options).await;
    let c = ps::client();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let res = c
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&user.key)
            .json(&ps::chat_body("gpt-4o-mini", false))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        last = Some(res);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    let res = last.unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert!(res.headers().contains_key("x-poindexter-tokens-remaining"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    // Another key of the same user has its own budget.
    let (other, _) = ps::add_key(&db.pool, user.id).await;
    let ok = wait_for_status(&proxy, &other, 200, Duration::from_secs(2)).await;
    assert!(
        ok.is_some(),
        "a new key is usable within the propagation window"
    );

    proxy.stop().await;
    db.drop().await;
}

/// The status of a small chat completion with `key`.
async fn chat(proxy: &ps::RunningProxy, key: &str) -> u16 {
    ps::post_chat(proxy, key, "gpt-4o-mini", false)
        .await
        .status()
        .as_u16()
}

async fn wait_for_status(
    proxy: &ps::RunningProxy,
    key: &str,
    status: u16,
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        let res = ps::client()
            .get(proxy.url("/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == status {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn revocation_and_plan_changes_reach_the_proxy_within_a_second() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("pro", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    assert!(
        wait_for_status(&proxy, &user.key, 200, Duration::from_secs(1))
            .await
            .is_some()
    );

    // Revoking the key (as the api does) locks it out within 1 s.
    assert!(db::api_keys::revoke(&db.pool, user.id, user.key_id)
        .await
        .unwrap());
    let took = wait_for_status(&proxy, &user.key, 401, Duration::from_secs(1)).await;
    assert!(took.is_some(), "revoked key still accepted after 1 s");

    // A cancelled subscription turns a fresh key's answers into 402 within 1 s.
    let (key2, _) = ps::add_key(&db.pool, user.id).await;
    assert!(wait_for_status(&proxy, &key2, 200, Duration::from_secs(1))
        .await
        .is_some());
    sqlx::query(
        "UPDATE subscriptions SET status = 'canceled', updated_at = now() WHERE user_id = $1",
    )
    .bind(user.id)
    .execute(&db.pool)
    .await
    .unwrap();
    let took = wait_for_status(&proxy, &key2, 402, Duration::from_secs(1)).await;
    assert!(took.is_some(), "cancelled plan still served after 1 s");

    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_key_works_the_moment_it_is_created_even_if_its_notification_is_lost() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    // Without the NOTIFY the listener would reload this user on, only the proxy's lookup of a
    // key it does not know can let the new key in (the safety-net reload is a minute away).
    sqlx::query("ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify")
        .execute(&db.pool)
        .await
        .unwrap();
    let (fresh, _) = ps::add_key(&db.pool, user.id).await;
    assert_eq!(chat(&proxy, &fresh).await, 200, "a new key was refused");
    // A made-up key is still refused after its lookup.
    let fake = format!("pk_live_{}", "B".repeat(43));
    assert_eq!(chat(&proxy, &fake).await, 401);
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn the_ai_chat_alias_answers_like_chat_completions() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let res = ps::client()
        .post(proxy.url("/v1/ai/chat"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("claude-haiku-4-5", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_large_prompt_is_accepted() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("pro", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let big = "word ".repeat(1_000_000); // 5 MB, above axum's default 2 MB limit
    let res = ps::client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["usage"]["prompt_tokens"].as_i64().unwrap() >= 1_000_000);

    // Past the limit: refused in the caller's own format, not as axum's plain text, and
    // nothing reaches the upstream or the meter.
    let huge = "w".repeat(proxy::MAX_REQUEST_BYTES);
    let res = ps::client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": huge}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.headers().contains_key("x-poindexter-tokens-remaining"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("32 MiB"));
    let res = ps::post_messages(
        &proxy,
        &user.key,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": huge}]}),
    )
    .await;
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "request_too_large");
    assert_eq!(ps::sandbox_seen(sandbox).await["requests"], 1);
    // Stopping writes every queued usage event: then the count is final.
    proxy.stop().await;
    assert_eq!(ps::usage(&db.pool, user.id).await.len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_errors_in_the_callers_format() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("pro", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();

    // A newer OpenAI SDK call the proxy does not serve.
    let res = c
        .post(proxy.url("/v1/responses?stream=true"))
        .bearer_auth(&user.key)
        .json(&json!({"model": "gpt-4o-mini", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let first_id = request_id(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_url");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("POST /v1/responses)"), "{message}");
    assert!(message.contains("/v1/chat/completions"), "{message}");

    let res = c
        .get(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_ne!(request_id(&res), first_id, "each answer has its own id");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let res = c
        .post(proxy.url("/v1/messages/count_tokens"))
        .header("x-api-key", &user.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    request_id(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");

    // The operational routes are untouched.
    assert_eq!(
        c.get(proxy.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(ps::sandbox_seen(sandbox).await["requests"], 0);
    proxy.stop().await;
    db.drop().await;
}

/// The answer's `x-request-id`, which must be there and be a UUID.
fn request_id(res: &reqwest::Response) -> uuid::Uuid {
    let id = res
        .headers()
        .get("x-request-id")
        .expect("an x-request-id header")
        .to_str()
        .unwrap();
    id.parse().unwrap_or_else(|_| panic!("not a UUID: {id}"))
}
