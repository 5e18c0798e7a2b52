//! The replication cores over real partition logs on disk: acks=all waits for the followers'
//! fsync, followers end byte-identical to the leader, a deposed leader cuts its uncommitted tail,
//! and too small an ISR refuses acks=all writes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_broker::log::{LogConfig, LogManager, Partition, SystemClock};
use sluice_broker::replication::leader::LeaderConfig;
use sluice_broker::replication::message::{PartitionState, ReplicaError};
use sluice_broker::replication::replica::{
    FollowerOutcome, FollowerReplica, LeaderReplica, ReplicaAppendError,
};
use sluice_protocol::record::{BatchIter, BatchOptions, RecordBatchBuilder};

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
        .create_partition("orders", 0, LogConfig::default())
        .expect("create partition");
    Node {
        _dir: dir,
        _logs: logs,
        partition,
    }
}

fn batch(tag: &str, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    for i in 0..n {
        let value = format!("{tag}-{i}");
        b.append(
            1_700_000_000_000,
            Some(tag.as_bytes()),
            Some(value.as_bytes()),
            &[],
        )
        .expect("append record");
    }
    b.finish().expect("finish batch")
}

fn state(leader: i32, epoch: i32, isr: &[i32]) -> PartitionState {
    PartitionState {
        replicas: vec![1, 2, 3],
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
        isr: isr.to_vec(),
        min_insync: 2,
    }
}

/// Every stored byte of a partition, and the (base offset, leader epoch) of each batch.
fn contents(p: &Partition) -> (Vec<u8>, Vec<(i64, i32)>) {
    contents_from(p, 0)
}

/// One round of fetches from every follower to the leader.
async fn pump(
    leader: &LeaderReplica,
    followers: &[&FollowerReplica],
    now_ms: u64,
) -> Vec<FollowerOutcome> {
    let mut out = Vec::new();
    for f in followers {
        if let Some(req) = f.poll_fetch(now_ms).expect("poll") {
            let resp = leader
                .fetch(now_ms, &req, FETCH_BYTES)
                .expect("leader fetch");
            out.push(
                f.on_fetch_response(now_ms, resp)
                    .await
                    .expect("follower applies"),
            );
        }
    }
    out
}

