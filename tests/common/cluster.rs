//! A test-owned three-node Restate cluster on free loopback ports (replicated metadata and log,
//! replication 2), each node a real restate-server with its own data folder, killed and
//! restarted by the test; plus the whole stack (`Stack`) wired to every node.

use super::ports::free_port;
use super::process::Proc;
use super::stack::Stack;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Node {
    pub name: String,
    pub node_url: String,
    pub ingress: String,
    pub admin: String,
    pub proc: Option<Proc>,
    /// Instances killed earlier, held until the cluster is dropped: a failed test keeps every
    /// instance's log.
    pub retired: Vec<Proc>,
    env: HashMap<String, String>,
    dir: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

/// One partition's leader in a settled reading (`Cluster::leadership`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Led {
    pub partition_id: u64,
    pub start_key: u64,
    pub end_key: u64,
    /// Index of the leading node in `Cluster::nodes`.
    pub node: usize,
}

fn server_binary() -> String {
    std::env::var("RESTATE_SERVER_BIN").unwrap_or_else(|_| {
        format!(
            "{}/tools/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// `restatectl`, installed beside restate-server (tools/package.json).
fn restatectl_binary() -> String {
    let here = format!(
        "{}/tools/node_modules/@restatedev/restatectl-linux-x64/bin/restatectl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::env::var("RESTATECTL_BIN").unwrap_or(here)
}

impl Cluster {
    /// Three nodes, ready: every node answers introspection SQL (every partition has a leader).
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("pdx-cluster-{}", uuid::Uuid::new_v4().simple()));
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let metadata = format!(
            "[{}]",
            ports
                .iter()
                .map(|(n, _, _)| format!("\"http://127.0.0.1:{n}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (node, ingress, admin))| {
                let name = format!("n{}", i + 1);
                let env: HashMap<String, String> = [
                    ("RESTATE_CLUSTER_NAME", "pdx-test".to_string()),
                    ("RESTATE_NODE_NAME", name.clone()),
                    ("RESTATE_LISTEN_MODE", "tcp".into()),
                    ("RESTATE_BIND_ADDRESS", format!("127.0.0.1:{node}")),
                    (
                        "RESTATE_ADVERTISED_ADDRESS",
                        format!("http://127.0.0.1:{node}"),
                    ),
                    ("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}")),
                    (
                        "RESTATE_INGRESS__BIND_ADDRESS",
                        format!("127.0.0.1:{ingress}"),
                    ),
                    ("RESTATE_METADATA_CLIENT__ADDRESSES", metadata.clone()),
                    ("RESTATE_BIFROST__DEFAULT_PROVIDER", "replicated".into()),
                    ("RESTATE_DEFAULT_REPLICATION", "2".into()),
                    ("RESTATE_DEFAULT_NUM_PARTITIONS", "4".into()),
                    ("RESTATE_AUTO_PROVISION", (i == 0).to_string()),
                    ("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "256 MiB".into()),
                    ("RESTATE_DISABLE_TELEMETRY", "true".into()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                Node {
                    dir: dir.join(&name),
                    name,
                    node_url: format!("http://127.0.0.1:{node}"),
                    ingress: format!("http://127.0.0.1:{ingress}"),
                    admin: format!("http://127.0.0.1:{admin}"),
                    proc: None,
                    retired: Vec::new(),
                    env,
                }
            })
            .collect();
        let mut cluster = Self { nodes, dir };
        for i in 0..3 {
            cluster.launch(i);
        }
        for i in 0..3 {
            cluster.wait_ready(i, Duration::from_secs(90)).await;
        }
        cluster
    }

    fn launch(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        std::fs::create_dir_all(&node.dir).unwrap();
        let dir = node.dir.display().to_string();
        let config = format!("{}/restate.toml", env!("CARGO_MANIFEST_DIR"));
        node.proc = Some(Proc::spawn(
            &format!("restate-{}", node.name),
            &server_binary(),
            &["--base-dir", &dir, "--config-file", &config],
            &node.env,
        ));
    }

    /// Until node `i` answers `POST /query` (it reaches a leader for every partition).
    pub async fn wait_ready(&self, i: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while query_once(&self.nodes[i].admin, "SELECT count(*) FROM sys_invocation")
            .await
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "Restate node {} not ready within {limit:?}",
                self.nodes[i].name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every node's ingress, comma-separated (RESTATE_INGRESS_URL of a replica).
    pub fn ingress_list(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.ingress.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn admin_list(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.admin.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].proc.is_some()
    }

    /// `kill -9` of node `i`: a crash, its data left as it was.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].proc.take() {
            p.kill9();
            self.nodes[i].retired.push(p);
        }
    }

    /// Starts node `i` again with its name and data, and waits until it serves again.
    pub async fn restart(&mut self, i: usize) {
        self.launch(i);
        self.wait_ready(i, Duration::from_secs(60)).await;
    }

    /// Registers a deployment through any live node's admin API, then waits until every live
    /// node knows its services: the others learn of it from the metadata a moment later, and
    /// until then their ingress answers 404 "service not found" (seen in CI: a provisioning
    /// refused just after the stack started).
    pub async fn register(&self, uri: &str) {
        let body = serde_json::json!({"uri": uri, "force": true});
        let mut last = String::new();
        for node in self.nodes.iter().filter(|n| n.proc.is_some()) {
            match reqwest::Client::new()
                .post(format!("{}/deployments", node.admin))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    let registered: Value = r.json().await.unwrap_or_default();
                    let services: Vec<&str> = registered["services"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["name"].as_str())
                        .collect();
                    self.wait_known_everywhere(&services).await;
                    return;
                }
                Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
        }
        panic!("register {uri}: {last}");
    }

    /// Until every live node lists `services` in its introspection tables (served from the
    /// node's own copy of the schema, which its ingress routes by).
    async fn wait_known_everywhere(&self, services: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|n| n.proc.is_some()) {
            loop {
                let known: Vec<String> = query_once(&node.admin, "SELECT name FROM sys_service")
                    .await
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_owned))
                    .collect();
                if services.iter().all(|s| known.iter().any(|k| k == s)) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} does not know {services:?} 30 s after they were registered",
                    node.name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Rows of Restate's introspection SQL from any live node, retried for a while: right
    /// after a node dies queries fail for a few seconds.
    pub async fn query(&self, sql: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for node in self.nodes.iter().filter(|n| n.proc.is_some()) {
                if let Some(rows) = query_once(&node.admin, sql).await {
                    return rows;
                }
            }
            assert!(Instant::now() < deadline, "no node answered `{sql}`");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `restatectl sql --json` against the live nodes (cluster tables: nodes, partitions,
    /// partition_state), retried while the cluster settles.
    pub async fn cluster_sql(&self, sql: &str) -> Vec<Value> {
        let addresses: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.proc.is_some())
            .map(|n| n.node_url.as_str())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = tokio::process::Command::new(restatectl_binary())
                .args(["sql", "--json", sql])
                .env("RESTATECTL_ADDRESS", addresses.join(","))
                .output()
                .await
                .expect("restatectl (npm ci in tools/)");
            if out.status.success() {
                if let Ok(rows) = serde_json::from_slice::<Vec<Value>>(&out.stdout) {
                    return rows;
                }
            }
            assert!(
                Instant::now() < deadline,
                "restatectl sql failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Who leads each partition, from one reading in which that is unambiguous: every
    /// partition has exactly one live node that is `Leader` and meant to stay so (target mode
    /// `leader`), the partition table names that same leader, and every live replica follows it.
    /// `None` while leadership is moving (just after start the controller moves replica sets
    /// and leaders; after a kill it elects and then moves them again), or while the node that
    /// answers does not yet know every partition's state (its reading is then empty or
    /// partial). Rows of a killed node are ignored: they linger in the reading.
    async fn leadership_once(&self) -> Option<Vec<Led>> {
        let rows = self
            .cluster_sql(
                "SELECT t.partition_id AS partition_id, t.start_key AS start_key, \
                 t.end_key AS end_key, t.leader_gen_node_id AS decided, \
                 p.gen_node_id AS node_id, n.name AS name, p.effective_mode AS mode, \
                 p.target_mode AS target, p.leader AS leader \
                 FROM partitions t \
                 LEFT JOIN partition_state p ON p.partition_id = t.partition_id \
                 LEFT JOIN nodes n ON p.plain_node_id = n.plain_node_id",
            )
            .await;
        let live = |name: &str| {
            self.nodes
                .iter()
                .any(|n| n.name == name && n.proc.is_some())
        };
        let mut by_partition: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
        for row in &rows {
            by_partition
                .entry(row["partition_id"].as_u64()?)
                .or_default()
                .push(row);
        }
        if by_partition.is_empty() {
            return None;
        }
        let mut led = vec![];
        for (partition_id, rows) in by_partition {
            let rows: Vec<&Value> = rows
                .into_iter()
                .filter(|r| live(r["name"].as_str().unwrap_or_default()))
                .collect();
            let leaders: Vec<&&Value> = rows
                .iter()
                .filter(|r| r["mode"] == "Leader" || r["target"] == "leader")
                .collect();
            let [leader] = leaders.as_slice() else {
                return None;
            };
            let id = leader["node_id"].as_str()?;
            let settled = leader["mode"] == "Leader"
                && leader["target"] == "leader"
                && leader["decided"].as_str() == Some(id)
                && rows.iter().all(|r| r["leader"].as_str() == Some(id));
            if !settled {
                return None;
            }
            led.push(Led {
                partition_id,
                start_key: leader["start_key"].as_u64()?,
                end_key: leader["end_key"].as_u64()?,
                node: self.index_of(leader["name"].as_str()?),
            });
        }
        Some(led)
    }

    /// `leadership_once`, read until it is unambiguous and the same twice in a row at least
    /// a second apart (the controller's moves come in bursts: a reading taken mid-burst is
    /// followed by a different one).
    pub async fn leadership(&self, limit: Duration) -> Vec<Led> {
        let deadline = Instant::now() + limit;
        let mut last: Option<(Vec<Led>, Instant)> = None;
        loop {
            if let Some(led) = self.leadership_once().await {
                match &last {
                    Some((prev, at)) if *prev == led && at.elapsed() >= Duration::from_secs(1) => {
                        return led;
                    }
                    Some((prev, _)) if *prev == led => {}
                    _ => last = Some((led, Instant::now())),
                }
            } else {
                last = None;
            }
            assert!(
                Instant::now() < deadline,
                "leadership not settled within {limit:?}: last reading {:?}",
                last.as_ref().map(|(l, _)| l)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many partitions each live node leads, by node name, from a settled reading.
    pub async fn leaders(&self) -> HashMap<String, usize> {
        let mut leads = HashMap::new();
        for led in self.leadership(Duration::from_secs(60)).await {
            *leads.entry(self.nodes[led.node].name.clone()).or_default() += 1;
        }
        leads
    }

    /// Waits until the live nodes lead every partition between them, settled (after a kill,
    /// the dead node's partitions have new leaders) and every live node answers queries.
    pub async fn wait_led_by_live_nodes(&self, limit: Duration) {
        self.leadership(limit).await;
        for i in (0..self.nodes.len()).filter(|&i| self.is_up(i)) {
            self.wait_ready(i, limit).await;
        }
    }

    /// Index of the node that leads the most partitions, and every live node's count, from a
    /// settled reading (a single reading can be empty, partial or mid-move).
    pub async fn busiest_leader(&self) -> (usize, HashMap<String, usize>) {
        let leaders = self.leaders().await;
        let (name, _) = leaders
            .iter()
            .max_by_key(|(_, n)| **n)
            .expect("a settled reading names a leader for every partition");
        (self.index_of(name), leaders)
    }

    /// Index of the node leading the partition that holds `partition_key`, from a settled
    /// reading.
    pub async fn leader_of_key(&self, partition_key: u64) -> usize {
        self.leadership(Duration::from_secs(60))
            .await
            .into_iter()
            .find(|l| l.start_key <= partition_key && partition_key <= l.end_key)
            .unwrap_or_else(|| panic!("no partition holds key {partition_key}"))
            .node
    }

    /// Waits until node `i` runs a processor (leader or follower) for some partition again.
    pub async fn wait_rejoined(&self, i: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let name = self.nodes[i].name.clone();
        loop {
            let rows = self
                .cluster_sql(&format!(
                    "SELECT count(*) AS processors FROM partition_state p \
                     JOIN nodes n ON p.plain_node_id = n.plain_node_id \
                     WHERE n.name = '{name}' AND n.state = 'alive' \
                     AND p.replay_status = 'active' \
                     AND p.effective_mode IN ('Leader', 'Follower')"
                ))
                .await;
            if rows
                .first()
                .and_then(|r| r["processors"].as_u64())
                .unwrap_or(0)
                > 0
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not rejoin within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("unknown node {name}"))
    }

    /// The whole stack with its api (and workflows process) given every node of this cluster,
    /// the workflows deployment registered. `webhook_base` as in `Stack::start_with_webhooks`.
    pub async fn stack(&self, extra: &[(&str, &str)], webhook_base: Option<&str>) -> Stack {
        let ingress = self.ingress_list();
        let admin = self.admin_list();
        let mut settings: Vec<(&str, &str)> = vec![
            ("RESTATE_INGRESS_URL", &ingress),
            ("RESTATE_ADMIN_URL", &admin),
        ];
        settings.extend_from_slice(extra);
        let mut stack = Stack::start_with(&settings, webhook_base, false).await;
        stack.start_workflows().await;
        self.register(&format!("http://127.0.0.1:{}", stack.workflows_port))
            .await;
        stack
    }
}

async fn query_once(admin: &str, sql: &str) -> Option<Vec<Value>> {
    let res = reqwest::Client::new()
        .post(format!("{admin}/query"))
        .header("accept", "application/json")
        .json(&serde_json::json!({ "query": sql }))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    let v: Value = res.json().await.ok()?;
    v["rows"].as_array().cloned()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(p) = node.proc.as_mut() {
                p.kill9();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Another api replica of `stack` (same database, same Restate nodes, its own listener), as a
/// load balancer would see it; served until the returned task is aborted.
pub async fn api_replica(stack: &Stack) -> (String, tokio::task::JoinHandle<()>) {
    let config = config::Config::load(config::Component::Api, &stack.env).expect("api config");
    let app = handlers::build(config).await.expect("api replica");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    let task = tokio::spawn(async move {
        server::serve(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    (url, task)
}
