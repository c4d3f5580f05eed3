//! A Postgres outage delays usage writes but loses none and doubles none: 1,000 requests
//! while a test-owned Postgres is stopped for a few seconds leave exactly 1,000 usage events
//! whose token totals match what the clients were told.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use proxy_support as ps;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REQUESTS: usize = 1_000;
const WORKERS: usize = 8;

/// The proxy's count of usage events spilled to disk.
async fn spilled(metrics_url: &str) -> f64 {
    let metrics = reqwest::get(metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("poindexter_usage_spilled_events_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `done` reaches `n` (polling: the workers only count).
async fn served_at_least(done: &AtomicUsize, n: usize) {
    while done.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_survives_a_database_outage_exactly_once() {
    server::metrics::handle();
    let pg = Arc::new(ps::pg::OwnPostgres::start());
    let url = pg.url("poindexter_outage");
    let pool = db::create_and_migrate(&url).await.unwrap();
    let user = ps::user(&pool, Some(("pro", "active")), None).await;
    let sandbox = ps::start_sandbox().await;
    let proxy = ps::RunningProxy::start(ps::options(&url, sandbox)).await;
    pool.close().await;

    let done = Arc::new(AtomicUsize::new(0));
    // The outage, placed by the load itself: Postgres stops once 150 requests are served and
    // starts again once 300 more have been served while it was down and the proxy has
    // spilled events to disk (its writer notices the outage in its own time).
    let metrics_url = proxy.url("/metrics");
    let outage = {
        let (pg, done) = (pg.clone(), done.clone());
        tokio::spawn(async move {
            served_at_least(&done, 150).await;
            let pg2 = pg.clone();
            tokio::task::spawn_blocking(move || pg2.stop())
                .await
                .unwrap();
            let at_stop = done.load(Ordering::SeqCst);
            served_at_least(&done, (at_stop + 300).min(REQUESTS)).await;
            while spilled(&metrics_url).await == 0.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::task::spawn_blocking(move || pg.start_again())
                .await
                .unwrap();
            (at_stop, done.load(Ordering::SeqCst))
        })
    };
    let c = ps::client();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let c = c.clone();
        let url = proxy.url("/v1/chat/completions");
        let key = user.key.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let (mut input, mut output) = (0i64, 0i64);
            for i in 0..REQUESTS / WORKERS {
                // Alternate streamed and whole answers; both report usage to the client.
                let stream = (w + i) % 2 == 0;
                let mut body = ps::chat_body("gpt-4o-mini", stream);
                if stream {
                    body["stream_options"] = json!({"include_usage": true});
                }
                let res = c
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let usage = if stream {
                    let text = res.text().await.unwrap();
                    let last = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .rfind(|d| d.contains("\"usage\":{"))
                        .unwrap()
                        .to_owned();
                    serde_json::from_str::<Value>(&last).unwrap()["usage"].clone()
                } else {
                    res.json::<Value>().await.unwrap()["usage"].clone()
                };
                input += usage["prompt_tokens"].as_i64().unwrap();
                output += usage["completion_tokens"].as_i64().unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                // Paced (about 200 requests/s in all), so the load outlasts the outage.
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            (input, output)
        }));
    }
    // The outage ends once 300 requests were served and events spilled during it, or this
    // fails in time.
    let (at_stop, at_start) = tokio::time::timeout(Duration::from_secs(120), outage)
        .await
        .expect("while Postgres was down the proxy stopped serving or never spilled")
        .unwrap();
    let (mut input, mut output) = (0, 0);
    for w in workers {
        let (i, o) = w.await.unwrap();
        input += i;
        output += o;
    }
    assert_eq!(done.load(Ordering::SeqCst), REQUESTS);
    assert!(
        at_start - at_stop > 50,
        "served {at_stop}..{at_start} while Postgres was down"
    );

    // Every event arrives once the database is back.
    let pool = db::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (count, distinct, sum_in, sum_out) = loop {
        let row: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT request_id), COALESCE(sum(input_tokens), 0)::bigint,
                    COALESCE(sum(output_tokens), 0)::bigint
             FROM usage_events WHERE user_id = $1",
        )
        .bind(user.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        if row.0 as usize >= REQUESTS || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(count as usize, REQUESTS, "usage events lost");
    assert_eq!(distinct, count, "an event was written twice");
    assert_eq!(
        (sum_in, sum_out),
        (input, output),
        "token totals differ from what clients saw"
    );

    // And the outage really went through the spill file.
    assert!(
        spilled(&proxy.url("/metrics")).await > 0.0,
        "no event was spilled during the outage"
    );

    proxy.stop().await;
    pool.close().await;
}
