//! Follower fetching over real TCP between two on-disk logs: acks=all completes once the follower
//! has the records fsynced, the follower's log is byte-identical, and a fetch for a partition the
//! peer does not lead is refused.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_broker::log::{LogConfig, LogManager, Partition, SystemClock};
use sluice_broker::replication::fetcher::{fetch_once, run_follower, Leaders, ReplicaHandler};
use sluice_broker::replication::leader::LeaderConfig;
use sluice_broker::replication::message::{
    FetchRequest, PartitionState, ReplicaError, TopicPartition,
};
use sluice_broker::replication::peer::transport::{serve, PeerClient};
use sluice_broker::replication::replica::{FollowerReplica, LeaderReplica};
use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};

const DEADLINE: Duration = Duration::from_secs(20);

struct Node {
    _dir: tempfile::TempDir,
    _logs: LogManager,
    partition: Arc<Partition>,
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = LogManager::open(dir.path(), LogConfig::default(), Arc::new(SystemClock))
        .expect("open logs");
    let partition = logs
        .create_partition("orders", 0, LogConfig::default())
        .expect("create partition");
    Node {
        _dir: dir,
        _logs: logs,
        partition,
    }
}

fn batch(i: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    for r in 0..20 {
        let value = format!("batch {i} record {r}");
        b.append(1_700_000_000_000, None, Some(value.as_bytes()), &[])
            .expect("append record");
    }
    b.finish().expect("finish")
}

fn all_bytes(p: &Partition) -> Vec<u8> {
    let end = p.log_end_offset().expect("end");
    p.read(0, usize::MAX, end)
        .expect("read")
        .chunks
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_over_tcp_lets_acks_all_complete_and_mirrors_the_log() {
    let (n1, n2) = (node(), node());
    let tp = TopicPartition::new("orders", 0);
    let state = PartitionState {
        replicas: vec![1, 2],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1, 2],
        min_insync: 2,
    };
    let leaders = Arc::new(Leaders::new());
    let leader = Arc::new(
        LeaderReplica::new(
            n1.partition.clone(),
            1,
            &state,
            LeaderConfig::default(),
            0,
            0,
        )
        .expect("leader"),
    );
    const TOPIC_ID: u64 = 7;
    leaders.insert(tp.clone(), TOPIC_ID, leader.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(serve(
        listener,
        Arc::new(ReplicaHandler::new(leaders, None)),
    ));

    let follower = Arc::new(FollowerReplica::new(n2.partition.clone(), 2, &state, 0, 0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fetcher = tokio::spawn(run_follower(
        follower.clone(),
        Arc::new(PeerClient::new(addr.clone())),
        tp.clone(),
        TOPIC_ID,
        stop_rx,
    ));

    for i in 0..10 {
        let info = tokio::time::timeout(DEADLINE, leader.append(batch(i), true))
            .await
            .expect("acks=all within the deadline")
            .expect("acks=all");
        assert_eq!(info.base_offset, 20 * i as i64);
        // Acknowledged means durable on both: the follower's fsynced prefix covers it.
        assert!(
            n2.partition.durable_offset() > info.last_offset,
            "acknowledged before the follower's fsync"
        );
    }
    assert_eq!(leader.high_watermark(), 200);
    assert_eq!(all_bytes(&n2.partition), all_bytes(&n1.partition));

    // Another partition is not led here: the peer says so.
    let other = TopicPartition::new("orders", 1);
    let req = FetchRequest {
        replica: 2,
        leader_epoch: 0,
        fetch_offset: 0,
        last_fetched_epoch: -1,
        durable_offset: 0,
        log_start_offset: 0,
        fetch_id: 99,
    };
    let resp = fetch_once(&PeerClient::new(addr.clone()), &other, TOPIC_ID, req, 1024)
        .await
        .expect("answer");
    assert_eq!(resp.result.map(|_| ()), Err(ReplicaError::NotLeader));
    // A replica of another incarnation of the topic (deleted and created again under its name)
    // is refused, whatever its offsets.
    let resp = fetch_once(&PeerClient::new(addr.clone()), &tp, TOPIC_ID + 1, req, 1024)
        .await
        .expect("answer");
    assert_eq!(
        resp.result.map(|_| ()),
        Err(ReplicaError::InconsistentTopicId)
    );
    // A node of an earlier version names no topic id (0): it is served, as before.
    let resp = fetch_once(&PeerClient::new(addr), &tp, 0, req, 1024)
        .await
        .expect("answer");
    assert!(resp.result.is_ok(), "{:?}", resp.result.map(|_| ()));

    stop_tx.send(true).expect("stop");
    tokio::time::timeout(DEADLINE, fetcher)
        .await
        .expect("fetcher stops")
        .expect("fetcher task");
    server.abort();
}
