//! What an operator watches, seen from outside: the whole stack runs as processes
//! (`poindexter dev`), a user pays, gets an identity, calls the AI through the proxy and makes
//! a few mistakes; then the api's, proxy's and workflows' `/metrics` must show it (counts that
//! match what happened, route templates rather than ids, no personal data in labels), and
//! every query of the Grafana dashboard must name a metric one of them exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops_support;

use common::dev::{addr, DevStack};
use ops_support::{ok_json, paid_user, parse_samples, scrape, total, Sample};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DASHBOARD: &str = include_str!("../ops/grafana/poindexter.json");

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_the_traffic_and_every_dashboard_query_names_an_exported_metric() {
    let mut dev = DevStack::start(&[]).await;
    let http = reqwest::Client::new();
    let api = dev.api.clone();
    let user = paid_user(&api, "watched@example.com").await;
    let token = user.token.as_str();

    // A key made and another deleted (a route with an id in its path).
    let key = ok_json(
        http.post(format!("{api}/v1/api-keys"))
            .bearer_auth(token)
            .json(&json!({"name": "dex"})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let spare = ok_json(
        http.post(format!("{api}/v1/api-keys"))
            .bearer_auth(token)
            .json(&json!({"name": "spare"})),
    )
    .await;
    let deleted = http
        .delete(format!(
            "{api}/v1/api-keys/{}",
            spare["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    // Mistakes: no credentials, no such route, a bad body.
    assert_eq!(
        http.get(format!("{api}/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(format!("{api}/v1/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let bad = http
        .put(format!("{api}/v1/billing/spending-cap"))
        .bearer_auth(token)
        .json(&json!({"cap_cents": "lots"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // AI through the proxy, whole and streamed.
    for stream in [false, true] {
        let res = http
            .post(format!("{}/v1/chat/completions", dev.proxy))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "stream": stream,
                          "messages": [{"role": "user", "content": "hello"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }

    // Both requests metered in Postgres, then a usage sync of the month through Restate.
    let pool = sqlx::PgPool::connect(&dev.db_url).await.unwrap();
    let metered = wait_for(Duration::from_secs(30), || async {
        let (n, input, output): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT count(*), sum(input_tokens)::int8, sum(output_tokens)::int8
               FROM usage_events WHERE user_id = $1",
        )
        .bind(user.user_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        (n == 2).then(|| (input.unwrap_or(0), output.unwrap_or(0)))
    })
    .await
    .expect("both AI requests metered");
    let month = chrono::Utc::now().format("%Y-%m");
    let ingress = format!("http://{}", addr(dev.ports[4]));
    let synced = http
        .post(format!("{ingress}/UsageSync/{}:{month}/sync", user.user_id))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(
        synced.status().is_success(),
        "usage sync: {}",
        synced.status()
    );

    // The api reads its gauges from Postgres and Restate when scraped.
    let api_text = wait_for(Duration::from_secs(40), || async {
        let text = scrape(&api).await;
        let up = text.contains("poindexter_restate_admin_up 1\n");
        (up && text.contains("poindexter_usage_sync_last_success_timestamp_seconds "))
            .then_some(text)
    })
    .await
    .expect("the api reports the usage sync");
    let proxy_text = scrape(&dev.proxy).await;
    let workflows_text = scrape(&format!("http://{}", addr(dev.ports[2]))).await;
    let (api_m, proxy_m, wf_m) = (
        parse_samples(&api_text),
        parse_samples(&proxy_text),
        parse_samples(&workflows_text),
    );

    // The api: requests by route template, errors by kind, the Stripe webhooks and gauges.
    let deletes = total(
        &api_m,
        "poindexter_http_requests_total",
        &[
            ("route", "/v1/api-keys/{id}"),
            ("method", "DELETE"),
            ("status_class", "2xx"),
        ],
    );
    assert_eq!(deletes, 1.0, "{api_text}");
    for (route, kind) in [
        ("/v1/me", "unauthorized"),
        ("unmatched", "not_found"),
        ("/v1/billing/spending-cap", "bad_request"),
    ] {
        let n = total(
            &api_m,
            "poindexter_http_errors_total",
            &[("route", route), ("kind", kind)],
        );
        assert_eq!(n, 1.0, "{route} {kind}: {api_text}");
    }
    let latencies = total(
        &api_m,
        "poindexter_http_request_duration_seconds_count",
        &[("route", "/v1/api-keys/{id}")],
    );
    assert_eq!(latencies, 1.0);
    assert!(
        total(
            &api_m,
            "poindexter_webhook_events_total",
            &[("event", "checkout.session.completed")]
        ) >= 1.0,
        "{api_text}"
    );
    assert!(
        total(
            &api_m,
            "poindexter_webhook_lag_seconds_count",
            &[("provider", "stripe")]
        ) >= 1.0
    );
    assert_eq!(
        total(&api_m, "poindexter_signal_registrations_waiting", &[]),
        0.0
    );
    assert_eq!(total(&api_m, "poindexter_restate_admin_up", &[]), 1.0);
    let synced_at = total(
        &api_m,
        "poindexter_usage_sync_last_success_timestamp_seconds",
        &[],
    );
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - synced_at).abs() < 120.0,
        "last sync {synced_at}, now {now}"
    );

    // The proxy: both requests answered, their tokens counted exactly as metered.
    assert_eq!(
        total(
            &proxy_m,
            "poindexter_proxy_requests_total",
            &[("status_class", "2xx")]
        ),
        2.0
    );
    let (input, output) = metered;
    assert!(input > 0 && output > 0);
    let family = [("provider", "openai"), ("family", "gpt-4o-mini")];
    let tokens = |direction| {
        let mut with = family.to_vec();
        with.push(("direction", direction));
        total(&proxy_m, "poindexter_ai_tokens_total", &with)
    };
    assert_eq!(tokens("input"), input as f64, "{proxy_text}");
    assert_eq!(tokens("output"), output as f64, "{proxy_text}");
    assert_eq!(
        total(
            &proxy_m,
            "poindexter_proxy_request_duration_seconds_count",
            &[]
        ),
        2.0
    );

    // The workflows: one provisioning, started and succeeded, timed.
    assert_eq!(
        total(&wf_m, "poindexter_provisioning_started_total", &[]),
        1.0,
        "{workflows_text}"
    );
    assert_eq!(
        total(&wf_m, "poindexter_provisioning_succeeded_total", &[]),
        1.0
    );
    assert_eq!(
        total(&wf_m, "poindexter_provisioning_failed_total", &[]),
        0.0
    );
    assert_eq!(
        total(
            &wf_m,
            "poindexter_provisioning_time_to_active_seconds_count",
            &[]
        ),
        1.0
    );

    // Labels never carry ids, addresses or numbers.
    let email = user.identity["email"].as_str().unwrap();
    let phone = user.identity["phone"].as_str().unwrap();
    for s in api_m.iter().chain(&proxy_m).chain(&wf_m) {
        for (k, v) in &s.labels {
            let personal = v.contains(email) || v.contains(phone) || v.contains("watched@");
            let id = v
                .split(['/', ':'])
                .any(|p| uuid::Uuid::parse_str(p).is_ok());
            assert!(!personal && !id, "{}{{{k}={v}}}", s.name);
        }
    }

    // Every dashboard query names only metrics these processes export.
    let exported: BTreeSet<&str> = api_m
        .iter()
        .chain(&proxy_m)
        .chain(&wf_m)
        .map(|s: &Sample| s.name.as_str())
        .collect();
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "panel {title:?}: {expr} names no metric");
            for name in names {
                assert!(
                    exported.contains(name.as_str()),
                    "panel {title:?} queries {name}, which no process exports"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} metric references checked");

    dev.stop();
    dev.clean_up().await;
}

/// The `poindexter_…` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("poindexter_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Polls `probe` until it returns `Some`, or `limit` passes.
async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
