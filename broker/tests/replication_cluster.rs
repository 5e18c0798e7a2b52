//! Three cluster nodes in one process, over loopback TCP with their own on-disk logs: they
//! register, a replicated topic gets leaders and followers, acks=all writes complete, the
//! partition leader is stopped without warning, a new leader is elected from the ISR, and every
//! acknowledged record is still there at its offset, on both survivors, byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_broker::log::{Durability, LogConfig, LogManager, SystemClock};
use sluice_broker::replication::cluster::{ClusterConfig, ClusterNode};
use sluice_broker::replication::controller::{ClusterState, MetadataCommand};
use sluice_broker::replication::message::TopicPartition;
use sluice_broker::replication::NodeId;
use sluice_protocol::record::{BatchIter, BatchOptions, RecordBatchBuilder};

const DEADLINE: Duration = Duration::from_secs(30);

fn batch(i: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    for r in 0..10 {
        let value = format!("batch {i} record {r}");
        b.append(1_700_000_000_000, None, Some(value.as_bytes()), &[])
            .expect("append record");
    }
    b.finish().expect("finish")
}

async fn wait_state(
    node: &ClusterNode,
    what: &str,
    pred: impl Fn(&ClusterState) -> bool,
) -> ClusterState {
    let mut rx = node.state();
    let s = tokio::time::timeout(DEADLINE, rx.wait_for(|s| pred(s)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("state channel")
        .clone();
    s
}

/// Polls `cond` every 20 ms until it holds, failing after the deadline.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stored(logs: &LogManager, tp: &TopicPartition, until: i64) -> Vec<(i64, Bytes)> {
    let p = logs.partition(&tp.topic, tp.partition).expect("partition");
    let read = p.read(0, usize::MAX, until).expect("read");
    let all: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
    BatchIter::new(Bytes::from(all))
        .map(|b| {
            let b = b.expect("batch");
            (b.header().base_offset, b.as_bytes().slice(12..))
        })
        .filter(|(o, _)| *o < until)
        .collect()
}

/// The data dirs of three nodes (node `id` in `dirs[id - 1]`).
fn three_dirs() -> Vec<tempfile::TempDir> {
    (0..3).map(|_| tempfile::tempdir().expect("dir")).collect()
}

fn open_logs(dir: &tempfile::TempDir) -> Arc<LogManager> {
    Arc::new(
        LogManager::open(dir.path(), LogConfig::default(), Arc::new(SystemClock)).expect("logs"),
    )
}

fn node_config(
    id: NodeId,
    peers: &BTreeMap<NodeId, String>,
    dirs: &[tempfile::TempDir],
) -> ClusterConfig {
    ClusterConfig::new(
        id,
        peers.clone(),
        format!("127.0.0.1:{}", 9092 + id),
        dirs[id as usize - 1].path().to_path_buf(),
    )
}

/// Three running nodes, their logs and peer addresses.
struct Three {
    peers: BTreeMap<NodeId, String>,
    nodes: BTreeMap<NodeId, ClusterNode>,
    logs: BTreeMap<NodeId, Arc<LogManager>>,
}

/// Starts three nodes over `dirs` and waits until all three are registered.
async fn start_three(dirs: &[tempfile::TempDir]) -> Three {
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for id in 1..=3 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        peers.insert(id as NodeId, l.local_addr().expect("addr").to_string());
        listeners.push(l);
    }
    let mut logs = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as NodeId + 1;
        let log = open_logs(&dirs[i]);
        nodes.insert(
            id,
            ClusterNode::start(node_config(id, &peers, dirs), log.clone(), listener)
                .await
                .expect("start"),
        );
        logs.insert(id, log);
    }
    wait_state(&nodes[&1], "three registered brokers", |s| {
        s.brokers.values().filter(|b| !b.fenced).count() == 3
    })
    .await;
    Three { peers, nodes, logs }
}

