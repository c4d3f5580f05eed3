//! restate-server for dev: installed from the npm registry on first use (pinned in
//! `tools/package.json`), data under `.data/restate`, and the workflows deployment registered.

use super::supervisor::ChildSpec;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SERVER_BIN: &str =
    "tools/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server";

/// restatectl, from the same install: dev reads a cluster's placement with it.
pub const CTL_BIN: &str = "tools/node_modules/@restatedev/restatectl-linux-x64/bin/restatectl";

pub async fn ensure_installed(root: &Path) -> anyhow::Result<PathBuf> {
    let bin = root.join(SERVER_BIN);
    if bin.is_file() && root.join(CTL_BIN).is_file() {
        return Ok(bin);
    }
    super::say("installing restate-server and restatectl from the npm registry (first run)");
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(root.join("tools"))
        .status()
        .await
        .context("running npm (is Node.js installed?)")?;
    anyhow::ensure!(status.success(), "npm ci in tools/ failed");
    anyhow::ensure!(
        bin.is_file() && root.join(CTL_BIN).is_file(),
        "restate-server or restatectl not found under {} after npm ci",
        root.join("tools").display()
    );
    Ok(bin)
}

pub fn child_spec(bin: &Path, root: &Path, data: &Path, ingress: u16, admin: u16) -> ChildSpec {
    let mut spec = ChildSpec::new(
        "restate-server",
        bin.to_path_buf(),
        vec![
            "--config-file".into(),
            root.join("restate.toml").display().to_string(),
            "--base-dir".into(),
            data.join("restate").display().to_string(),
        ],
    );
    spec.extra_env = vec![
        (
            "RESTATE_INGRESS__BIND_ADDRESS".into(),
            format!("127.0.0.1:{ingress}"),
        ),
        (
            "RESTATE_ADMIN__BIND_ADDRESS".into(),
            format!("127.0.0.1:{admin}"),
        ),
    ];
    spec.log_to_file = true;
    spec
}

pub async fn wait_healthy(admin_url: &str) -> anyhow::Result<()> {
    super::supervisor::wait_http(&format!("{admin_url}/health"))
        .await
        .context("restate-server did not start (see .data/logs/restate-server.log)")
}

/// Registers (or re-registers, when handlers changed) the workflows endpoint, through
/// whichever admin node answers.
pub async fn register(admin_urls: &[String], workflows_url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut last = String::new();
    for attempt in 0..20 {
        let admin = &admin_urls[attempt % admin_urls.len()];
        let res = client
            .post(format!("{admin}/deployments"))
            .json(&serde_json::json!({ "uri": workflows_url, "force": true }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                super::say(&format!("registered {workflows_url} with Restate"));
                return Ok(());
            }
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("registering the workflows deployment failed: {last}")
}

/// Starts the partition-keeping loop; idempotent (an idempotency key), so every dev start may
/// call it, and a node that does not answer is passed for the next.
pub async fn start_usage_scheduler(ingress_urls: &[String]) -> anyhow::Result<()> {
    let mut last = String::from("no ingress configured");
    for ingress in ingress_urls {
        let res = reqwest::Client::new()
            .post(format!("{ingress}/UsageScheduler/global/start/send"))
            .header("idempotency-key", "usage-scheduler-start")
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("{ingress}: {}", r.status()),
            Err(e) => last = format!("{ingress}: {e}"),
        }
    }
    anyhow::bail!("starting UsageScheduler: {last}")
}
