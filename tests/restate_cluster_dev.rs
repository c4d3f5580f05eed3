//! `poindexter dev --restate-nodes 3` as an operator runs it (free ports, its own database and
//! data folder): three Restate nodes in one cluster, every partition led, the workflows
//! deployment registered, a provisioning through the api; Ctrl-C (SIGTERM) stops every node,
//! and the next run starts again on the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::ADMIN_TOKEN;
use common::dev::addr;
use common::ports::free_port;
use common::process::{wait_healthy, Proc};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("http://{}", addr(*p)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Until dev prints its banner: its set-up (partition leaders, registration) is done.
async fn wait_banner(dev: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let log = std::fs::read_to_string(&dev.log).unwrap_or_default();
        if log.contains("Poindexter Cloud is running") {
            return;
        }
        assert!(Instant::now() < deadline, "dev not ready:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn answers_query(admin: &str) -> bool {
    reqwest::Client::new()
        .post(format!("{admin}/query"))
        .header("accept", "application/json")
        .json(&json!({"query": "SELECT count(*) FROM sys_invocation"}))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_runs_a_three_node_cluster_and_stops_and_restarts_it() {
    let db_name = format!("pdx_test_{}", uuid::Uuid::new_v4().simple());
    let db_url = format!("{}/{db_name}", common::db::server_url());
    let data = std::env::temp_dir().join(format!("pdx-dev-{}", uuid::Uuid::new_v4().simple()));
    let [api, proxy, workflows, sandbox] = [free_port(), free_port(), free_port(), free_port()];
    let ingress: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let admin: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let env: HashMap<String, String> = [
        ("DATABASE_URL", db_url.clone()),
        ("API_ADDR", addr(api)),
        ("PROXY_ADDR", addr(proxy)),
        ("WORKFLOWS_ADDR", addr(workflows)),
        ("SANDBOX_ADDR", addr(sandbox)),
        ("RESTATE_INGRESS_URL", list(&ingress)),
        ("RESTATE_ADMIN_URL", list(&admin)),
        (
            "POINDEXTER_RESTATE_NODE_PORTS",
            nodes
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("POINDEXTER_DATA_DIR", data.display().to_string()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let api_url = format!("http://{}", addr(api));
    let admins: Vec<String> = admin
        .iter()
        .map(|p| format!("http://{}", addr(*p)))
        .collect();
    let start = || {
        Proc::spawn(
            "dev",
            env!("CARGO_BIN_EXE_poindexter"),
            &["dev", "--restate-nodes", "3"],
            &env,
        )
    };

    let mut dev = start();
    wait_banner(&dev).await;
    wait_healthy(&format!("{api_url}/readyz"), Duration::from_secs(30)).await;
    // dev is ready only once every node serves (every partition led) and the deployment is in.
    for a in &admins {
        assert!(
            answers_query(a).await,
            "{a} not serving while dev says ready"
        );
    }
    let deployments = reqwest::get(format!("{}/deployments", admins[2]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(deployments.contains(&addr(workflows)), "{deployments}");
    for n in 1..=3 {
        assert!(
            data.join("restate-cluster").join(format!("n{n}")).is_dir(),
            "node n{n} has no data folder"
        );
    }

    // The tour's core works on the cluster: a provisioning through the api ends active.
    let user = uuid::Uuid::now_v7();
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    db::users::insert(
        &pool,
        user,
        &domain::Email::parse("cluster-dev@example.com").unwrap(),
        "x",
        None,
    )
    .await
    .unwrap();
    let res = reqwest::Client::new()
        .post(format!("{api_url}/v1/admin/provision/{user}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"plan": "basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let identity = db::identities::find_by_user(&pool, user).await.unwrap();
        if identity.as_ref().is_some_and(|i| i.status == "active") {
            break;
        }
        assert!(Instant::now() < deadline, "not active: {identity:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM stops every node: no port of any node still open.
    dev.signal(libc::SIGTERM);
    let status = dev.wait_exit(Duration::from_secs(40)).expect("dev stopped");
    assert!(status.success(), "dev exited with {status}");
    for p in ingress.iter().chain(&admin).chain(&nodes) {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *p)).is_err(),
            "port {p} still open after dev stopped"
        );
    }

    // The next run starts on the same data: the cluster comes back and still knows the
    // finished provisioning.
    let mut dev = start();
    wait_banner(&dev).await;
    // A query answers before every partition has its leader back, and a partition without one
    // contributes no rows: wait for the invocation to show (it never will if it was lost).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/query", admins[1]))
            .header("accept", "application/json")
            .json(&json!({"query": "SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = 'ProvisionIdentity' AND status = 'completed'"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if rows["rows"][0]["n"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the finished provisioning is not in the restarted cluster: {rows}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    dev.signal(libc::SIGTERM);
    let status = dev.wait_exit(Duration::from_secs(40)).expect("dev stopped");
    assert!(status.success(), "dev exited with {status}");

    pool.close().await;
    let _ = std::fs::remove_dir_all(&data);
    for _ in 0..20 {
        if db::drop_database(&db_url).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