/// Creates "orders" (1 partition, 3 replicas) through node `via`; returns the metadata once it
/// holds the topic and the partition's leader has taken over.
async fn create_orders(nodes: &BTreeMap<NodeId, ClusterNode>, via: NodeId) -> ClusterState {
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        partitions: 1,
        replication_factor: 3,
        configs: BTreeMap::new(),
    };
    nodes[&via]
        .propose(create)
        .await
        .expect("proposed")
        .expect("created");
    let tp = TopicPartition::new("orders", 0);
    let state = wait_state(&nodes[&1], "the topic", |s| s.partition(&tp).is_some()).await;
    let leader = state.partition(&tp).expect("partition").leader;
    wait_until("the leader to take over", || {
        nodes[&leader].leaders().get(&tp).is_some()
    })
    .await;
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_losing_the_partition_leader() {
    let dirs = three_dirs();
    let Three {
        mut nodes, logs, ..
    } = start_three(&dirs).await;
    let tp = TopicPartition::new("orders", 0);
    let first = create_orders(&nodes, 2)
        .await
        .partition(&tp)
        .expect("partition")
        .clone();

    let mut acked = Vec::new();
    let leader = nodes[&first.leader]
        .leaders()
        .get(&tp)
        .expect("leader replica");
    for i in 0..20 {
        let info = tokio::time::timeout(DEADLINE, leader.append(batch(i), true))
            .await
            .expect("acks=all in time")
            .expect("acks=all");
        acked.push((info.base_offset, i));
    }
    drop(leader);

    // The leader dies without a word.
    let dead = first.leader;
    let killed_at = std::time::Instant::now();
    nodes.remove(&dead).expect("node").stop().await;
    let survivor = *nodes.keys().next().expect("a survivor");
    let after = wait_state(&nodes[&survivor], "a new leader from the ISR", |s| {
        s.partition(&tp).is_some_and(|p| {
            p.leader != dead && p.leader > 0 && p.leader_epoch > first.leader_epoch
        })
    })
    .await;
    let new_id = after.partition(&tp).expect("partition").leader;
    assert!(first.isr.contains(&new_id), "elected outside the ISR");
    wait_until("the new leader to take over", || {
        nodes[&new_id].leaders().get(&tp).is_some()
    })
    .await;
    let new_leader = nodes[&new_id].leaders().get(&tp).expect("new leader");
    // A figure for the record (not an assertion): the budget is 3 s.
    println!(
        "partition leader replaced {:?} after the kill",
        killed_at.elapsed()
    );
    // Two brokers left, min.insync.replicas = 2: acks=all still works.
    for i in 20..25 {
        let info = tokio::time::timeout(DEADLINE, new_leader.append(batch(i), true))
            .await
            .expect("acks=all in time after failover")
            .expect("acks=all after failover");
        acked.push((info.base_offset, i));
    }
    let hw = new_leader.high_watermark();
    let on_leader = stored(&logs[&new_id], &tp, hw);
    for (offset, i) in &acked {
        let found = on_leader
            .iter()
            .find(|(o, _)| o == offset)
            .map(|(_, b)| b.clone());
        let expected = batch(*i).slice(12..);
        // The stored batch carries offsets and epoch stamped by the leader; its records must match.
        let found = found.unwrap_or_else(|| panic!("acknowledged batch at {offset} is gone"));
        assert_eq!(
            found.slice(49..),
            expected.slice(49..),
            "batch at {offset} changed"
        );
    }
    let other = *nodes
        .keys()
        .find(|&&id| id != new_id)
        .expect("the other survivor");
    wait_until("the other survivor to catch up", || {
        logs[&other]
            .partition("orders", 0)
            .is_some_and(|p| p.log_end_offset().is_ok_and(|e| e >= hw))
    })
    .await;
    assert_eq!(
        stored(&logs[&other], &tp, hw),
        on_leader,
        "survivors disagree below the HW"
    );
    drop(new_leader);
    for (_, n) in nodes {
        n.stop().await;
    }
}

