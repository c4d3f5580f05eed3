//! A real restate-server per test: free ports, a temporary data directory, torn down after.

use super::ports::free_port;
use super::process::{Proc, Started};
use std::collections::HashMap;
use std::time::Duration;

pub struct Restate {
    pub ingress: String,
    pub admin: String,
    pub proc: Option<Proc>,
    dir: std::path::PathBuf,
    env: HashMap<String, String>,
}

/// restate-server's environment for these ports (ingress, admin, node-to-node).
pub fn env(ingress: u16, admin: u16, node: u16) -> HashMap<String, String> {
    [
        (
            "RESTATE_INGRESS__BIND_ADDRESS",
            format!("127.0.0.1:{ingress}"),
        ),
        ("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}")),
        ("RESTATE_BIND_ADDRESS", format!("127.0.0.1:{node}")),
        (
            "RESTATE_ADVERTISED_ADDRESS",
            format!("http://127.0.0.1:{node}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn binary() -> String {
    std::env::var("RESTATE_SERVER_BIN").unwrap_or_else(|_| {
        format!(
            "{}/tools/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

impl Restate {
    pub async fn start() -> Self {
        // free_port hands each port to one test only, but it releases the port it checked, and
        // a process outside the tests may bind it first: restate-server then exits at once
        // ("Address in use") and is started again on other ports, not waited on for a minute.
        for _ in 0..5 {
            let mut r = Self::on_free_ports();
            match r.try_launch().await {
                Started::Healthy => return r,
                Started::Exited(why) if why.contains("Address in use") => continue,
                Started::Exited(why) => panic!("{why}"),
            }
        }
        panic!("restate-server: every port tried was taken before it could bind it (5 tries)");
    }

    fn on_free_ports() -> Self {
        let (ingress, admin, node) = (free_port(), free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("pdx-restate-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = env(ingress, admin, node);
        Self {
            ingress: format!("http://127.0.0.1:{ingress}"),
            admin: format!("http://127.0.0.1:{admin}"),
            proc: None,
            dir,
            env,
        }
    }

    async fn launch(&mut self) {
        if let Started::Exited(why) = self.try_launch().await {
            panic!("{why}");
        }
    }

    async fn try_launch(&mut self) -> Started {
        let dir = self.dir.display().to_string();
        let config = format!("{}/restate.toml", env!("CARGO_MANIFEST_DIR"));
        self.proc = Some(Proc::spawn(
            "restate-server",
            &binary(),
            &["--base-dir", &dir, "--config-file", &config],
            &self.env,
        ));
        let health = format!("{}/health", self.admin);
        let proc = self.proc.as_mut().expect("just spawned");
        proc.wait_started(&health, Duration::from_secs(60)).await
    }

    /// Kills the server hard and starts it again on the same ports and data.
    pub async fn restart(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill9();
        }
        self.launch().await;
    }

    /// Registers a deployment (forcing an update of an existing one).
    pub async fn register(&self, uri: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}/deployments", self.admin))
            .json(&serde_json::json!({"uri": uri, "force": true}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(
            status.is_success(),
            "register {uri}: {status} {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Calls a handler through the ingress with no input (`path` as
    /// `Service/key/handler`, the key URL-encoded) and returns its JSON answer.
    pub async fn call(&self, path: &str) -> serde_json::Value {
        super::json_of(reqwest::Client::new().post(format!("{}/{path}", self.ingress))).await
    }

    /// Rows of Restate's introspection SQL.
    pub async fn query(&self, sql: &str) -> Vec<serde_json::Value> {
        let res: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/query", self.admin))
            .header("accept", "application/json")
            .json(&serde_json::json!({"query": sql}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["rows"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Restate {
    fn drop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
