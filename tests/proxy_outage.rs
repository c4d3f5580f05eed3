//! A Postgres outage delays usage writes but loses none and doubles none: 1,000 requests
//! while a test-owned Postgres is stopped for a few seconds leave exactly 1,000 usage events
//! whose token totals match what the clients were told.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proxy_support;

use proxy_support as ps;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REQUESTS: usize = 1_000;
const WORKERS: usize = 8;

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
    let started = Instant::now();
    // The outage: from about 1 s into the run, for 3 s.
    let outage = {
        let pg = pg.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let pg2 = pg.clone();
            tokio::task::spawn_blocking(move || pg2.stop())
                .await
                .unwrap();
            let stopped_at = started.elapsed();
            tokio::time::sleep(Duration::from_secs(3)).await;
            tokio::task::spawn_blocking(move || pg.start_again())
                .await
                .unwrap();
            (stopped_at, started.elapsed())
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
            let (mut input, mut output, mut served_in_outage) = (0i64, 0i64, 0usize);
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
                let t = started.elapsed();
                if t > Duration::from_millis(1_200) && t < Duration::from_millis(3_800) {
                    served_in_outage += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
                // Spread the load over ~6 s so the outage falls in the middle of it.
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            (input, output, served_in_outage)
        }));
    }
    let (mut input, mut output, mut in_outage) = (0, 0, 0);
    for w in workers {
        let (i, o, n) = w.await.unwrap();
        input += i;
        output += o;
        in_outage += n;
    }
    let (stopped_at, restarted_at) = outage.await.unwrap();
    assert_eq!(done.load(Ordering::Relaxed), REQUESTS);
    assert!(
        in_outage > 50,
        "only {in_outage} requests were served while Postgres was down ({stopped_at:?}..{restarted_at:?})"
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
    let metrics = reqwest::get(proxy.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spilled: f64 = metrics
        .lines()
        .find(|l| l.starts_with("poindexter_usage_spilled_events_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(spilled > 0.0, "no event was spilled during the outage");

    proxy.stop().await;
    pool.close().await;
}
