//! An upstream that hangs or breaks off: no caller waits forever and no request goes unmetered.
//! A provider that sends no headers in time is failed over like a refusing one; one that goes
//! quiet mid-stream has its stream ended and metered for what it produced; a non-streamed
//! answer that breaks off is metered as failed. The sandbox hangs for real (its own delays)
//! and breaks connections for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use futures::StreamExt;
use proxy::options::UpstreamTimeouts;
use proxy_support as ps;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Timeouts short enough for a test, long enough that a healthy sandbox never trips them.
/// The hung upstreams below answer after 30 s (or never); a proxy whose timeouts work answers
/// in about a second. Half the upstream's time tells the two apart with room to spare on a
/// loaded machine.
const BEFORE_THE_UPSTREAM: Duration = Duration::from_secs(15);

fn short() -> UpstreamTimeouts {
    UpstreamTimeouts {
        headers: Duration::from_millis(400),
        idle: Duration::from_millis(400),
    }
}

/// A proxy with short upstream timeouts in front of one sandbox set to `settings`.
async fn setup(settings: Value) -> (TestDb, SocketAddr, ps::RunningProxy, ps::TestUser) {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    ps::sandbox_ai(sandbox, settings).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.upstream_timeouts = short();
    let proxy = ps::RunningProxy::start(options).await;
    (db, sandbox, proxy, user)
}

fn claude_message(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}]})
}

