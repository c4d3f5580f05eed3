//! Benchmark, not a test (ignored by the suite; `scripts/bench-provisioning` runs it):
//! N concurrent provisionings through the real stack with a fixed latency per provider call.
//! Prints wall time, throughput, p50/p99 per provisioning, the time Restate and our bookkeeping
//! add between steps beside the time spent inside steps (provider calls), and leaked resources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::stack::Stack;
use serde_json::json;
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with scripts/bench-provisioning"]
async fn bench_provisioning() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let latency: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let stack = Stack::start(&[("PROVIDER_TIMEOUT_MS", "30000")]).await;
    // A fresh restate-server takes about half a second to run its first invocation (measured:
    // every identity of the first batch waited ~500 ms before its first step, while on a
    // running `poindexter dev` a provisioning is active ~80 ms after it is created). One
    // provisioning first, not counted, so the figures are those of a running system.
    let warm = stack.user("warmup@example.com").await;
    stack.provision(warm).await;
    stack
        .wait_status(warm, &["active"], Duration::from_secs(60))
        .await;
    sqlx::query("DELETE FROM identities WHERE user_id = $1")
        .bind(warm)
        .execute(&stack.db.pool)
        .await
        .unwrap();
    stack
        .sandbox
        .http
        .post(format!("{}/_sandbox/reset", stack.sandbox.url))
        .send()
        .await
        .unwrap();
    stack
        .sandbox
        .http
        .put(format!("{}/_sandbox/latency", stack.sandbox.url))
        .json(&json!({"google": latency, "telnyx": latency, "signal": latency}))
        .send()
        .await
        .unwrap();
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        users.push(stack.user(&format!("bench{i}@example.com")).await);
    }

    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for &user in &users {
        let (http, api) = (stack.http.clone(), stack.api.clone());
        requests.spawn(async move {
            let res = http
                .post(format!("{api}/v1/admin/provision/{user}"))
                .bearer_auth(common::api::ADMIN_TOKEN)
                .json(&json!({"plan": "basic"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
        });
    }
    while requests.join_next().await.is_some() {}

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (done,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM identities WHERE status IN ('active', 'failed')")
                .fetch_one(&stack.db.pool)
                .await
                .unwrap();
        if done as usize == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done}/{n} finished in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    // Then Signal: registered for every active identity (the code arrives by SMS webhook).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM identities WHERE status = 'active'
             AND signal_status NOT IN ('registered', 'failed')",
        )
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} Signal registrations unfinished after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signal_wall = started.elapsed();
    let (signal_failed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM identities WHERE signal_status = 'failed'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();

    // Per provisioning: identity created → activate step finished.
    let rows: Vec<(f64,)> = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM (s.finished_at - i.created_at))::float8 * 1000
         FROM identities i JOIN provisioning_steps s ON s.identity_id = i.id AND s.step = 'activate'
         WHERE i.status = 'active'",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let mut per: Vec<f64> = rows.into_iter().map(|r| r.0).collect();
    per.sort_by(f64::total_cmp);
    // Inside steps (provider calls) versus between steps (Restate journaling and dispatch):
    // every step's duration, and every gap from one step's end to the next one's start.
    let (inside, gaps): (Vec<f64>, Vec<f64>) = {
        let rows: Vec<(Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT EXTRACT(EPOCH FROM (finished_at - started_at))::float8 * 1000,
                    EXTRACT(EPOCH FROM (started_at - lag(finished_at)
                        OVER (PARTITION BY identity_id ORDER BY position)))::float8 * 1000
             FROM provisioning_steps WHERE started_at IS NOT NULL",
        )
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
        (
            rows.iter().filter_map(|r| r.0).collect(),
            rows.iter().filter_map(|r| r.1).collect(),
        )
    };
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (inside, between) = (mean(&inside), mean(&gaps));
    let mut gaps = gaps;
    gaps.sort_by(f64::total_cmp);
    // One identity's timeline: where the time from created to active goes.
    let timeline: Vec<(String, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT s.step, EXTRACT(EPOCH FROM (s.started_at - i.created_at))::float8 * 1000,
                EXTRACT(EPOCH FROM (s.finished_at - i.created_at))::float8 * 1000
         FROM provisioning_steps s JOIN identities i ON i.id = s.identity_id
         WHERE i.id = (SELECT id FROM identities WHERE status = 'active' ORDER BY created_at LIMIT 1)
         ORDER BY s.position",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let (failed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM identities WHERE status = 'failed'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    let resources = stack.sandbox.resources().await;
    let live_users = resources["google"]["users"]
        .as_array()
        .map_or(0, |a| a.len());
    let live_numbers = resources["telnyx"]["numbers"]
        .as_array()
        .map_or(0, |a| a.len());
    let active = n - failed as usize;

    println!("provisioning benchmark: {n} concurrent, {latency} ms per provider call");
    println!("  wall time            {:.2} s", wall.as_secs_f64());
    println!(
        "  Signal registered    all {:.2} s after the start ({signal_failed} failed)",
        signal_wall.as_secs_f64()
    );
    println!(
        "  throughput           {:.1} provisionings/s",
        n as f64 / wall.as_secs_f64()
    );
    println!(
        "  per provisioning     p50 {:.0} ms, p99 {:.0} ms",
        percentile(&per, 0.5),
        percentile(&per, 0.99)
    );
    println!(
        "  inside a step        {inside:.1} ms on average (provider calls at {latency} ms each)"
    );
    println!("  between steps        {between:.1} ms on average, p50 {:.1} ms, p99 {:.1} ms (Restate journaling + dispatch + bookkeeping)",
        percentile(&gaps, 0.50), percentile(&gaps, 0.99));
    println!("  one identity, ms after it was created (step: started → finished):");
    for (step, started, finished) in &timeline {
        let at = |t: &Option<f64>| t.map_or("-".to_owned(), |t| format!("{t:.1}"));
        println!("    {step:<16} {} → {}", at(started), at(finished));
    }
    println!(
        "  overhead ratio       {:.2} (between / inside)",
        if inside > 0.0 { between / inside } else { 0.0 }
    );
    println!("  active / failed      {active} / {failed}");
    println!("  workspace users      {live_users} (expected {active})");
    println!("  phone numbers        {live_numbers} (expected {active})");
    println!(
        "  leaked resources     {}",
        (live_users + live_numbers).saturating_sub(2 * active)
    );
    stack.stop().await;
}
