//! Committed offsets through a replicated offsets partition (`group::replicated_offsets`): a
//! commit is answered only once every in-sync replica holds it, a commit whose leadership ends
//! first is refused rather than acknowledged, and a coordinator loaded from a follower's replica
//! (as the next leader would) finds every acknowledged commit.

use std::sync::Arc;
use std::time::Duration;

use sluice_broker::group::config::GroupConfig;
use sluice_broker::group::coordinator::GroupCoordinator;
use sluice_broker::group::replicated_offsets::ReplicatedOffsetsLog;
use sluice_broker::group::types::{CommitIdentity, CommittedOffset, TopicPartition};
use sluice_broker::log::{LogConfig, LogManager, Partition, SystemClock};
use sluice_broker::replication::leader::LeaderConfig;
use sluice_broker::replication::message::PartitionState;
use sluice_broker::replication::replica::{FollowerReplica, LeaderReplica};

const DEADLINE: Duration = Duration::from_secs(20);
const FETCH_BYTES: usize = 1 << 20;

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
        .create_partition("__consumer_offsets", 0, LogConfig::default())
        .expect("create partition");
    Node {
        _dir: dir,
        _logs: logs,
        partition,
    }
}

fn who() -> CommitIdentity {
    CommitIdentity {
        group_id: "billing".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    }
}

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "orders".into(),
        partition: 0,
    }
}

fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 1,
    }
}

/// Fetch rounds from both followers until `done` holds.
async fn replicate_until(
    leader: &LeaderReplica,
    followers: &[&FollowerReplica],
    done: impl Fn() -> bool,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut now_ms = 0;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replication stalled"
        );
        now_ms += 10;
        for f in followers {
            if let Some(req) = f.poll_fetch(now_ms).expect("poll") {
                let resp = leader.fetch(now_ms, &req, FETCH_BYTES).expect("fetch");
                f.on_fetch_response(now_ms, resp).await.expect("apply");
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Waits until the leader's log holds `end` records.
async fn wait_appended(leader: &LeaderReplica, end: i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while leader.partition().log_end_offset().expect("end") < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "commit never appended"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_answered_once_replicated_and_survive_a_new_leader() {
    let (n1, n2, n3) = (node(), node(), node());
    let state = PartitionState {
        replicas: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1, 2, 3],
        min_insync: 2,
    };
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
    let f2 = FollowerReplica::new(n2.partition.clone(), 2, &state, 0, 0);
    let f3 = FollowerReplica::new(n3.partition.clone(), 3, &state, 0, 0);
    let coordinator = GroupCoordinator::load(
        GroupConfig::default(),
        Arc::new(ReplicatedOffsetsLog::new(leader.clone())),
    )
    .await
    .expect("load");

    // Appended on the leader, but not answered while the followers have not fetched it: the
    // high watermark cannot pass it without them.
    let pending = tokio::spawn({
        let c = coordinator.clone();
        async move { c.commit(who(), vec![(tp(), offset(42))]).await }
    });
    wait_appended(&leader, 1).await;
    assert!(
        !pending.is_finished(),
        "answered before any follower held it"
    );
    replicate_until(&leader, &[&f2, &f3], || pending.is_finished()).await;
    let answer = pending.await.expect("commit task");
    assert_eq!(answer[0].1.as_i16(), 0, "{answer:?}");

    // The leadership ends before the next commit is replicated: refused, never acknowledged.
    let lost = tokio::spawn({
        let c = coordinator.clone();
        async move { c.commit(who(), vec![(tp(), offset(99))]).await }
    });
    wait_appended(&leader, 2).await;
    leader.resign();
    let refused = tokio::time::timeout(DEADLINE, lost)
        .await
        .expect("answered after the leadership ended")
        .expect("commit task");
    assert_ne!(refused[0].1.as_i16(), 0, "{refused:?}");
    drop(coordinator);

    // Follower 2 becomes the leader and loads its own replica: the acknowledged commit is there.
    let next = PartitionState {
        leader: 2,
        leader_epoch: 1,
        partition_epoch: 1,
        isr: vec![2, 3],
        ..state
    };
    let new_leader = Arc::new(
        LeaderReplica::new(
            n2.partition.clone(),
            2,
            &next,
            LeaderConfig::default(),
            0,
            1,
        )
        .expect("new leader"),
    );
    let reloaded = GroupCoordinator::load(
        GroupConfig::default(),
        Arc::new(ReplicatedOffsetsLog::new(new_leader)),
    )
    .await
    .expect("load on the new leader");
    assert_eq!(
        reloaded.committed("billing", None),
        vec![(tp(), Some(offset(42)))]
    );
}