#[tokio::test]
async fn an_upstream_that_sends_no_headers_in_time_fails_over_to_the_next() {
    let db = TestDb::new().await;
    let hung = ps::start_sandbox().await;
    let healthy = ps::start_sandbox().await;
    ps::sandbox_ai(hung, json!({"first_token_ms": 30_000})).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, healthy);
    options.openai = vec![ps::openai_target(hung), ps::openai_target(healthy)];
    options.upstream_timeouts = short();
    let proxy = ps::RunningProxy::start(options).await;

    let started = Instant::now();
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Hello"));
    assert!(
        started.elapsed() < BEFORE_THE_UPSTREAM,
        "answered after {:?}: waited for the hung upstream",
        started.elapsed()
    );
    assert_eq!(ps::sandbox_seen(hung).await["requests"], 1);
    assert_eq!(ps::sandbox_seen(healthy).await["requests"], 1);

    let rows = ps::wait_usage(&db.pool, user.id, 1, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status_code, 200);
    assert!(!rows[0].estimated && rows[0].output_tokens > 0);
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn when_every_upstream_hangs_the_caller_gets_a_504_in_its_format_and_it_is_metered() {
    let (db, hung, proxy, user) = setup(json!({"first_token_ms": 30_000})).await;

    let started = Instant::now();
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    // Three attempts of 0.4 s and short backoffs, not the sandbox's 30 s.
    assert!(
        started.elapsed() < BEFORE_THE_UPSTREAM,
        "answered after {:?}: waited for the hung upstream",
        started.elapsed()
    );
    assert_eq!(ps::sandbox_seen(hung).await["requests"], 3);

    let res = ps::post_messages(&proxy, &user.key, &claude_message(false)).await;
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");

    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(r.status_code, 504);
        assert_eq!(
            (r.input_tokens, r.output_tokens, r.cost_microdollars),
            (0, 0, 0)
        );
    }
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_stream_that_goes_quiet_is_ended_and_metered_for_what_it_produced() {
    // Two tokens, then nothing, the connection open: a provider that hangs mid-answer.
    let (db, sandbox, proxy, user) = setup(json!({"tokens": 8, "stall_after": 2})).await;

    for (path, model) in [
        ("/v1/chat/completions", "gpt-4o-mini"),
        ("/v1/chat/completions", "claude-sonnet-4-5"),
        ("/v1/messages", "claude-sonnet-4-5"),
    ] {
        let started = Instant::now();
        let res = if path == "/v1/messages" {
            ps::post_messages(&proxy, &user.key, &claude_message(true)).await
        } else {
            ps::post_chat(&proxy, &user.key, model, true).await
        };
        assert_eq!(res.status(), 200, "{path} {model}");
        let (text, broke) = ps::read_stream(res).await;
        assert!(
            broke,
            "{path} {model}: the quiet stream ended as if complete: {text}"
        );
        assert!(!text.contains("[DONE]") && !text.contains("message_stop"));
        assert!(text.contains("Hello"), "{path} {model}: {text}");
        assert!(
            started.elapsed() < BEFORE_THE_UPSTREAM,
            "{path} {model}: ended after {:?}, the proxy waited for the quiet upstream",
            started.elapsed()
        );
    }

    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(r.status_code, 200, "{r:?}");
        assert!(r.output_tokens > 0 && r.input_tokens > 0, "{r:?}");
    }
    // Ending the stream hung up on the provider too: no generation left running there.
    let deadline = Instant::now() + Duration::from_secs(5);
    while ps::sandbox_seen(sandbox).await["abandoned_streams"] != 3 {
        assert!(Instant::now() < deadline, "upstream streams left open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_non_streamed_answer_that_breaks_off_is_metered_as_failed() {
    let (db, sandbox, proxy, user) = setup(json!({"cut_after": 1})).await;

    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        let res = ps::post_chat(&proxy, &user.key, model, false).await;
        assert_eq!(res.status(), 502, "{model}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_unavailable", "{model}");
    }
    let res = ps::post_messages(&proxy, &user.key, &claude_message(false)).await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");

    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.status_code == 502), "{rows:?}");
    // Headers had come: the answer was accepted, so it was not retried.
    assert_eq!(ps::sandbox_seen(sandbox).await["requests"], 3);
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_slow_but_steady_stream_outlasting_the_idle_timeout_is_not_cut() {
    // 8 tokens 150 ms apart: 1.2 s in all, three times the idle timeout, never quiet for it.
    let (db, _, proxy, user) = setup(json!({"tokens": 8, "inter_token_ms": 150})).await;

    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        let res = ps::post_chat(&proxy, &user.key, model, true).await;
        assert_eq!(res.status(), 200);
        let (text, broke) = ps::read_stream(res).await;
        assert!(!broke, "{model}: the stream broke");
        assert!(text.trim_end().ends_with("data: [DONE]"), "{model}: {text}");
    }
    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.status_code == 200 && !r.estimated && r.output_tokens == 8),
        "{rows:?}"
    );
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_stop_cuts_what_still_runs_after_the_grace_and_meters_it() {
    let db = TestDb::new().await;
    let streams = ps::start_sandbox().await;
    let answers = ps::start_sandbox().await;
    // A stream that hangs after two tokens, and a non-streamed answer that takes 30 s.
    ps::sandbox_ai(streams, json!({"tokens": 8, "stall_after": 2})).await;
    ps::sandbox_ai(answers, json!({"first_token_ms": 30_000})).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, streams);
    options.anthropic = vec![ps::anthropic_target(answers)];
    options.shutdown_grace = Duration::from_millis(500);
    let proxy = ps::RunningProxy::start(options).await;

    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", true).await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    while !text.contains("Hello") {
        let chunk = stream.next().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let key = user.key.clone();
    let url = proxy.url("/v1/messages");
    let waiting = tokio::spawn(async move {
        ps::client()
            .post(url)
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&claude_message(false))
            .send()
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while ps::sandbox_seen(answers).await["requests"] != 1 {
        assert!(Instant::now() < deadline, "the answer never went upstream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), proxy.stop())
        .await
        .expect("the stop waited on the hung requests");
    assert!(started.elapsed() >= Duration::from_millis(500), "no grace");

    // Both callers see their request end, neither as a success.
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>())
        .await
        .unwrap();
    for chunk in rest.iter().flatten() {
        text.push_str(&String::from_utf8_lossy(chunk));
    }
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(waiting.await.unwrap().is_err());

    let rows = ps::usage(&db.pool, user.id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let stream_row = rows.iter().find(|r| r.model == "gpt-4o-mini").unwrap();
    assert_eq!(stream_row.status_code, 499);
    assert!(
        stream_row.estimated && stream_row.output_tokens > 0,
        "{stream_row:?}"
    );
    let answer_row = rows
        .iter()
        .find(|r| r.model == "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(answer_row.status_code, 503);
    assert_eq!(
        (answer_row.output_tokens, answer_row.cost_microdollars),
        (0, 0)
    );
    db.drop().await;
}
