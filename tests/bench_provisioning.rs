//! Benchmark, not a test (ignored by the suite; `scripts/bench-provisioning` runs it):
//! N concurrent provisionings through the real stack with a fixed latency per provider call,
//! and beside them, on the same restate-server in the same run, Restate's own floor: a no-op
//! workflow served from this test binary with as many `ctx.run` steps as a provisioning, each
//! only sleeping the provider latency, started N at a time through the same ingress.
//! Prints wall time, throughput, p50/p99 per provisioning, the time between steps for ours and
//! for the floor (and the difference: what our code adds), the CPU each program spent per
//! provisioning and per floor run with how busy the cores were, and leaked resources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::stack::Stack;
use restate_sdk::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Milliseconds since the epoch: the wall clock the workflows process stamps our steps'
/// progress with (when a step began and ended its work), so both sides' gaps come from the
/// same clock.
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// ProvisionIdentity's `ctx.run`s: "mark provisioning", "load identity", then the six steps
/// whose progress rows the gaps are measured between.
const FLOOR_STEPS: usize = 8;
const FIRST_MEASURED: usize = 2;

/// (workflow key, step index, started, finished), ms since the epoch.
type StepTimes = Vec<(String, usize, f64, f64)>;

/// Restate's floor: the same number of journaled steps as a provisioning, nothing but the
/// provider latency inside them; each run's start and end are kept in memory.
struct BenchFloor {
    latency: Duration,
    steps: Arc<Mutex<StepTimes>>,
    finished: tokio::sync::mpsc::UnboundedSender<()>,
}

#[restate_sdk::workflow]
impl BenchFloor {
    #[handler]
    async fn run(&self, ctx: WorkflowContext<'_>) -> Result<(), HandlerError> {
        let key = ctx.key().to_owned();
        for i in 0..FLOOR_STEPS {
            let (steps, latency, key) = (self.steps.clone(), self.latency, key.clone());
            ctx.run(move || async move {
                let started = epoch_ms();
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                steps.lock().unwrap().push((key, i, started, epoch_ms()));
                Ok::<(), HandlerError>(())
            })
            .name(format!("step {i}"))
            .await?;
        }
        let _ = self.finished.send(());
        Ok(())
    }
}

/// Gaps from one measured step's end to the next one's start, per transition (the later
/// step's index), for every workflow.
fn floor_gaps(steps: &StepTimes) -> BTreeMap<usize, Vec<f64>> {
    let mut by_key: BTreeMap<&str, Vec<(usize, f64, f64)>> = BTreeMap::new();
    for (key, i, start, end) in steps {
        by_key.entry(key).or_default().push((*i, *start, *end));
    }
    let mut gaps: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for runs in by_key.values_mut() {
        runs.sort_by_key(|r| r.0);
        for pair in runs.windows(2) {
            if pair[0].0 >= FIRST_MEASURED && pair[1].0 == pair[0].0 + 1 {
                gaps.entry(pair[1].0)
                    .or_default()
                    .push(pair[1].1 - pair[0].2);
            }
        }
    }
    gaps
}

/// CPU seconds each program has used so far (utime + stime of every process, by its command
/// name), and the machine's busy and total ticks: where a phase's CPU went, and how full the
/// two cores were while it ran. A process that exits within a phase takes its CPU with it (its
/// program's sum can then fall, and the phase is not counted for it): every process measured
/// here (restate-server, the workflows process, the pools' Postgres backends) lives through
/// the whole run.
#[derive(Default)]
struct CpuUse {
    by_program: BTreeMap<String, f64>,
    busy: f64,
    all: f64,
}

