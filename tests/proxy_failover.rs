//! Failover before the first byte: a connect error, 429 or 5xx from the first upstream sends
//! the request to the next configured one; when all refuse, the caller sees the last refusal
//! in its own format, after a bounded number of attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use futures::StreamExt;
use proxy_support as ps;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn a_503_from_the_first_upstream_fails_over_to_the_second() {
    let db = TestDb::new().await;
    let broken = ps::start_sandbox().await;
    let healthy = ps::start_sandbox().await;
    ps::sandbox_ai(broken, json!({"fail_status": 503})).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, healthy);
    options.openai = vec![ps::openai_target(broken), ps::openai_target(healthy)];
    options.anthropic = vec![ps::anthropic_target(broken), ps::anthropic_target(healthy)];
    let proxy = ps::RunningProxy::start(options).await;
    let c = ps::client();

    let res = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Hello"));

    let res = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text: Vec<_> = res.bytes_stream().collect().await;
    assert!(text.iter().all(Result::is_ok));

    let res = c
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", &user.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    assert_eq!(ps::sandbox_seen(broken).await["requests"], 3);
    assert_eq!(ps::sandbox_seen(healthy).await["requests"], 3);
    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.status_code == 200 && !r.estimated));

    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn an_unreachable_first_upstream_fails_over() {
    let db = TestDb::new().await;
    let healthy = ps::start_sandbox().await;
    let nowhere: std::net::SocketAddr = format!("127.0.0.1:{}", ps::free_port()).parse().unwrap();
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, healthy);
    options.openai = vec![ps::openai_target(nowhere), ps::openai_target(healthy)];
    let proxy = ps::RunningProxy::start(options).await;
    let res = ps::client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn when_every_attempt_is_refused_the_caller_gets_the_refusal_in_its_format() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    ps::sandbox_ai(sandbox, json!({"fail_status": 429, "retry_after_s": 7})).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();

    let res = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // Bounded: three attempts in all.
    assert_eq!(ps::sandbox_seen(sandbox).await["requests"], 3);

    // A Claude model through the OpenAI format: Anthropic's 529 becomes an OpenAI 503.
    ps::sandbox_ai(sandbox, json!({"fail_status": 529})).await;
    let res = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("claude-sonnet-4-5", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["message"], "Overloaded");

    // Each request still leaves one (empty) usage event, with the status it ended with.
    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(5)).await;
    let mut statuses: Vec<i32> = rows.iter().map(|r| r.status_code).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![429, 529]);
    assert!(rows
        .iter()
        .all(|r| r.input_tokens == 0 && r.cost_microdollars == 0));

    proxy.stop().await;
    db.drop().await;
}
