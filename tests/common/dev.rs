//! `poindexter dev` as a child process on free ports, with its own database and data folder,
//! so a test sees the whole stack as an operator runs it (and every component's log lines).

use super::api::ADMIN_TOKEN;
use super::ports::free_port;
use super::process::{wait_healthy, Proc};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct DevStack {
    pub proc: Proc,
    pub db_name: String,
    pub db_url: String,
    pub data: PathBuf,
    pub api: String,
    pub proxy: String,
    pub sandbox: String,
    pub restate_admin: String,
    /// api, proxy, workflows, sandbox, ingress, admin, restate node, (spare).
    pub ports: Vec<u16>,
}

pub fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

impl DevStack {
    /// Starts dev with `extra` settings on top of the addresses, waits until the api is ready,
    /// the proxy is healthy and the workflows deployment is registered with Restate.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let db_name = format!("pdx_test_{}", uuid::Uuid::new_v4().simple());
        let db_url = format!("{}/{db_name}", super::db::server_url());
        let data = std::env::temp_dir().join(format!("pdx-dev-{}", uuid::Uuid::new_v4().simple()));
        let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", db_url.clone()),
            ("API_ADDR", addr(ports[0])),
            ("PROXY_ADDR", addr(ports[1])),
            ("WORKFLOWS_ADDR", addr(ports[2])),
            ("SANDBOX_ADDR", addr(ports[3])),
            ("RESTATE_INGRESS_URL", format!("http://{}", addr(ports[4]))),
            ("RESTATE_ADMIN_URL", format!("http://{}", addr(ports[5]))),
            ("RESTATE_BIND_ADDRESS", addr(ports[6])),
            (
                "RESTATE_ADVERTISED_ADDRESS",
                format!("http://{}", addr(ports[6])),
            ),
            ("POINDEXTER_DATA_DIR", data.display().to_string()),
            ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let proc = Proc::poindexter("dev", &env);
        let stack = Self {
            proc,
            db_name,
            db_url,
            data,
            api: format!("http://{}", addr(ports[0])),
            proxy: format!("http://{}", addr(ports[1])),
            sandbox: format!("http://{}", addr(ports[3])),
            restate_admin: format!("http://{}", addr(ports[5])),
            ports,
        };
        wait_healthy(&format!("{}/readyz", stack.api), Duration::from_secs(120)).await;
        wait_healthy(&format!("{}/healthz", stack.proxy), Duration::from_secs(60)).await;
        assert!(
            stack.wait_registered().await,
            "workflows deployment not registered"
        );
        stack
    }

    async fn wait_registered(&self) -> bool {
        let workflows = addr(self.ports[2]);
        for _ in 0..300 {
            // Restate may still be starting: connection errors just mean "not yet".
            let deployments =
                match reqwest::get(format!("{}/deployments", self.restate_admin)).await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
            if deployments.contains(&workflows) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// SIGTERM, and dev must exit successfully within 30 s.
    pub fn stop(&mut self) {
        self.proc.signal(libc::SIGTERM);
        let status = self
            .proc
            .wait_exit(Duration::from_secs(30))
            .expect("dev stopped");
        assert!(status.success(), "dev exited with {status}");
    }

    /// Removes the data folder and drops the database (retrying while connections close).
    pub async fn clean_up(self) {
        let _ = std::fs::remove_dir_all(&self.data);
        let mut last = None;
        for _ in 0..20 {
            match db::drop_database(&self.db_url).await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("could not drop {}: {last:?}", self.db_name);
    }
}
