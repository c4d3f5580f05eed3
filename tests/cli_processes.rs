//! The `poindexter` binary as an operator runs it: every component starts, serves its ops
//! routes and stops cleanly on SIGTERM; bad configuration stops start-up with one clear line;
//! `dev` brings up the whole stack and takes every child down with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{api_env, full_env, ADMIN_TOKEN};
use common::db::TestDb;
use common::dev::DevStack;
use common::ports::free_port;
use common::process::{wait_healthy, Proc};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn every_component_serves_ops_routes_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    for (sub, var) in [
        ("api", "API_ADDR"),
        ("proxy", "PROXY_ADDR"),
        ("workflows", "WORKFLOWS_ADDR"),
        ("sandbox", "SANDBOX_ADDR"),
    ] {
        let port = free_port();
        let mut env = full_env(&db.url);
        env.insert(var.into(), format!("127.0.0.1:{port}"));
        let mut p = Proc::poindexter(sub, &env);
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&format!("{base}/healthz"), Duration::from_secs(30)).await;
        let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "{sub} not ready");
        let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(metrics.status(), 200);
        assert!(metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));

        p.signal(libc::SIGTERM);
        let status = p
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{sub} ignored SIGTERM"));
        assert!(status.success(), "{sub} exited with {status}");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{sub} still listening"
        );
    }
    db.drop().await;
}

#[tokio::test]
async fn readiness_reports_an_unreachable_database() {
    let port = free_port();
    let mut env = api_env(&format!(
        "postgres://postgres@127.0.0.1:{}/nope",
        free_port()
    ));
    env.insert("API_ADDR".into(), format!("127.0.0.1:{port}"));
    let _p = Proc::poindexter("api", &env);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&format!("{base}/healthz"), Duration::from_secs(30)).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["dependencies"]["postgres"], "unreachable");
}

fn run_api_with(env: &[(&str, &str)], remove: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poindexter"));
    cmd.arg("api");
    for (k, v) in api_env("postgres://postgres@127.0.0.1:5432/unused") {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 4] = [
        (&[], &["JWT_SECRET"], "JWT_SECRET"),
        (&[("ENCRYPTION_KEY", "zz")], &[], "ENCRYPTION_KEY"),
        (&[("API_ADDR", "not-an-address")], &[], "API_ADDR"),
        (&[("STRIPE_API_BASE", "ftp://x")], &[], "STRIPE_API_BASE"),
    ];
    for (set, remove, var) in cases {
        let (code, stderr) = run_api_with(set, remove);
        assert_eq!(code, Some(2), "{var}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
        assert!(lines[0].contains(var), "{var} not named in: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_poindexter"))
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command"));
}

#[test]
fn migrate_creates_a_missing_database() {
    let name = format!("pdx_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", common::db::server_url());
    let out = Command::new(env!("CARGO_BIN_EXE_poindexter"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = db::connect(&url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
        pool.close().await;
        db::drop_database(&url).await.unwrap();
    });
}

/// Pids of live processes whose parent is `parent`.
/// The `poindexter proxy` child of `parent`, if one runs.
fn proxy_child(parent: i32) -> Option<i32> {
    children_of(parent).into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/cmdline"))
            .unwrap_or_default()
            .ends_with("proxy\0")
    })
}

fn children_of(parent: i32) -> Vec<i32> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state, ppid, ...
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent)
            && fields.first() != Some(&"Z")
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_runs_the_whole_stack_and_stops_every_child() {
    let mut dev = DevStack::start(&[]).await;
    let api = dev.api.clone();

    // The api works end to end, and the explicitly set admin token won over the default.
    let client = reqwest::Client::new();
    let reg = client
        .post(format!("{api}/v1/auth/register"))
        .json(&json!({"email": "dev@example.com", "password": "correct horse 42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let users = client
        .get(format!("{api}/v1/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);

    // A crashed child is restarted.
    let kids = children_of(dev.proc.pid());
    assert!(
        kids.len() >= 5,
        "expected restate-server and four components, got {kids:?}"
    );
    let proxy_pid = proxy_child(dev.proc.pid()).expect("proxy child");
    // SAFETY: signalling a process this test tree started.
    unsafe { libc::kill(proxy_pid, libc::SIGKILL) };
    // A new proxy process (not the killed one still dying), and it serves.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if proxy_child(dev.proc.pid()).is_some_and(|p| p != proxy_pid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed proxy was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_healthy(&format!("{}/healthz", dev.proxy), Duration::from_secs(30)).await;

    // SIGTERM takes everything down: no child left, no port still open.
    let kids = children_of(dev.proc.pid());
    dev.stop();
    for pid in kids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} survived dev"
        );
    }
    for p in &dev.ports[..6] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *p)).is_err(),
            "port {p} still open after dev stopped"
        );
    }
    dev.clean_up().await;
}
