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

/// Admin `/health` answers before partitions have leaders; introspection SQL answers on a node
/// only once it can reach every partition, so that is the readiness test, on every node. In
/// the first seconds leaders still move between nodes, and a node that answered may fail
/// again while the next is checked (seen: the first node refused a query just after dev said
/// ready): ready is every node answering in two passes in a row.
pub async fn wait_every_partition_led(
    admin_urls: &[String],
    limit: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    let mut passes = 0;
    while passes < 2 {
        let mut failing = None;
        for admin in admin_urls {
            if !answers_query(&client, admin).await {
                failing = Some(admin);
                break;
            }
        }
        let Some(admin) = failing else {
            passes += 1;
            continue;
        };
        passes = 0;
        anyhow::ensure!(
            Instant::now() < deadline,
            "Restate node {admin} did not get partition leaders within {limit:?} \
             (see the restate-n*.log files under the dev data folder's logs/)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
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