impl CpuUse {
    fn now() -> Self {
        let mut by_program = BTreeMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some((_, rest)), Some(name)) = (
                stat.rsplit_once(')'),
                stat.split_once('(')
                    .and_then(|(_, n)| n.rsplit_once(')'))
                    .map(|(n, _)| n),
            ) else {
                continue;
            };
            let f: Vec<f64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect();
            // A kernel worker's name ends in the work it did last ("kworker/1:1-events", "+"
            // while at it): keyed by that, the same thread looked new whenever its work
            // changed, and its whole lifetime's CPU was counted to the phase.
            let name = match name.split_once(['-', '+']) {
                Some((worker, _)) if name.starts_with("kworker/") => worker,
                _ => name,
            };
            if f.len() > 12 {
                *by_program.entry(name.to_owned()).or_insert(0.0) += (f[11] + f[12]) / 100.0;
            }
        }
        let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> = machine
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        let all: f64 = ticks.iter().sum();
        // idle and iowait are not busy.
        let busy = all - ticks.get(3).unwrap_or(&0.0) - ticks.get(4).unwrap_or(&0.0);
        Self {
            by_program,
            busy,
            all,
        }
    }

    /// Adds what was used from `before` to now.
    fn add_since(&mut self, before: &CpuUse) {
        let now = CpuUse::now();
        for (name, t) in &now.by_program {
            // A program that started in between counts from zero.
            let used = t - before.by_program.get(name).copied().unwrap_or(0.0);
            if used > 0.0 {
                *self.by_program.entry(name.clone()).or_insert(0.0) += used;
            }
        }
        self.busy += now.busy - before.busy;
        self.all += now.all - before.all;
    }

    /// "restate-server 6.8 ms, postgres …" (CPU per run, `per` runs), the busiest five first,
    /// and how busy all cores were.
    fn summary(&self, per: usize) -> String {
        let mut top: Vec<(&String, &f64)> = self
            .by_program
            .iter()
            .filter(|(_, t)| **t >= 0.05)
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(a.1));
        let parts: Vec<String> = top
            .iter()
            .take(5)
            .map(|(name, t)| format!("{name} {:.1} ms", **t * 1000.0 / per.max(1) as f64))
            .collect();
        let busy = if self.all > 0.0 {
            self.busy * 100.0 / self.all
        } else {
            0.0
        };
        format!("{}; all cores {busy:.0}% busy", parts.join(", "))
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls (briefly, so a batch's end is not rounded up) until `sql`'s count reaches `want`.
async fn wait_count(stack: &Stack, sql: &str, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&stack.db.pool).await.unwrap();
        if n >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {n}/{want} {what} in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with scripts/bench-provisioning"]
async fn bench_provisioning() {
    let n: usize = env_or("BENCH_N", 200);
    let latency: u64 = env_or("BENCH_LATENCY_MS", 50);
    // Batches of N one after the other, at least three and enough for 20 provisionings: one
    // at a time still gives a p99 of something.
    let rounds: usize = env_or("BENCH_ROUNDS", 20_usize.div_ceil(n).max(3));
    let stack = Stack::start(&[("PROVIDER_TIMEOUT_MS", "30000")]).await;

    // The floor's endpoint: served by the same code as ours (workflows::serve), registered on
    // the same restate-server as a second deployment.
    let floor_steps = Arc::new(Mutex::new(Vec::new()));
    let (finished_tx, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let endpoint = Endpoint::builder()
        .bind(BenchFloor {
            latency: Duration::from_millis(latency),
            steps: floor_steps.clone(),
            finished: finished_tx,
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let floor_uri = format!("http://{}", listener.local_addr().unwrap());
    let (stop_floor, floor_stopped) = tokio::sync::oneshot::channel::<()>();
    let floor_server = tokio::spawn(workflows::serve(
        listener,
        endpoint,
        axum::Router::new(),
        async move {
            let _ = floor_stopped.await;
        },
    ));
    stack.restate().register(&floor_uri).await;
    let ingress = stack.restate().ingress.clone();
    let start_floor = |keys: Vec<String>| {
        let (http, ingress) = (stack.http.clone(), ingress.clone());
        async move {
            let mut sends = tokio::task::JoinSet::new();
            for key in keys {
                let (http, ingress) = (http.clone(), ingress.clone());
                sends.spawn(async move {
                    let res = http
                        .post(format!("{ingress}/BenchFloor/{key}/run/send"))
                        .send()
                        .await
                        .unwrap();
                    assert!(res.status().is_success(), "{}", res.status());
                });
            }
            while sends.join_next().await.is_some() {}
        }
    };

    // A fresh restate-server takes about half a second to run its first invocation (measured:
    // every identity of the first batch waited ~500 ms before its first step, while on a
    // running `poindexter dev` a provisioning is active ~80 ms after it is created). One
    // provisioning and one floor run first, not counted, so the figures are those of a
    // running system.
    let (warm, _) = stack
        .provisioned("warmup@example.com", &["active"], Duration::from_secs(60))
        .await;
    start_floor(vec!["warmup".into()]).await;
    finished.recv().await.unwrap();
    floor_steps.lock().unwrap().clear();
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

    // Each round: a batch of the floor, then a batch of ours, N at a time, so both see the
    // same machine (this one is shared, and its load drifts within a run).
    let mut users = Vec::with_capacity(n * rounds);
    for i in 0..n * rounds {
        users.push(stack.user(&format!("bench{i}@example.com")).await);
    }
    let (mut wall, mut floor_wall) = (Duration::ZERO, Duration::ZERO);
    let (mut floor_cpu, mut ours_cpu) = (CpuUse::default(), CpuUse::default());
    let started = Instant::now();
    for (round, batch) in users.chunks(n).enumerate() {
        let floor_started = Instant::now();
        let before = CpuUse::now();
        start_floor((0..n).map(|i| format!("r{round}-{i}")).collect()).await;
        for _ in 0..n {
            finished.recv().await.unwrap();
        }
        floor_cpu.add_since(&before);
        floor_wall += floor_started.elapsed();

        let batch_started = Instant::now();
        let before = CpuUse::now();
        let mut requests = tokio::task::JoinSet::new();
        for &user in batch {
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
        let done = ((round + 1) * n) as i64;
        wait_count(
            &stack,
            "SELECT count(*) FROM identities WHERE status IN ('active', 'failed')",
            done,
            "provisionings finished",
        )
        .await;
        ours_cpu.add_since(&before);
        wall += batch_started.elapsed();
        // Then Signal (registered for every active identity; the code arrives by SMS
        // webhook), so no batch overlaps the one before it.
        wait_count(
            &stack,
            "SELECT count(*) FROM identities WHERE status = 'failed'
             OR signal_status IN ('registered', 'failed')",
            done,
            "Signal registrations settled",
        )
        .await;
    }
    let floor_by_step = floor_gaps(&floor_steps.lock().unwrap());
    let floor_all = sorted(floor_by_step.values().flatten().copied().collect());
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
    let per = sorted(rows.into_iter().map(|r| r.0).collect());
    // Inside steps (provider calls) versus between steps (Restate journaling and dispatch, and
    // our bookkeeping): every step's duration, and every gap from one step's end to the next
    // one's start, by the later step.
    let rows: Vec<(i32, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT position, EXTRACT(EPOCH FROM (finished_at - started_at))::float8 * 1000,
                EXTRACT(EPOCH FROM (started_at - lag(finished_at)
                    OVER (PARTITION BY identity_id ORDER BY position)))::float8 * 1000
         FROM provisioning_steps WHERE started_at IS NOT NULL",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let inside: Vec<f64> = rows.iter().filter_map(|r| r.1).collect();
    let mut ours_by_step: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (position, _, gap) in &rows {
        if let Some(gap) = gap {
            ours_by_step
                .entry(*position as usize + FIRST_MEASURED)
                .or_default()
                .push(*gap);
        }
    }
    let ours_all = sorted(ours_by_step.values().flatten().copied().collect());
    let (inside, between) = (mean(&inside), mean(&ours_all));
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
    let total = n * rounds;
    let active = total - failed as usize;

    println!(
        "provisioning benchmark: {n} concurrent, {latency} ms per provider call, {rounds} round(s)"
    );
    println!("  wall time            {:.2} s", wall.as_secs_f64());
    println!(
        "  Signal registered    all {:.2} s after the start ({signal_failed} failed)",
        signal_wall.as_secs_f64()
    );
    println!(
        "  throughput           {:.1} provisionings/s",
        total as f64 / wall.as_secs_f64()
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
        percentile(&ours_all, 0.50), percentile(&ours_all, 0.99));
    println!(
        "  Restate's floor      {FLOOR_STEPS} no-op ctx.run steps sleeping {latency} ms, {n} at a time: {:.2} s wall",
        floor_wall.as_secs_f64()
    );
    let (o50, o99) = (percentile(&ours_all, 0.5), percentile(&ours_all, 0.99));
    let (f50, f99) = (percentile(&floor_all, 0.5), percentile(&floor_all, 0.99));
    println!("  between steps, ms    ours p50 {o50:.2} p99 {o99:.2} | floor p50 {f50:.2} p99 {f99:.2} | ours adds p50 {:.2} p99 {:.2}",
        o50 - f50, o99 - f99);
    // On two cores at 200 at a time, ours fills the machine (Restate carries the Signal
    // registrations and more journal entries besides the steps) while the floor does not:
    // then ours' gaps are a queue for the CPU, which the floor never meets.
    println!(
        "  CPU a provisioning   ours: {}",
        ours_cpu.summary(n * rounds)
    );
    println!(
        "  CPU a floor run      floor: {}",
        floor_cpu.summary(n * rounds)
    );
    println!("  by transition, ms    (ours p50/p99 | floor p50/p99; before `activate` ours also sends Signal's registration)");
    let names = [
        "",
        "",
        "",
        "credentials",
        "phone_number",
        "messaging",
        "signal",
        "activate",
    ];
    for (i, name) in names.iter().enumerate().skip(FIRST_MEASURED + 1) {
        let o = sorted(ours_by_step.get(&i).cloned().unwrap_or_default());
        let f = sorted(floor_by_step.get(&i).cloned().unwrap_or_default());
        println!(
            "    → {name:<14} {:>7.2} / {:>7.2} | {:>7.2} / {:>7.2}",
            percentile(&o, 0.5),
            percentile(&o, 0.99),
            percentile(&f, 0.5),
            percentile(&f, 0.99)
        );
    }
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
    let _ = stop_floor.send(());
    let _ = floor_server.await;
    stack.stop().await;
}