/// Pumps fetches until `done`, failing after the deadline.
async fn pump_until(
    leader: &LeaderReplica,
    followers: &[&FollowerReplica],
    done: impl Fn() -> bool,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut now_ms = 0;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        now_ms += 10;
        pump(leader, followers, now_ms).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_followers_and_they_end_byte_identical() {
    let (n1, n2, n3) = (node(), node(), node());
    let s = state(1, 0, &[1, 2, 3]);
    let leader = Arc::new(
        LeaderReplica::new(n1.partition.clone(), 1, &s, LeaderConfig::default(), 0, 0)
            .expect("leader"),
    );
    let f2 = FollowerReplica::new(n2.partition.clone(), 2, &s, 0, 0);
    let f3 = FollowerReplica::new(n3.partition.clone(), 3, &s, 0, 0);

    let produce = {
        let leader = leader.clone();
        tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..5 {
                let info = leader
                    .append(batch(&format!("b{i}"), 10), true)
                    .await
                    .expect("acks=all append");
                offsets.push(info.base_offset);
            }
            offsets
        })
    };
    // The first batch is in the leader's log (and fsynced), yet not acknowledged: nobody fetched it.
    let mut end = n1.partition.subscribe();
    tokio::time::timeout(DEADLINE, end.wait_for(|&e| e >= 10))
        .await
        .expect("first append")
        .expect("watch");
    assert!(
        !produce.is_finished(),
        "acks=all answered before any follower had the records"
    );
    assert_eq!(leader.high_watermark(), 0);

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut now_ms = 0;
    while !produce.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks=all never completed"
        );
        now_ms += 10;
        pump(&leader, &[&f2, &f3], now_ms).await;
        tokio::task::yield_now().await;
    }
    let offsets = produce.await.expect("producer task");
    assert_eq!(offsets, vec![0, 10, 20, 30, 40]);
    assert_eq!(leader.high_watermark(), 50);
    // Let the followers hear the final high watermark.
    pump_until(
        &leader,
        &[&f2, &f3],
        || f2.high_watermark().is_ok_and(|h| h == 50),
        "the followers' HW",
    )
    .await;
    let expected = contents(&n1.partition);
    assert_eq!(
        expected.1.iter().map(|b| b.1).collect::<Vec<_>>(),
        vec![0; 5],
        "leader epoch stamped"
    );
    assert_eq!(contents(&n2.partition), expected);
    assert_eq!(contents(&n3.partition), expected);
    assert_eq!(f2.high_watermark().expect("hw"), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_truncates_its_uncommitted_tail_and_catches_up() {
    let (n1, n2) = (node(), node());
    let s0 = state(1, 0, &[1, 2]);
    let l1 = LeaderReplica::new(n1.partition.clone(), 1, &s0, LeaderConfig::default(), 0, 0)
        .expect("leader");
    let f2 = FollowerReplica::new(n2.partition.clone(), 2, &s0, 0, 0);
    l1.append(batch("committed", 5), false)
        .await
        .expect("append");
    pump_until(
        &l1,
        &[&f2],
        || l1.high_watermark() == 5,
        "the first batch to commit",
    )
    .await;
    // Node 1 takes two more batches that never reach node 2, then loses leadership.
    l1.append(batch("lost-a", 3), false).await.expect("append");
    l1.append(batch("lost-b", 3), false).await.expect("append");
    assert_eq!(n1.partition.log_end_offset().expect("end"), 11);
    l1.resign();

    let s1 = state(2, 1, &[2]);
    let l2 = LeaderReplica::new(
        n2.partition.clone(),
        2,
        &s1,
        LeaderConfig::default(),
        100,
        5,
    )
    .expect("leader 2");
    l2.append(batch("epoch-1", 2), false)
        .await
        .expect("append at the new leader");
    let f1 = FollowerReplica::new(n1.partition.clone(), 1, &s1, 0, 0);
    let mut outcomes = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut now_ms = 200;
    while n1.partition.log_end_offset().expect("end") != 7
        || !outcomes.contains(&FollowerOutcome::Truncated(5))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 never converged: {outcomes:?}"
        );
        now_ms += 10;
        outcomes.extend(pump(&l2, &[&f1], now_ms).await);
        tokio::task::yield_now().await;
    }
    let expected = contents(&n2.partition);
    assert_eq!(expected.1, vec![(0, 0), (5, 1)]);
    assert_eq!(contents(&n1.partition), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_is_refused_with_too_few_in_sync_replicas() {
    let n1 = node();
    let s = state(1, 0, &[1]);
    let leader = LeaderReplica::new(n1.partition.clone(), 1, &s, LeaderConfig::default(), 0, 0)
        .expect("leader");
    match leader.append(batch("x", 1), true).await {
        Err(ReplicaAppendError::Replica(ReplicaError::NotEnoughReplicas)) => {}
        other => panic!("expected NOT_ENOUGH_REPLICAS, got {other:?}"),
    }
    assert_eq!(
        n1.partition.log_end_offset().expect("end"),
        0,
        "nothing was written"
    );
    leader
        .append(batch("x", 1), false)
        .await
        .expect("acks=1 still works");
}

fn idempotent_batch(tag: &str, n: usize, producer_id: i64, base_sequence: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch: 0,
        base_sequence,
        ..BatchOptions::default()
    });
    for i in 0..n {
        let value = format!("{tag}-{i}");
        b.append(1_700_000_000_000, None, Some(value.as_bytes()), &[])
            .expect("append record");
    }
    b.finish().expect("finish batch")
}

/// The producer state travels with the batches, so a producer retrying after a failover (it
/// never heard the acknowledgement) is recognised by the new leader: no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_after_failover_is_not_duplicated() {
    let (n1, n2, n3) = (node(), node(), node());
    let s0 = state(1, 0, &[1, 2, 3]);
    let l1 = Arc::new(
        LeaderReplica::new(n1.partition.clone(), 1, &s0, LeaderConfig::default(), 0, 0)
            .expect("leader"),
    );
    let f2 = FollowerReplica::new(n2.partition.clone(), 2, &s0, 0, 0);
    let f3 = FollowerReplica::new(n3.partition.clone(), 3, &s0, 0, 0);
    let first = idempotent_batch("a", 4, 7, 0);
    let produce = {
        let l1 = l1.clone();
        let first = first.clone();
        tokio::spawn(async move { l1.append(first, true).await.expect("acks=all").base_offset })
    };
    pump_until(
        &l1,
        &[&f2, &f3],
        || produce.is_finished(),
        "the first acknowledgement",
    )
    .await;
    assert_eq!(produce.await.expect("task"), 0);

    // Node 1 dies; node 2 leads epoch 1 with node 3 following.
    let s1 = state(2, 1, &[2, 3]);
    let l2 = Arc::new(
        LeaderReplica::new(
            n2.partition.clone(),
            2,
            &s1,
            LeaderConfig::default(),
            100,
            0,
        )
        .expect("leader 2"),
    );
    let f3 = FollowerReplica::new(n3.partition.clone(), 3, &s1, 0, f3.next_fetch_id());
    let retry = {
        let l2 = l2.clone();
        tokio::spawn(async move { l2.append(first, true).await.expect("retry accepted") })
    };
    pump_until(
        &l2,
        &[&f3],
        || retry.is_finished(),
        "the retry's acknowledgement",
    )
    .await;
    let info = retry.await.expect("task");
    assert!(info.duplicate, "the retry was appended again: {info:?}");
    assert_eq!(info.base_offset, 0);
    assert_eq!(n2.partition.log_end_offset().expect("end"), 4);

    let next = {
        let l2 = l2.clone();
        tokio::spawn(async move {
            l2.append(idempotent_batch("b", 2, 7, 4), true)
                .await
                .expect("next sequence")
        })
    };
    pump_until(
        &l2,
        &[&f3],
        || next.is_finished(),
        "the next acknowledgement",
    )
    .await;
    assert_eq!(next.await.expect("task").base_offset, 4);
    assert_eq!(contents(&n3.partition), contents(&n2.partition));
}

