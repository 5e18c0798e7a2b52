//! `sluice cluster status`: the cluster's nodes, whether each is alive and answering, which one
//! leads the metadata log (the active controller), and how many partitions each leads.
//!
//! Everything comes from Kafka APIs: Metadata gives the live (unfenced) brokers, the controller
//! id and every partition's leader and ISR; DescribeConfigs on a broker gives
//! `controller.quorum.voters` (KRaft's name for every metadata voter: here every node), so nodes
//! that are down still appear. Each live broker is also asked directly, to tell "registered" from
//! "answering". (Kafka's DescribeCluster and DescribeQuorum exist only in flexible versions,
//! which Sluice does not speak.)

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use sluice_protocol::wire::messages::describe_configs as wd;
use sluice_protocol::wire::messages::metadata::MetadataRequest;
use sluice_protocol::wire::{Request, Response};

use super::Global;
use crate::cluster::{Client, Target};

/// Kafka's DescribeConfigs resource type for a broker.
const RESOURCE_BROKER: i8 = 4;
/// The broker config naming every metadata voter, `ID@HOST:PORT,...`.
const VOTERS_CONFIG: &str = "controller.quorum.voters";

/// Cluster inspection.
#[derive(Debug, Subcommand)]
#[command(after_help = "Example:\n  sluice cluster status --brokers 127.0.0.1:9092")]
pub enum ClusterCommand {
    /// Nodes, liveness, the metadata leader (controller) and leaderships
    #[command(after_help = "Example:\n  sluice cluster status\n  sluice cluster status --json")]
    Status {
        /// One JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// One node as `cluster status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    /// Node id.
    pub id: i32,
    /// Client address, when the node is registered and unfenced.
    pub client_addr: Option<String>,
    /// Peer (internal) address, from `controller.quorum.voters`.
    pub peer_addr: Option<String>,
    /// Registered and unfenced (listed in Metadata).
    pub alive: bool,
    /// Answered a request from this command just now.
    pub answering: bool,
    /// Leads the metadata log (the active controller).
    pub controller: bool,
    /// Partitions it leads.
    pub leaderships: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The metadata leader, if one is known.
    pub controller: Option<i32>,
    /// Every node.
    pub nodes: Vec<NodeStatus>,
    /// Partitions in total.
    pub partitions: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
}

/// Runs a cluster command.
pub async fn run(global: &Global, cmd: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status { json } = cmd;
    let client = Client::connect(global.client_config())
        .await
        .context("cannot reach the cluster")?;
    let status = status(&client).await?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        print!("{}", table(&status));
    }
    Ok(())
}

/// Gathers the report through `client`.
pub async fn status(client: &Client) -> anyhow::Result<ClusterStatus> {
    let metadata = client
        .refresh_metadata(None)
        .await
        .context("cannot read the cluster metadata")?;
    let controller = (metadata.controller_id >= 0).then_some(metadata.controller_id);
    let mut leaderships: BTreeMap<i32, usize> = BTreeMap::new();
    let (mut partitions, mut under_replicated, mut offline) = (0, 0, 0);
    for t in &metadata.topics {
        for p in &t.partitions {
            partitions += 1;
            if p.leader_id < 0 {
                offline += 1;
            } else {
                *leaderships.entry(p.leader_id).or_default() += 1;
            }
            if p.isr_nodes.len() < p.replica_nodes.len() {
                under_replicated += 1;
            }
        }
    }
    let mut nodes: BTreeMap<i32, NodeStatus> = BTreeMap::new();
    for b in &metadata.brokers {
        nodes.insert(
            b.node_id,
            NodeStatus {
                id: b.node_id,
                client_addr: Some(format!("{}:{}", b.host, b.port)),
                peer_addr: None,
                alive: true,
                answering: false,
                controller: false,
                leaderships: 0,
            },
        );
    }
    // Voters from the first live broker that answers (a single node has none).
    for b in &metadata.brokers {
        let Ok(voters) = voters(client, b.node_id).await else {
            continue;
        };
        for (id, peer) in voters {
            let node = nodes.entry(id).or_insert(NodeStatus {
                id,
                client_addr: None,
                peer_addr: None,
                alive: false,
                answering: false,
                controller: false,
                leaderships: 0,
            });
            node.peer_addr = Some(peer);
        }
        break;
    }
    for node in nodes.values_mut() {
        node.controller = controller == Some(node.id);
        node.leaderships = leaderships.get(&node.id).copied().unwrap_or(0);
        if node.alive {
            node.answering = ping(client, node.id).await;
        }
    }
    Ok(ClusterStatus {
        cluster_id: metadata.cluster_id.clone(),
        controller,
        nodes: nodes.into_values().collect(),
        partitions,
        under_replicated,
        offline,
    })
}

