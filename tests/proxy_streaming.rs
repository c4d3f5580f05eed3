//! Streaming as a user notices it: tokens arrive while the upstream produces them, a client
//! that hangs up is still billed for what was produced (estimated and marked so when no usage
//! had arrived) and the upstream stream is cancelled, and an upstream that breaks off mid-way
//! is billed, not retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use futures::StreamExt;
use proxy_support as ps;
use serde_json::json;
use std::time::{Duration, Instant};

async fn setup(
    settings: serde_json::Value,
) -> (TestDb, std::net::SocketAddr, ps::RunningProxy, ps::TestUser) {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    ps::sandbox_ai(sandbox, settings).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    (db, sandbox, proxy, user)
}

#[tokio::test]
async fn tokens_reach_the_client_as_they_are_produced() {
    let (db, _sandbox, proxy, user) = setup(json!({"tokens": 5, "inter_token_ms": 150})).await;
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        let started = Instant::now();
        let res = ps::client()
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&user.key)
            .json(&ps::chat_body(model, true))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut stream = res.bytes_stream();
        let mut first_content = None;
        let mut all = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            if first_content.is_none() && String::from_utf8_lossy(&chunk).contains("Hello") {
                first_content = Some(started.elapsed());
            }
            all.extend_from_slice(&chunk);
        }
        let total = started.elapsed();
        let first = first_content.expect("no content");
        // The upstream needs 4 × 150 ms after its first token to produce the rest: a stream
        // passed through shows the first token long before its end (two gaps are asked, so
        // a slow machine has room); a buffered one shows it at the end.
        assert!(
            total.saturating_sub(first) >= Duration::from_millis(300),
            "{model}: first token after {first:?}, end after {total:?}: the stream was buffered"
        );
        assert!(String::from_utf8_lossy(&all).ends_with("data: [DONE]\n\n"));
    }
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_metered_and_the_upstream_cancelled() {
    let (db, sandbox, proxy, user) = setup(json!({"tokens": 200, "inter_token_ms": 10})).await;

    // OpenAI format: usage only comes at the end, so what was streamed is estimated.
    let res = ps::client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&ps::chat_body("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut stream = res.bytes_stream();
    let mut contents = 0;
    while contents < 5 {
        let chunk = stream.next().await.unwrap().unwrap();
        contents += String::from_utf8_lossy(&chunk)
            .matches("\"content\"")
            .count();
    }
    drop(stream);

    let rows = ps::wait_usage(&db.pool, user.id, 1, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 1, "the abandoned stream was not metered");
    let r = &rows[0];
    assert_eq!(r.request_id, request_id);
    assert_eq!(r.status_code, 499);
    assert!(r.estimated);
    assert!(r.input_tokens > 0);
    assert!(r.output_tokens >= 1 && r.output_tokens < 200, "{r:?}");
    assert!(r.cost_microdollars > 0);

    // Anthropic format: input tokens are known from message_start, output is estimated.
    let res = ps::client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", &user.key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 1000, "stream": true,
            "messages": [{"role": "user", "content": "Say hello to the sandbox"}]}),
        )
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    while seen.matches("text_delta").count() < 5 {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    drop(stream);
    let start = seen.find("\"input_tokens\":").unwrap() + "\"input_tokens\":".len();
    let input: i64 = seen[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(5)).await;
    let r = rows.iter().find(|r| r.provider == "anthropic").unwrap();
    assert_eq!((r.status_code, r.estimated), (499, true));
    assert_eq!(
        r.input_tokens, input,
        "input comes from the upstream's message_start"
    );
    assert!(r.output_tokens >= 1 && r.output_tokens < 200, "{r:?}");

    // Both upstream streams were dropped before their end.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen = ps::sandbox_seen(sandbox).await;
        if seen["abandoned_streams"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upstream streams not cancelled: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn an_upstream_cut_mid_stream_is_billed_and_never_retried() {
    let (db, sandbox, proxy, user) = setup(json!({"tokens": 16, "cut_after": 5})).await;
    let mut body = ps::chat_body("gpt-4o-mini", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = ps::client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let mut broke = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(
        broke || !text.contains("[DONE]"),
        "the cut stream looked complete"
    );
    assert_eq!(text.matches("\"content\":\"").count() - 1, 5, "{text}");

    let rows = ps::wait_usage(&db.pool, user.id, 1, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].estimated && rows[0].output_tokens > 0,
        "{:?}",
        rows[0]
    );
    let seen = ps::sandbox_seen(sandbox).await;
    assert_eq!(seen["requests"], 1, "a stream that had started was retried");
    proxy.stop().await;
    db.drop().await;
}
