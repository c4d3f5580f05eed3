//! The whole stack as it runs in production shape, every part a real process the chaos run can
//! `kill -9` and start again: a Postgres of the run's own (initdb/pg_ctl on a free port), a
//! three-node Restate cluster, the workflows process, two api and two proxy processes. The
//! sandbox (every provider) and the webhook relay live in the test process: they stand for
//! the outside world, which does not crash with us.

use crate::common::api::{api_env, ADMIN_TOKEN};
use crate::common::cluster::Cluster;
use crate::common::ports::free_port;
use crate::common::process::Proc;
use crate::common::sandbox::{start_sandbox, TestSandbox};
use crate::common::stack::{PRICE_BASIC, PRICE_PRO, STRIPE_KEY, WEBHOOK_SECRET};
use crate::pg::OwnPostgres;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A process the run restarts: what it is called, how to start it, where it says it is healthy.
pub struct Part {
    pub name: String,
    subcommand: &'static str,
    env: HashMap<String, String>,
    health: String,
    pub proc: Option<Proc>,
    /// Instances killed earlier, held until the run ends so that a failed run keeps every
    /// instance's log, not only the last one's.
    pub retired: Vec<Proc>,
}

impl Part {
    fn new(name: &str, subcommand: &'static str, env: HashMap<String, String>, port: u16) -> Self {
        Self {
            name: name.into(),
            subcommand,
            env,
            health: format!("http://127.0.0.1:{port}/healthz"),
            proc: None,
            retired: Vec::new(),
        }
    }

    pub async fn start(&mut self) {
        self.proc = Some(Proc::poindexter(self.subcommand, &self.env));
        wait_up(&self.health, &self.name).await;
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
            self.retired.push(p);
        }
    }
}

/// Waits for a 2xx from `url`; a part that does not come back within two minutes fails the run.
async fn wait_up(url: &str, name: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{name} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct World {
    pub pg: OwnPostgres,
    pub pool: sqlx::PgPool,
    pub cluster: Cluster,
    pub sandbox: TestSandbox,
    pub relay: super::relay::Relay,
    pub workflows: Part,
    pub apis: Vec<Part>,
    pub proxies: Vec<Part>,
    pub api_urls: Vec<String>,
    pub proxy_urls: Vec<String>,
    dir: std::path::PathBuf,
}

impl World {
    pub async fn start() -> Self {
        let pg = OwnPostgres::start();
        let url = pg.url("pdx_chaos");
        let pool = db::create_and_migrate(&url).await.expect("chaos database");
        let cluster = Cluster::start().await;
        let api_ports = [free_port(), free_port()];
        let api_urls: Vec<String> = api_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let relay = super::relay::Relay::start(api_urls.clone()).await;
        let stripe = [
            ("STRIPE_SECRET_KEY", STRIPE_KEY),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("STRIPE_PRICE_BASIC", PRICE_BASIC),
            ("STRIPE_PRICE_PRO", PRICE_PRO),
        ];
        let mut sandbox_env = vec![("SANDBOX_WEBHOOK_BASE", relay.url.as_str())];
        sandbox_env.extend(stripe);
        let sandbox = start_sandbox(&sandbox_env).await;

        let dir = std::env::temp_dir().join(format!("pdx-chaos-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let workflows_port = free_port();
        let mut env = api_env(&url);
        for (k, v) in [
            (
                "SANDBOX_ADDR",
                sandbox.url.trim_start_matches("http://").to_owned(),
            ),
            ("PUBLIC_BASE_URL", relay.url.clone()),
            ("SANDBOX_WEBHOOK_BASE", relay.url.clone()),
            ("STRIPE_API_BASE", format!("{}/stripe", sandbox.url)),
            ("RESTATE_INGRESS_URL", cluster.ingress_list()),
            ("RESTATE_ADMIN_URL", cluster.admin_list()),
            ("WORKFLOWS_ADDR", format!("127.0.0.1:{workflows_port}")),
            // A lost code is asked for again soon; a provider that hangs is given up on soon.
            ("SIGNAL_CODE_TIMEOUT_SECS", "15".into()),
            ("SIGNAL_BACKOFF_MS", "200".into()),
            ("DEPROVISION_RETENTION_SECS", "1".into()),
            ("PROVIDER_TIMEOUT_MS", "1500".into()),
        ] {
            env.insert(k.into(), v);
        }
        for (k, v) in stripe {
            env.insert(k.into(), v.into());
        }
        for d in config::apply_dev_defaults(&env) {
            env.entry(d.name.to_string()).or_insert(d.value);
        }

        let mut workflows = Part::new("workflows", "workflows", env.clone(), workflows_port);
        workflows.start().await;
        cluster
            .register(&format!("http://127.0.0.1:{workflows_port}"))
            .await;
        let mut apis = Vec::new();
        for (i, port) in api_ports.iter().enumerate() {
            let mut e = env.clone();
            e.insert("API_ADDR".into(), format!("127.0.0.1:{port}"));
            let mut part = Part::new(&format!("api-{}", i + 1), "api", e, *port);
            part.start().await;
            apis.push(part);
        }
        let mut proxies = Vec::new();
        let mut proxy_urls = Vec::new();
        for i in 0..2 {
            let port = free_port();
            let mut e = env.clone();
            e.insert("PROXY_ADDR".into(), format!("127.0.0.1:{port}"));
            let spill = dir.join(format!("proxy-{}.spill", i + 1));
            e.insert("PROXY_SPILL_PATH".into(), spill.display().to_string());
            // Limits and caps are one budget across the replicas, as in production.
            e.insert(
                "REDIS_URL".into(),
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            );
            let mut part = Part::new(&format!("proxy-{}", i + 1), "proxy", e, port);
            part.start().await;
            proxies.push(part);
            proxy_urls.push(format!("http://127.0.0.1:{port}"));
        }
        Self {
            pg,
            pool,
            cluster,
            sandbox,
            relay,
            workflows,
            apis,
            proxies,
            api_urls,
            proxy_urls,
            dir,
        }
    }

    /// Every part running again (after the monkey stopped), every Restate node serving.
    pub async fn all_up(&mut self) {
        for i in 0..self.cluster.nodes.len() {
            if !self.cluster.is_up(i) {
                self.cluster.restart(i).await;
            }
        }
        for part in std::iter::once(&mut self.workflows)
            .chain(self.apis.iter_mut())
            .chain(self.proxies.iter_mut())
        {
            if part.proc.is_none() {
                part.start().await;
            }
        }
    }

    pub fn admin(&self) -> &'static str {
        ADMIN_TOKEN
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A failed run keeps the proxies' spill files beside the processes' logs.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
