//! The metadata Raft: three in-process nodes with on-disk stores elect a leader, apply commands
//! identically, fail over when the leader goes, and get their state back after a restart (from the
//! snapshot plus the log).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sluice_broker::replication::controller::{
    ClusterState, CommandOutcome, MetadataCommand, MetadataError,
};
use sluice_broker::replication::message::TopicPartition;
use sluice_broker::replication::raft::mem_network::MemRouter;
use sluice_broker::replication::raft::{self, MetadataNode, MetadataRaftError};

const DEADLINE: Duration = Duration::from_secs(20);

async fn start(router: &MemRouter, id: u64, dir: &Path) -> MetadataNode {
    let config = raft::default_config().expect("valid default config");
    let node = raft::open_node(id, dir, config, router.factory(id))
        .await
        .expect("open metadata node");
    router.add(id, node.raft.clone());
    node
}

async fn wait_leader(nodes: &BTreeMap<u64, MetadataNode>) -> u64 {
    let any = nodes.values().next().expect("a node");
    let m = any
        .raft
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.current_leader.is_some_and(|l| nodes.contains_key(&l)),
            "a live leader",
        )
        .await
        .expect("a leader within the deadline");
    m.current_leader.expect("leader")
}

async fn wait_state(
    node: &MetadataNode,
    what: &str,
    pred: impl Fn(&ClusterState) -> bool,
) -> ClusterState {
    let mut rx = node.state.clone();
    let state = tokio::time::timeout(DEADLINE, rx.wait_for(|s| pred(s)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("state channel open")
        .clone();
    state
}

fn register(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        id,
        incarnation: 1,
        client_addr: format!("127.0.0.1:{}", 9092 + id),
        peer_addr: format!("127.0.0.1:{}", 9192 + id),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_apply_fail_over_and_recover_from_disk() {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let router = MemRouter::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3u64 {
        nodes.insert(id, start(&router, id, dirs[id as usize - 1].path()).await);
    }
    let members = raft::membership(&[(1, "n1".into()), (2, "n2".into()), (3, "n3".into())]);
    nodes[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialize");
    let leader = wait_leader(&nodes).await;

    // Commands go through the leader; a follower refuses and names the leader.
    let follower = *nodes.keys().find(|&&id| id != leader).expect("a follower");
    nodes[&follower]
        .raft
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.current_leader == Some(leader),
            "the follower to know the leader",
        )
        .await
        .expect("follower learns the leader");
    match raft::propose(&nodes[&follower].raft, register(1)).await {
        Err(MetadataRaftError::NotLeader { leader: Some(l) }) => assert_eq!(l, leader),
        other => panic!("a follower accepted a proposal: {other:?}"),
    }
    for id in 1..=3 {
        let out = raft::propose(&nodes[&leader].raft, register(id))
            .await
            .expect("committed");
        assert_eq!(out, Ok(CommandOutcome::Done));
    }
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        partitions: 3,
        replication_factor: 3,
        configs: BTreeMap::new(),
    };
    assert_eq!(
        raft::propose(&nodes[&leader].raft, create.clone())
            .await
            .expect("committed"),
        Ok(CommandOutcome::Done)
    );
    // A refusal is a deterministic result, applied alike everywhere.
    assert_eq!(
        raft::propose(&nodes[&leader].raft, create)
            .await
            .expect("committed"),
        Err(MetadataError::TopicExists("orders".into()))
    );
    let expected = nodes[&leader].state.borrow().clone();
    assert_eq!(expected.topics["orders"].partitions.len(), 3);
    for node in nodes.values() {
        let s = wait_state(node, "the topic on every node", |s| {
            s.topics.contains_key("orders")
        })
        .await;
        assert_eq!(s, expected);
    }

    // Snapshot on the leader (so a restart exercises snapshot + log), then kill it.
    nodes[&leader]
        .raft
        .trigger()
        .snapshot()
        .await
        .expect("snapshot");
    nodes[&leader]
        .raft
        .wait(Some(DEADLINE))
        .metrics(|m| m.snapshot.is_some(), "snapshot built")
        .await
        .expect("snapshot within the deadline");
    let old = nodes.remove(&leader).expect("leader node");
    router.remove(leader);
    old.raft.shutdown().await.expect("shutdown");
    drop(old);

    let new_leader = wait_leader(&nodes).await;
    assert_ne!(new_leader, leader);
    let fence = MetadataCommand::FenceBroker {
        id: leader as i32,
        incarnation: 1,
    };
    raft::propose(&nodes[&new_leader].raft, fence)
        .await
        .expect("committed")
        .expect("fenced");
    let tp = TopicPartition::new("orders", 0);
    let after = nodes[&new_leader].state.borrow().clone();
    assert_ne!(
        after.partition(&tp).expect("partition").leader,
        leader as i32
    );

    // The old leader comes back from its directory and catches up with what it missed.
    let back = start(&router, leader, dirs[leader as usize - 1].path()).await;
    let s = wait_state(&back, "the restarted node to catch up", |s| {
        s.brokers.get(&(leader as i32)).is_some_and(|b| b.fenced)
    })
    .await;
    assert_eq!(s, after);
    nodes.insert(leader, back);
    for node in nodes.values() {
        node.raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_single_node_keeps_its_metadata() {
    let dir = tempfile::tempdir().expect("temp dir");
    let router = MemRouter::new();
    let node = start(&router, 1, dir.path()).await;
    node.raft
        .initialize(raft::membership(&[(1, "n1".into())]))
        .await
        .expect("initialize");
    node.raft
        .wait(Some(DEADLINE))
        .metrics(|m| m.current_leader == Some(1), "leader")
        .await
        .expect("leader");
    raft::propose(&node.raft, register(7))
        .await
        .expect("committed")
        .expect("registered");
    node.raft.shutdown().await.expect("shutdown");
    router.remove(1);
    drop(node);

    let node = start(&router, 1, dir.path()).await;
    let s = wait_state(&node, "broker 7 after restart", |s| {
        s.brokers.contains_key(&7)
    })
    .await;
    assert_eq!(s.brokers[&7].client_addr, "127.0.0.1:9099");
    node.raft.shutdown().await.expect("shutdown");
}

/// The same cluster over real loopback TCP (the peer protocol), with the leader's listener and
/// Raft stopped mid-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_tcp_elect_apply_and_fail_over() {
    use std::sync::Arc;

    use sluice_broker::replication::peer::transport::{serve, RaftHandler, TcpRaftNetwork};

    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for id in 1..=3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        addrs.push((id, l.local_addr().expect("addr").to_string()));
        listeners.push(l);
    }
    let mut nodes = BTreeMap::new();
    let mut servers = BTreeMap::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let config = raft::default_config().expect("config");
        let node = raft::open_node(id, dirs[i].path(), config, TcpRaftNetwork::default())
            .await
            .expect("open");
        let handler = Arc::new(RaftHandler::new(node.raft.clone()));
        servers.insert(id, tokio::spawn(serve(listener, handler)));
        nodes.insert(id, node);
    }
    nodes[&1]
        .raft
        .initialize(raft::membership(&addrs))
        .await
        .expect("initialize");
    let leader = wait_leader(&nodes).await;
    for id in 1..=3 {
        raft::propose(&nodes[&leader].raft, register(id))
            .await
            .expect("committed")
            .expect("registered");
    }
    for node in nodes.values() {
        wait_state(node, "three brokers everywhere", |s| s.brokers.len() == 3).await;
    }

    servers.remove(&leader).expect("server").abort();
    let old = nodes.remove(&leader).expect("leader");
    old.raft.shutdown().await.expect("shutdown");
    let new_leader = wait_leader(&nodes).await;
    assert_ne!(new_leader, leader);
    let create = MetadataCommand::CreateTopic {
        name: "t".into(),
        partitions: 1,
        replication_factor: 2,
        configs: BTreeMap::new(),
    };
    raft::propose(&nodes[&new_leader].raft, create)
        .await
        .expect("committed")
        .expect("created");
    for node in nodes.values() {
        wait_state(node, "the topic on both survivors", |s| {
            s.topics.contains_key("t")
        })
        .await;
    }
    for node in nodes.values() {
        node.raft.shutdown().await.expect("shutdown");
    }
    for (_, s) in servers {
        s.abort();
    }
}
