//! The workflows endpoint under a real restate-server: registration, invocation, and a crash of
//! the workflows process in the middle of an invocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::full_env;
use common::db::TestDb;
use common::ports::free_port;
use common::process::{wait_healthy, Proc, Started};
use common::restate::Restate;
use domain::Month;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn start_workflows(db_url: &str, port: u16) -> Proc {
    let mut env = full_env(db_url);
    env.insert("WORKFLOWS_ADDR".into(), format!("127.0.0.1:{port}"));
    let p = Proc::poindexter("workflows", &env);
    wait_healthy(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
    )
    .await;
    p
}

async fn lock_waiters(pool: &sqlx::PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query ILIKE '%ensure_usage_partition%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

async fn created_audits(pool: &sqlx::PgPool, month: Month) -> i64 {
    db::audit::count(
        pool,
        "usage_partition.created",
        json!({"month": month.to_string()}),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_interrupted_by_a_crash_completes_after_restart_exactly_once() {
    let db = TestDb::new().await;
    let restate = Restate::start().await;
    let port = free_port();
    let mut workflows = start_workflows(&db.url, port).await;
    restate.register(&format!("http://127.0.0.1:{port}")).await;

    let this = Month::containing(chrono::Utc::now().date_naive());
    let months: Vec<Month> = std::iter::successors(Some(this), |m| Some(m.next()))
        .take(5)
        .collect();
    // The migration prepared this month and the next two; months 3 and 4 are new.
    assert!(db::partitions::exists(&db.pool, months[2]).await.unwrap());
    assert!(!db::partitions::exists(&db.pool, months[3]).await.unwrap());

    // Hold the parent table so the step creating month 3 blocks inside its ctx.run.
    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE usage_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();

    let client = reqwest::Client::new();
    let sent: Value = client
        .post(format!(
            "{}/UsageScheduler/global/ensure_partitions/send",
            restate.ingress
        ))
        .header("idempotency-key", "crash-test-1")
        .json(&json!({"months_ahead": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invocation = sent["invocationId"]
        .as_str()
        .expect("invocation id")
        .to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    while lock_waiters(&db.pool).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the step never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Crash the workflows process mid-step; the invocation must not be complete.
    workflows.kill9();
    let rows = restate
        .query(&format!(
            "SELECT status FROM sys_invocation WHERE id = '{invocation}'"
        ))
        .await;
    assert_eq!(
        rows.len(),
        1,
        "invocation {invocation} not found in sys_invocation"
    );
    assert_ne!(rows[0]["status"], json!("completed"), "{rows:?}");

    let workflows = start_workflows(&db.url, port).await;
    blocker.commit().await.unwrap();

    let output: Value = tokio::time::timeout(
        Duration::from_secs(90),
        client
            .get(format!(
                "{}/restate/invocation/{invocation}/attach",
                restate.ingress
            ))
            .send(),
    )
    .await
    .expect("invocation completed after restart")
    .unwrap()
    .json()
    .await
    .unwrap();
    let names = |ms: &[Month]| ms.iter().map(|m| json!(m.to_string())).collect::<Vec<_>>();
    assert_eq!(output["created"], json!(names(&months[3..])), "{output}");
    assert_eq!(output["existing"], json!(names(&months[..3])), "{output}");

    for m in &months[3..] {
        assert!(db::partitions::exists(&db.pool, *m).await.unwrap());
        assert_eq!(
            created_audits(&db.pool, *m).await,
            1,
            "partition {m} created exactly once"
        );
    }

    // The same request again (same idempotency key) is answered from Restate, not re-run.
    let again: Value = client
        .post(format!(
            "{}/UsageScheduler/global/ensure_partitions",
            restate.ingress
        ))
        .header("idempotency-key", "crash-test-1")
        .json(&json!({"months_ahead": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, output);
    // A fresh request finds everything in place and creates nothing.
    let fresh: Value = client
        .post(format!(
            "{}/UsageScheduler/global/ensure_partitions",
            restate.ingress
        ))
        .json(&json!({"months_ahead": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fresh["created"], json!([]));
    for m in &months[3..] {
        assert_eq!(created_audits(&db.pool, *m).await, 1);
    }

    // Bad input is a terminal error, not an endless retry.
    let bad = client
        .post(format!(
            "{}/UsageScheduler/global/ensure_partitions",
            restate.ingress
        ))
        .json(&json!({"months_ahead": 500}))
        .send()
        .await
        .unwrap();
    // A terminal error: Restate's ingress answers with its code (500 by default).
    assert_eq!(bad.status(), 500);
    assert!(bad.text().await.unwrap().contains("at most 24"));
    // The workflows process first: while it runs it may connect again, and the drop would wait.
    drop(workflows);
    drop(restate);
    db.drop().await;
}

/// What the test stacks' restart on other ports relies on: a restate-server whose port was
/// taken between finding it free and binding it exits at once and says so, so the start is
/// noticed at once (not after a minute of health checks) and retried.
#[tokio::test(flavor = "multi_thread")]
async fn a_restate_server_whose_port_is_taken_exits_at_once_saying_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node = taken.local_addr().unwrap().port();
    let (ingress, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("pdx-restate-{}", uuid::Uuid::new_v4().simple()));
    let env = common::restate::env(ingress, admin, node);
    let dir_arg = dir.display().to_string();
    let mut server = Proc::spawn(
        "restate-server",
        &common::restate::binary(),
        &["--base-dir", &dir_arg],
        &env,
    );
    let started = Instant::now();
    let health = format!("http://127.0.0.1:{admin}/health");
    match server.wait_started(&health, Duration::from_secs(60)).await {
        Started::Exited(why) => assert!(why.contains("Address in use"), "{why}"),
        Started::Healthy => panic!("started on a port another socket holds"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    drop(taken);
    let _ = std::fs::remove_dir_all(dir);
}

/// Ports for test processes come from below the kernel's ephemeral range, which outgoing
/// connections draw from, and from one counter for every test process, so no two callers get
/// the same port (picked at random, 400 of 12,768 would almost surely repeat one).
#[test]
fn ports_for_test_processes_are_free_distinct_and_outside_the_ephemeral_range() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let lowest: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let pickers: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..100).map(|_| free_port()).collect::<Vec<_>>()))
        .collect();
    let ports: Vec<u16> = pickers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    for &port in &ports {
        assert!(common::ports::PICKED.contains(&port), "{port}");
        assert!(port < lowest, "{port} is in the ephemeral range {range}");
    }
    std::net::TcpListener::bind(("127.0.0.1", ports[0])).expect("the port is free");
}