/// `controller.quorum.voters` of broker `node`, parsed.
async fn voters(client: &Client, node: i32) -> anyhow::Result<Vec<(i32, String)>> {
    let request = Request::DescribeConfigs(wd::DescribeConfigsRequest {
        resources: vec![wd::DescribeConfigsResource {
            resource_type: RESOURCE_BROKER,
            resource_name: node.to_string(),
            configuration_keys: Some(vec![VOTERS_CONFIG.to_string()]),
        }],
        include_synonyms: false,
    });
    let response = client
        .send_request(Target::Node(node), request, Duration::ZERO)
        .await?;
    let Response::DescribeConfigs(r) = response else {
        anyhow::bail!("unexpected response type");
    };
    let mut out = Vec::new();
    for result in r.results {
        for c in result.configs {
            if c.name != VOTERS_CONFIG {
                continue;
            }
            for entry in c.value.unwrap_or_default().split(',') {
                if let Some((id, addr)) = entry.trim().split_once('@') {
                    if let Ok(id) = id.parse::<i32>() {
                        out.push((id, addr.to_string()));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Whether broker `node` answers a Metadata request (brokers only) now.
async fn ping(client: &Client, node: i32) -> bool {
    let request = Request::Metadata(MetadataRequest {
        topics: Some(Vec::new()),
        ..Default::default()
    });
    client
        .send_request(Target::Node(node), request, Duration::ZERO)
        .await
        .is_ok()
}

/// The human-readable report.
pub fn table(s: &ClusterStatus) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "cluster {}  metadata leader (controller): {}\n",
        s.cluster_id.as_deref().unwrap_or("-"),
        s.controller.map_or("none".to_string(), |c| c.to_string())
    ));
    out.push_str(&format!(
        "{:<6}{:<24}{:<24}{:<13}{:<12}{}\n",
        "NODE", "CLIENT", "PEER", "STATE", "ROLE", "LEADS"
    ));
    for n in &s.nodes {
        let state = match (n.alive, n.answering) {
            (true, true) => "alive",
            (true, false) => "unreachable",
            (false, _) => "down",
        };
        out.push_str(&format!(
            "{:<6}{:<24}{:<24}{:<13}{:<12}{}\n",
            n.id,
            n.client_addr.as_deref().unwrap_or("-"),
            n.peer_addr.as_deref().unwrap_or("-"),
            state,
            if n.controller { "controller" } else { "broker" },
            n.leaderships
        ));
    }
    out.push_str(&format!(
        "partitions: {} ({} under-replicated, {} without a leader)\n",
        s.partitions, s.under_replicated, s.offline
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_down_nodes_and_the_controller() {
        let s = ClusterStatus {
            cluster_id: Some("c1".into()),
            controller: Some(2),
            nodes: vec![
                NodeStatus {
                    id: 1,
                    client_addr: None,
                    peer_addr: Some("h:9101".into()),
                    alive: false,
                    answering: false,
                    controller: false,
                    leaderships: 0,
                },
                NodeStatus {
                    id: 2,
                    client_addr: Some("h:9092".into()),
                    peer_addr: Some("h:9102".into()),
                    alive: true,
                    answering: true,
                    controller: true,
                    leaderships: 3,
                },
            ],
            partitions: 3,
            under_replicated: 3,
            offline: 0,
        };
        let t = table(&s);
        assert!(t.contains("metadata leader (controller): 2"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[2].starts_with("1 ") && lines[2].contains("down"),
            "{t}"
        );
        assert!(
            lines[3].contains("alive") && lines[3].contains("controller"),
            "{t}"
        );
        assert!(t.contains("3 under-replicated"), "{t}");
    }
}
