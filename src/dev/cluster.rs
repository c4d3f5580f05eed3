//! `poindexter dev --restate-nodes N`: N restate-server nodes on loopback forming one cluster
//! with replicated metadata and log (replication 2), each with its own ports and data folder
//! under `<data>/restate-cluster/<node>`, so the next run finds its data and rejoins.

use super::supervisor::ChildSpec;
use anyhow::Context as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Node-to-node ports (comma-separated); defaults to 5122, 5123, … (Restate's own default first).
pub const NODE_PORTS_VAR: &str = "POINDEXTER_RESTATE_NODE_PORTS";
const CLUSTER_NAME: &str = "poindexter-dev-cluster";

pub struct Node {
    pub name: String,
    pub node_port: u16,
    pub ingress_port: u16,
    pub admin_port: u16,
}

impl Node {
    pub fn ingress_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingress_port)
    }
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }
    pub fn node_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.node_port)
    }
}

/// The cluster's nodes. A list in RESTATE_INGRESS_URL / RESTATE_ADMIN_URL / NODE_PORTS_VAR with
/// one entry per node gives each node's port; a single entry is the first node's, and the
/// others take the next ports up.
pub fn layout(
    count: usize,
    ingress: &[String],
    admin: &[String],
    node_ports: Option<&str>,
) -> anyhow::Result<Vec<Node>> {
    let ingress = ports_of("RESTATE_INGRESS_URL", ingress, count)?;
    let admin = ports_of("RESTATE_ADMIN_URL", admin, count)?;
    let node_list: Vec<String> = node_ports
        .unwrap_or("5122")
        .split(',')
        .map(|p| format!("http://127.0.0.1:{}", p.trim()))
        .collect();
    let node = ports_of(NODE_PORTS_VAR, &node_list, count)?;
    Ok((0..count)
        .map(|i| Node {
            name: format!("n{}", i + 1),
            node_port: node[i],
            ingress_port: ingress[i],
            admin_port: admin[i],
        })
        .collect())
}

fn ports_of(var: &str, urls: &[String], count: usize) -> anyhow::Result<Vec<u16>> {
    let ports: Vec<u16> = urls
        .iter()
        .map(|u| {
            u.rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .with_context(|| format!("{var}: `{u}` has no port"))
        })
        .collect::<anyhow::Result<_>>()?;
    match ports.as_slice() {
        [first] => (0..count)
            .map(|i| {
                u16::try_from(usize::from(*first) + i)
                    .with_context(|| format!("{var}: no port above {first} for node {}", i + 1))
            })
            .collect(),
        all if all.len() == count => Ok(ports),
        all => anyhow::bail!(
            "{var} lists {} addresses; --restate-nodes {count} needs one or {count}",
            all.len()
        ),
    }
}

pub fn child_specs(bin: &Path, root: &Path, data: &Path, nodes: &[Node]) -> Vec<ChildSpec> {
    let metadata = format!(
        "[{}]",
        nodes
            .iter()
            .map(|n| format!("\"{}\"", n.node_url()))
            .collect::<Vec<_>>()
            .join(",")
    );
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut spec = ChildSpec::new(
                &format!("restate-{}", n.name),
                bin.to_path_buf(),
                vec![
                    "--config-file".into(),
                    root.join("restate.toml").display().to_string(),
                    "--base-dir".into(),
                    data.join("restate-cluster")
                        .join(&n.name)
                        .display()
                        .to_string(),
                ],
            );
            let env: [(&str, String); 14] = [
                ("RESTATE_CLUSTER_NAME", CLUSTER_NAME.into()),
                ("RESTATE_NODE_NAME", n.name.clone()),
                ("RESTATE_LISTEN_MODE", "tcp".into()),
                ("RESTATE_BIND_ADDRESS", format!("127.0.0.1:{}", n.node_port)),
                ("RESTATE_ADVERTISED_ADDRESS", n.node_url()),
                (
                    "RESTATE_ADMIN__BIND_ADDRESS",
                    format!("127.0.0.1:{}", n.admin_port),
                ),
                (
                    "RESTATE_INGRESS__BIND_ADDRESS",
                    format!("127.0.0.1:{}", n.ingress_port),
                ),
                ("RESTATE_METADATA_CLIENT__ADDRESSES", metadata.clone()),
                ("RESTATE_BIFROST__DEFAULT_PROVIDER", "replicated".into()),
                ("RESTATE_DEFAULT_REPLICATION", "2".into()),
                ("RESTATE_DEFAULT_NUM_PARTITIONS", "4".into()),
                // Exactly one node provisions the cluster; the others join it.
                ("RESTATE_AUTO_PROVISION", (i == 0).to_string()),
                // The 2 GiB default is too much for several nodes on one machine.
                ("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "256 MiB".into()),
                ("RESTATE_DISABLE_TELEMETRY", "true".into()),
            ];
            spec.extra_env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            spec.log_to_file = true;
            spec
        })
        .collect()
}