/// A rolling-restart step: the partition leader shuts down cleanly (leadership moves first, so
/// acks=all keeps working), restarts from its directory, catches up and rejoins the ISR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_hands_over_first_and_rejoins_the_isr() {
    let dirs = three_dirs();
    let Three {
        peers,
        mut nodes,
        mut logs,
    } = start_three(&dirs).await;
    let tp = TopicPartition::new("orders", 0);
    let first = create_orders(&nodes, 3)
        .await
        .partition(&tp)
        .expect("p")
        .clone();
    let old = first.leader;
    let leader = nodes[&old].leaders().get(&tp).expect("leader");
    for i in 0..10 {
        tokio::time::timeout(DEADLINE, leader.append(batch(i), true))
            .await
            .expect("in time")
            .expect("acks=all");
    }
    drop(leader);

    nodes.remove(&old).expect("node").shutdown(DEADLINE).await;
    let survivor = *nodes.keys().next().expect("survivor");
    let moved = wait_state(&nodes[&survivor], "leadership to move", |s| {
        s.partition(&tp)
            .is_some_and(|p| p.leader != old && p.leader > 0)
    })
    .await;
    let p = moved.partition(&tp).expect("p");
    assert!(
        !p.isr.contains(&old),
        "a shut-down broker stays out of the ISR"
    );
    let new_id = p.leader;
    wait_until("the new leader to take over", || {
        nodes[&new_id].leaders().get(&tp).is_some()
    })
    .await;
    let new_leader = nodes[&new_id].leaders().get(&tp).expect("new leader");
    for i in 10..15 {
        tokio::time::timeout(DEADLINE, new_leader.append(batch(i), true))
            .await
            .expect("in time")
            .expect("acks=all during the restart");
    }

    // The node comes back from its directory, as a new incarnation. Its logs are dropped without
    // a clean close, so the restart also runs log recovery.
    drop(logs.remove(&old).expect("logs"));
    // The others keep dialling the stopped node's port, each dial from an ephemeral port: one of
    // them may hold this port for a moment (a dial to itself), so the rebind is retried.
    let mut rebind = None;
    wait_until("the peer port to be free again", || {
        rebind = std::net::TcpListener::bind(&peers[&old]).ok();
        rebind.is_some()
    })
    .await;
    let listener = rebind.expect("rebound");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("rebind the peer port");
    let log = open_logs(&dirs[old as usize - 1]);
    nodes.insert(
        old,
        ClusterNode::start(node_config(old, &peers, &dirs), log.clone(), listener)
            .await
            .expect("restart"),
    );
    logs.insert(old, log);
    // It catches up and, once its copy is durable, rejoins the ISR. It may come back holding
    // every record already (it followed the new leader while stopping) with only part of it
    // synced: the follower must sync that tail by itself, since no fetch brings anything new.
    let hw = new_leader.high_watermark();
    assert_eq!(hw, 150);
    wait_state(
        &nodes[&new_id],
        "the restarted broker back in the ISR",
        |s| s.partition(&tp).is_some_and(|p| p.isr.len() == 3),
    )
    .await;
    assert_eq!(
        stored(&logs[&old], &tp, hw),
        stored(&logs[&new_id], &tp, hw)
    );
    drop(new_leader);
    for (_, n) in nodes {
        n.stop().await;
    }
}

/// A node whose data dir still holds a replica of a deleted topic (deleted while the node was
/// down) is assigned a new topic of the same name: the old replica, stamped with the old topic's
/// id, is replaced by an empty one that replicates the new topic, instead of passing its records
/// off as the new topic's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_another_topic_incarnation_is_replaced_not_reused() {
    let dirs = three_dirs();
    // Node 3's leftover: five batches of the deleted "orders", stamped with its id.
    {
        let old = LogManager::open(dirs[2].path(), LogConfig::default(), Arc::new(SystemClock))
            .expect("logs");
        let p = old
            .create_partition("orders", 0, LogConfig::default())
            .expect("partition");
        for i in 100..105 {
            p.append(batch(i), 0, Durability::Durable)
                .await
                .expect("old append");
        }
        old.stamp_topic_id("orders", 0, u64::MAX).expect("stamp");
        old.shutdown().expect("shutdown");
    }
    let Three { nodes, logs, .. } = start_three(&dirs).await;
    let tp = TopicPartition::new("orders", 0);
    let state = create_orders(&nodes, 1).await;
    let topic_id = state.topics["orders"].id;
    let first = state.partition(&tp).expect("partition").clone();
    let leader = nodes[&first.leader]
        .leaders()
        .get(&tp)
        .expect("leader replica");
    for i in 0..2 {
        tokio::time::timeout(DEADLINE, leader.append(batch(i), true))
            .await
            .expect("acks=all in time")
            .expect("acks=all");
    }
    let hw = leader.high_watermark();
    assert_eq!(hw, 20);
    drop(leader);
    wait_until("node 3 to hold the new topic's records", || {
        logs[&3]
            .partition("orders", 0)
            .is_some_and(|p| p.log_end_offset().is_ok_and(|e| e == hw))
            && logs[&3].topic_id("orders", 0).ok().flatten() == Some(topic_id)
    })
    .await;
    assert_eq!(
        stored(&logs[&3], &tp, hw),
        stored(&logs[&first.leader], &tp, hw),
        "node 3 serves records of the deleted topic"
    );
    for (_, n) in nodes {
        n.stop().await;
    }
}