/// The stored bytes and (base offset, epoch) of each batch from `from` on.
fn contents_from(p: &Partition, from: i64) -> (Vec<u8>, Vec<(i64, i32)>) {
    let end = p.log_end_offset().expect("end");
    let read = p.read(from, usize::MAX, end).expect("read");
    let bytes: Vec<u8> = read.chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let batches = BatchIter::new(Bytes::from(bytes.clone()))
        .map(|b| {
            let b = b.expect("stored batch parses");
            (b.header().base_offset, b.header().partition_leader_epoch)
        })
        .collect();
    (bytes, batches)
}

/// Closes `node`'s logs (without a clean shutdown) and opens them again, as after a crash.
fn reopen(node: Node) -> Node {
    let Node {
        _dir: dir,
        _logs: logs,
        partition,
    } = node;
    drop(partition);
    drop(logs);
    let logs = LogManager::open(dir.path(), LogConfig::default(), Arc::new(SystemClock))
        .expect("reopen logs");
    let partition = logs.partition("orders", 0).expect("the partition again");
    Node {
        _dir: dir,
        _logs: logs,
        partition,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_waits_for_the_isr_and_a_follower_left_below_the_log_start_starts_over() {
    let (n1, n2, n3) = (node(), node(), node());
    // Node 3 is a replica outside the ISR: it falls behind and misses the deletion.
    let s = state(1, 0, &[1, 2]);
    let leader = LeaderReplica::new(n1.partition.clone(), 1, &s, LeaderConfig::default(), 0, 0)
        .expect("leader");
    let f2 = FollowerReplica::new(n2.partition.clone(), 2, &s, 0, 0);
    let f3 = FollowerReplica::new(n3.partition.clone(), 3, &s, 0, 0);
    leader.append(batch("a", 10), false).await.expect("append");
    pump_until(
        &leader,
        &[&f2, &f3],
        || n3.partition.log_end_offset().is_ok_and(|e| e == 10) && leader.high_watermark() == 10,
        "both followers at 10",
    )
    .await;
    for tag in ["b", "c"] {
        leader.append(batch(tag, 10), false).await.expect("append");
    }
    pump_until(
        &leader,
        &[&f2],
        || leader.high_watermark() == 30,
        "node 2 at 30",
    )
    .await;

    // DeleteRecords before 25, inside the batch at 20: done on the leader, not yet complete.
    assert_eq!(
        n1.partition
            .delete_records_before(25)
            .await
            .expect("delete"),
        25
    );
    assert!(leader.low_watermark().expect("low") < 25);
    let leader = Arc::new(leader);
    let waiting = {
        let leader = leader.clone();
        tokio::spawn(async move { leader.wait_low_watermark(25).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "complete before node 2 followed");
    // Node 2 takes the leader's log start from a fetch answer, and reports its own in the next.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut now_ms = 1_000;
    while !waiting.is_finished() {
        assert!(tokio::time::Instant::now() < deadline, "never complete");
        now_ms += 10;
        pump(&leader, &[&f2], now_ms).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(waiting.await.expect("task").expect("low watermark"), 25);
    assert_eq!(n2.partition.log_start_offset().expect("start"), 25);
    assert_eq!(n3.partition.log_end_offset().expect("end"), 10);

    // Node 3 ends at 10, below the leader's start: it starts over there and catches up, its log
    // beginning at the batch that holds offset 25, its log start at 25.
    leader.append(batch("d", 10), false).await.expect("append");
    let mut outcomes = Vec::new();
    while n3.partition.log_end_offset().expect("end") != 40
        || n3.partition.log_start_offset().expect("start") != 25
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 3 never caught up: {outcomes:?}"
        );
        now_ms += 10;
        outcomes.extend(pump(&leader, &[&f2, &f3], now_ms).await);
        tokio::task::yield_now().await;
    }
    assert!(
        outcomes.contains(&FollowerOutcome::Reset(25)),
        "{outcomes:?}"
    );
    let expected = contents_from(&n1.partition, 25);
    assert_eq!(
        expected.1.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![20, 30]
    );
    assert_eq!(contents_from(&n3.partition, 25), expected);
    assert_eq!(contents_from(&n2.partition, 25), expected);

    // The reset log survives a reopen as it is.
    let n3 = reopen(n3);
    assert_eq!(n3.partition.log_start_offset().expect("start"), 25);
    assert_eq!(n3.partition.log_end_offset().expect("end"), 40);
    assert_eq!(contents_from(&n3.partition, 25), expected);
}