/// Admin `/health` answers before partitions have leaders, and introspection SQL answers on a
/// node once it reaches a leader for every partition; but in the first seconds the cluster
/// controller still moves replica sets and leaders (a node that joined late gets its share),
/// and a query that meets a move fails (seen: "expecting a partition store" on the node that
/// had just handed a partition over, after dev said ready). So ready is: the placement read
/// through `restatectl` is settled (`settled_placement`) and the same in two readings at least
/// a second apart, and then every node answers a query.
pub async fn wait_settled(
    ctl: &Path,
    node_urls: &[String],
    admin_urls: &[String],
    limit: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    let mut last: Option<(String, Instant)> = None;
    let mut waiting_for = String::from("a first reading");
    loop {
        match placement(ctl, node_urls, admin_urls.len()).await {
            Ok(now) => match &last {
                Some((before, at)) if *before == now && at.elapsed() >= Duration::from_secs(1) => {
                    let mut failing = None;
                    for admin in admin_urls {
                        if !answers_query(&client, admin).await {
                            failing = Some(admin);
                            break;
                        }
                    }
                    match failing {
                        None => return Ok(()),
                        Some(admin) => waiting_for = format!("{admin} to answer a query"),
                    }
                }
                Some((before, _)) if *before == now => {}
                _ => last = Some((now, Instant::now())),
            },
            Err(why) => {
                last = None;
                waiting_for = why;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the Restate cluster did not settle within {limit:?}: waiting for {waiting_for} \
             (see the restate-n*.log files under the dev data folder's logs/)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One reading of the cluster tables, judged by `settled_placement`.
async fn placement(ctl: &Path, node_urls: &[String], expected: usize) -> Result<String, String> {
    let nodes = cluster_sql(ctl, node_urls, "SELECT plain_node_id, state FROM nodes").await?;
    let partitions = cluster_sql(
        ctl,
        node_urls,
        "SELECT t.partition_id AS partition_id, t.current_replica_set AS replicas, \
         t.next_replica_set AS next, t.leader_plain_node_id AS decided, \
         p.plain_node_id AS node, p.gen_node_id AS gen_node, p.effective_mode AS mode, \
         p.target_mode AS target, p.replay_status AS replay, p.leader AS leader \
         FROM partitions t LEFT JOIN partition_state p ON p.partition_id = t.partition_id",
    )
    .await?;
    settled_placement(&nodes, &partitions, expected)
}

/// `restatectl sql --json` against the nodes' node-to-node addresses.
async fn cluster_sql(
    ctl: &Path,
    node_urls: &[String],
    sql: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let out = tokio::process::Command::new(ctl)
        .args(["sql", "--json", sql])
        .env("RESTATECTL_ADDRESS", node_urls.join(","))
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("restatectl to run ({e})"))?;
    if !out.status.success() {
        return Err("restatectl to reach the cluster".into());
    }
    serde_json::from_slice(&out.stdout).map_err(|_| "restatectl to print JSON".into())
}

/// The placement, as one line per partition ("P0 N1,N3 led by N1"), when the controller has
/// nothing left to move: all `expected` nodes alive (a node that comes alive later is given
/// replicas); no partition in a reconfiguration (a next replica set); on each, exactly its
/// replica set runs processors, caught up and in the mode the controller asked for; one of
/// them leads, the one the partition table names, and every replica follows it. Otherwise
/// what is still missing.
fn settled_placement(
    nodes: &[serde_json::Value],
    rows: &[serde_json::Value],
    expected: usize,
) -> Result<String, String> {
    use std::collections::{BTreeMap, BTreeSet};
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let alive = nodes.iter().filter(|n| n["state"] == "alive").count();
    if nodes.len() != expected || alive != expected {
        return Err(format!(
            "{expected} nodes alive ({alive} of {})",
            nodes.len()
        ));
    }
    let mut by_partition: BTreeMap<u64, Vec<&serde_json::Value>> = BTreeMap::new();
    for row in rows {
        let id = row["partition_id"].as_u64().ok_or("a partition id")?;
        by_partition.entry(id).or_default().push(row);
    }
    if by_partition.is_empty() {
        return Err("the partition table".into());
    }
    let mut lines = Vec::with_capacity(by_partition.len());
    for (id, rows) in by_partition {
        let first = rows[0];
        if !text(first, "next").is_empty() {
            return Err(format!("partition {id} to finish moving"));
        }
        let replicas: BTreeSet<String> = text(first, "replicas")
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        let running: BTreeSet<String> = rows.iter().map(|r| text(r, "node")).collect();
        let caught_up = rows.iter().all(|r| {
            r["replay"] == "active" && text(r, "mode").eq_ignore_ascii_case(&text(r, "target"))
        });
        if replicas.is_empty() || running != replicas || !caught_up {
            return Err(format!("partition {id}'s replicas to run"));
        }
        let leaders: Vec<&&serde_json::Value> =
            rows.iter().filter(|r| r["mode"] == "Leader").collect();
        let [leader] = leaders.as_slice() else {
            return Err(format!("partition {id} to have one leader"));
        };
        let (node, gen) = (text(leader, "node"), text(leader, "gen_node"));
        if text(first, "decided") != node || rows.iter().any(|r| text(r, "leader") != gen) {
            return Err(format!("partition {id}'s leadership to settle"));
        }
        let replicas: Vec<String> = replicas.into_iter().collect();
        lines.push(format!("P{id} {} led by {node}", replicas.join(",")));
    }
    Ok(lines.join("; "))
}

async fn answers_query(client: &reqwest::Client, admin: &str) -> bool {
    client
        .post(format!("{admin}/query"))
        .header("accept", "application/json")
        .json(&serde_json::json!({"query": "SELECT count(*) FROM sys_invocation"}))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: &str) -> serde_json::Value {
        serde_json::json!({"plain_node_id": id, "state": state})
    }

    /// A partition's rows: its replica set, the leader, and the processors as (node, mode).
    fn partition(
        id: u64,
        replicas: &str,
        leader: &str,
        running: &[(&str, &str)],
    ) -> Vec<serde_json::Value> {
        running
            .iter()
            .map(|(node, mode)| {
                serde_json::json!({
                    "partition_id": id, "replicas": replicas, "decided": leader,
                    "node": node, "gen_node": format!("{node}:1"), "mode": mode,
                    "target": mode.to_lowercase(), "replay": "active",
                    "leader": format!("{leader}:1"),
                })
            })
            .collect()
    }

    fn alive() -> Vec<serde_json::Value> {
        vec![
            node("N1", "alive"),
            node("N2", "alive"),
            node("N3", "alive"),
        ]
    }

    /// The cluster of a failed CI run, after P0 had moved to the late node and while P2 was
    /// still moving: every query answered, and a moment later the one on N1 did not.
    fn mid_move() -> Vec<serde_json::Value> {
        let mut rows = partition(0, "N1,N3", "N1", &[("N1", "Leader"), ("N3", "Follower")]);
        rows.extend(partition(
            1,
            "N1,N2",
            "N1",
            &[("N1", "Leader"), ("N2", "Follower")],
        ));
        rows.extend(partition(
            2,
            "N1,N2",
            "N1",
            &[("N1", "Leader"), ("N2", "Follower")],
        ));
        rows.extend(partition(
            3,
            "N1,N2",
            "N1",
            &[("N1", "Leader"), ("N2", "Follower")],
        ));
        for r in rows.iter_mut().filter(|r| r["partition_id"] == 2) {
            r["next"] = "N2,N3".into();
        }
        rows
    }

    #[test]
    fn a_partition_still_moving_is_not_settled() {
        let err = settled_placement(&alive(), &mid_move(), 3).unwrap_err();
        assert_eq!(err, "partition 2 to finish moving");
    }

    #[test]
    fn a_processor_left_on_a_node_that_no_longer_holds_the_partition_is_not_settled() {
        let mut rows = mid_move();
        rows.retain(|r| r["partition_id"] != 2);
        // Moved: N1 still runs P2 beside the new replica set's processors.
        rows.extend(partition(
            2,
            "N2,N3",
            "N2",
            &[("N2", "Leader"), ("N3", "Follower"), ("N1", "Follower")],
        ));
        let err = settled_placement(&alive(), &rows, 3).unwrap_err();
        assert_eq!(err, "partition 2's replicas to run");
    }

    #[test]
    fn a_late_node_a_leader_not_yet_named_or_two_leaders_are_not_settled() {
        let late = vec![
            node("N1", "alive"),
            node("N2", "alive"),
            node("N3", "suspect"),
        ];
        let settled = partition(0, "N1,N2", "N1", &[("N1", "Leader"), ("N2", "Follower")]);
        assert_eq!(
            settled_placement(&late, &settled, 3).unwrap_err(),
            "3 nodes alive (2 of 3)"
        );
        let mut handing_over = settled.clone();
        handing_over[0]["decided"] = "N2".into();
        assert_eq!(
            settled_placement(&alive(), &handing_over, 3).unwrap_err(),
            "partition 0's leadership to settle"
        );
        let two = partition(0, "N1,N2", "N1", &[("N1", "Leader"), ("N2", "Leader")]);
        assert_eq!(
            settled_placement(&alive(), &two, 3).unwrap_err(),
            "partition 0 to have one leader"
        );
        let mut catching_up = settled;
        catching_up[1]["replay"] = "starting".into();
        assert_eq!(
            settled_placement(&alive(), &catching_up, 3).unwrap_err(),
            "partition 0's replicas to run"
        );
    }

    #[test]
    fn a_settled_cluster_reads_as_its_placement() {
        let mut rows = partition(0, "N3,N1", "N1", &[("N1", "Leader"), ("N3", "Follower")]);
        rows.extend(partition(
            1,
            "N1,N2",
            "N2",
            &[("N1", "Follower"), ("N2", "Leader")],
        ));
        assert_eq!(
            settled_placement(&alive(), &rows, 3).unwrap(),
            "P0 N1,N3 led by N1; P1 N1,N2 led by N2"
        );
    }

    #[test]
    fn one_address_per_list_gives_consecutive_ports() {
        let nodes = layout(
            3,
            &["http://127.0.0.1:8080".into()],
            &["http://127.0.0.1:9070".into()],
            None,
        )
        .unwrap();
        let ingress: Vec<u16> = nodes.iter().map(|n| n.ingress_port).collect();
        let node: Vec<u16> = nodes.iter().map(|n| n.node_port).collect();
        assert_eq!(ingress, [8080, 8081, 8082]);
        assert_eq!(node, [5122, 5123, 5124]);
        assert_eq!(nodes[2].name, "n3");
    }

    #[test]
    fn a_full_list_is_taken_as_is_and_a_short_one_refused() {
        let urls: Vec<String> = ["http://h:1", "http://h:7", "http://h:3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let nodes = layout(3, &urls, &urls, Some("11,12,13")).unwrap();
        assert_eq!(nodes[1].ingress_port, 7);
        assert_eq!(nodes[2].node_port, 13);
        let err = layout(3, &urls[..2], &urls, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("RESTATE_INGRESS_URL lists 2"), "{err}");
    }
}
