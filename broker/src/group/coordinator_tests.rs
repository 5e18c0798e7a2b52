//! The async coordinator over the in-memory offsets log, on a paused tokio clock: parked joins
//! resolve when the round completes, timers fire without sleeps, commits are durable before they
//! are acknowledged and survive a reload.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::config::GroupConfig;
use super::coordinator::{CoordinatorNode, GroupCoordinator};
use super::offsets_log::{MemOffsetsLog, OffsetsLog};
use super::types::*;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 200,
        min_session_timeout_ms: 100,
        ..GroupConfig::default()
    }
}

fn join_req(member_id: &str) -> JoinRequest {
    JoinRequest {
        api_version: 5,
        group_id: "g".into(),
        session_timeout_ms: 1_000,
        rebalance_timeout_ms: 3_000,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"sub"),
        }],
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// Joins with the v4+ two-step handshake and returns the completed join.
async fn join(c: &GroupCoordinator) -> JoinResponse {
    let first = c.join(join_req("")).await;
    assert_eq!(first.error, Code::MemberIdRequired);
    c.join(join_req(&first.member_id)).await
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: p,
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

fn who(member: &str, generation_id: i32) -> CommitIdentity {
    CommitIdentity {
        group_id: "g".into(),
        generation_id,
        member_id: member.into(),
        group_instance_id: None,
    }
}

#[tokio::test(start_paused = true)]
async fn two_members_join_sync_commit_and_offsets_survive_a_reload() {
    let log = Arc::new(MemOffsetsLog::new(3));
    let c = GroupCoordinator::load(config(), log.clone()).await.unwrap();
    let (a, b) = tokio::join!(join(&c), join(&c));
    assert_eq!((a.error, b.error), (Code::None, Code::None));
    assert_eq!(a.generation_id, b.generation_id);
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2);
    let assignments = vec![
        SyncAssignment {
            member_id: leader.member_id.clone(),
            assignment: Bytes::from_static(b"L"),
        },
        SyncAssignment {
            member_id: follower.member_id.clone(),
            assignment: Bytes::from_static(b"F"),
        },
    ];
    let sync = |member: &JoinResponse, assignments: Vec<SyncAssignment>| SyncRequest {
        group_id: "g".into(),
        generation_id: member.generation_id,
        member_id: member.member_id.clone(),
        group_instance_id: None,
        assignments,
    };
    let (fs, ls) = tokio::join!(
        c.sync(sync(&follower, vec![])),
        c.sync(sync(&leader, assignments))
    );
    assert_eq!(
        (fs.assignment.as_ref(), ls.assignment.as_ref()),
        (&b"F"[..], &b"L"[..])
    );

    let answers = c
        .commit(
            who(&follower.member_id, follower.generation_id),
            vec![(tp(0), offset(10)), (tp(1), offset(20))],
        )
        .await;
    assert!(
        answers.iter().all(|(_, code)| *code == Code::None),
        "{answers:?}"
    );
    let stale = c
        .commit(
            who(&follower.member_id, follower.generation_id - 1),
            vec![(tp(0), offset(99))],
        )
        .await;
    assert_eq!(stale, vec![(tp(0), Code::IllegalGeneration)]);
    assert_eq!(log.records().len(), 2, "the stale commit wrote nothing");

    let reloaded = GroupCoordinator::load(config(), log.clone()).await.unwrap();
    let got = reloaded.committed("g", Some(&[tp(0), tp(1), tp(2)]));
    assert_eq!(
        got,
        vec![
            (tp(0), Some(offset(10))),
            (tp(1), Some(offset(20))),
            (tp(2), None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_is_not_durable_is_not_acknowledged_nor_applied() {
    let log = Arc::new(MemOffsetsLog::new(1));
    let c = GroupCoordinator::load(config(), log.clone()).await.unwrap();
    log.set_fail_appends(true);
    let answers = c.commit(who("", -1), vec![(tp(0), offset(5))]).await;
    assert_eq!(answers, vec![(tp(0), Code::KafkaStorageError)]);
    assert_eq!(c.committed("g", Some(&[tp(0)])), vec![(tp(0), None)]);
    log.set_fail_appends(false);
    let answers = c.commit(who("", -1), vec![(tp(0), offset(6))]).await;
    assert_eq!(answers, vec![(tp(0), Code::None)]);
    assert_eq!(c.committed("g", None), vec![(tp(0), Some(offset(6)))]);
}

#[tokio::test(start_paused = true)]
async fn session_expiry_fires_from_the_timer_and_the_survivor_rebalances() {
    let c = GroupCoordinator::load(config(), Arc::new(MemOffsetsLog::new(1)))
        .await
        .unwrap();
    let (a, b) = tokio::join!(join(&c), join(&c));
    let hb = |m: &JoinResponse| HeartbeatRequest {
        group_id: "g".into(),
        generation_id: m.generation_id,
        member_id: m.member_id.clone(),
        group_instance_id: None,
    };
    // Only `a` heartbeats; after the session timeout `b` is gone and `a` is told to rejoin.
    let mut code = Code::None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        code = c.heartbeat(&hb(&a));
        if code != Code::None {
            break;
        }
    }
    assert_eq!(code, Code::RebalanceInProgress);
    let again = c.join(join_req(&a.member_id)).await;
    assert_eq!(
        (again.error, again.generation_id, again.members.len()),
        (Code::None, a.generation_id + 1, 1)
    );
    assert_eq!(c.heartbeat(&hb(&b)), Code::UnknownMemberId);
}

#[tokio::test(start_paused = true)]
async fn delete_writes_tombstones_and_list_describe_report_state() {
    let log = Arc::new(MemOffsetsLog::new(2));
    let c = GroupCoordinator::load(config(), log.clone()).await.unwrap();
    c.set_node(CoordinatorNode {
        node_id: 0,
        host: "localhost".into(),
        port: 9092,
    });
    assert_eq!(c.find_coordinator("g").error, Code::None);
    c.commit(who("", -1), vec![(tp(0), offset(1))]).await;
    assert_eq!(c.list().len(), 1);
    assert_eq!(c.describe("g").state, GroupState::Empty);
    assert_eq!(c.delete("g").await, Code::None);
    assert_eq!(c.delete("g").await, Code::GroupIdNotFound);
    let records = log.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].value, None, "tombstone");
    let reloaded = GroupCoordinator::load(config(), log).await.unwrap();
    assert!(reloaded.list().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_offsets_record_is_skipped_and_the_rest_loads() {
    let log = Arc::new(MemOffsetsLog::new(1));
    let c = GroupCoordinator::load(config(), log.clone()).await.unwrap();
    c.commit(who("", -1), vec![(tp(0), offset(3))]).await;
    let garbage = super::offsets_log::OffsetsRecord {
        key: Bytes::from_static(&[0, 1, 0]),
        value: None,
    };
    log.append(0, vec![garbage]).await.unwrap();
    c.commit(who("", -1), vec![(tp(1), offset(4))]).await;
    let reloaded = GroupCoordinator::load(config(), log).await.unwrap();
    assert_eq!(
        reloaded.committed("g", None),
        vec![(tp(0), Some(offset(3))), (tp(1), Some(offset(4)))]
    );
}

mod wire {
    use super::*;
    use crate::group::wire_api::ClientInfo;
    use sluice_protocol::wire::messages::{join_group, offset_commit, offset_fetch};
    use sluice_protocol::wire::{Request, Response};

    fn client(api_version: i16) -> ClientInfo {
        ClientInfo {
            api_version,
            client_id: "rdkafka".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn join_commit_and_fetch_through_wire_types() {
        let c = GroupCoordinator::load(config(), Arc::new(MemOffsetsLog::new(1)))
            .await
            .unwrap();
        let join = |member_id: &str| {
            Request::JoinGroup(join_group::JoinGroupRequest {
                group_id: "g".into(),
                session_timeout_ms: 1000,
                rebalance_timeout_ms: 2000,
                member_id: member_id.into(),
                protocol_type: "consumer".into(),
                protocols: vec![join_group::JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: Bytes::from_static(b"m"),
                }],
                ..Default::default()
            })
        };
        let Some(Response::JoinGroup(first)) = c.handle(&client(4), join("")).await else {
            panic!("not a join answer")
        };
        assert_eq!(first.error_code, Code::MemberIdRequired.as_i16());
        assert!(first.member_id.starts_with("rdkafka-"));
        let Some(Response::JoinGroup(joined)) = c.handle(&client(4), join(&first.member_id)).await
        else {
            panic!("not a join answer")
        };
        assert_eq!(
            (
                joined.error_code,
                joined.generation_id,
                joined.members.len()
            ),
            (0, 1, 1)
        );

        let commit = Request::OffsetCommit(offset_commit::OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            topics: vec![offset_commit::OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![offset_commit::OffsetCommitRequestPartition {
                    partition_index: 2,
                    committed_offset: 17,
                    committed_metadata: Some("meta".into()),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        });
        // CompletingRebalance: the commit must wait for the assignment.
        let Some(Response::OffsetCommit(r)) = c.handle(&client(7), commit.clone()).await else {
            panic!("not a commit answer")
        };
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            Code::RebalanceInProgress.as_i16()
        );
        c.sync(SyncRequest {
            group_id: "g".into(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: None,
            assignments: vec![],
        })
        .await;
        let Some(Response::OffsetCommit(r)) = c.handle(&client(7), commit).await else {
            panic!("not a commit answer")
        };
        assert_eq!(
            (
                r.topics[0].name.as_str(),
                r.topics[0].partitions[0].error_code
            ),
            ("t", 0)
        );

        let fetch_all = Request::OffsetFetch(offset_fetch::OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
        });
        let Some(Response::OffsetFetch(f)) = c.handle(&client(5), fetch_all).await else {
            panic!("not a fetch answer")
        };
        assert_eq!(f.topics.len(), 1);
        let p = &f.topics[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.committed_offset, p.metadata.as_deref()),
            (2, 17, Some("meta"))
        );
        let fetch_missing = Request::OffsetFetch(offset_fetch::OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![offset_fetch::OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0],
            }]),
        });
        let Some(Response::OffsetFetch(f)) = c.handle(&client(5), fetch_missing).await else {
            panic!("not a fetch answer")
        };
        assert_eq!(f.topics[0].partitions[0].committed_offset, -1);
        let not_group = Request::ListGroups(Default::default());
        assert!(matches!(
            c.handle(&client(0), not_group).await,
            Some(Response::ListGroups(_))
        ));
    }
}

mod ordering {
    use super::*;
    use crate::group::offsets_log::{BoxFuture, OffsetsLogError, OffsetsRecord};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::sync::Notify;

    /// An offsets log whose fsyncs complete only when the test releases them, in any order.
    #[derive(Default)]
    struct GatedLog {
        inner: MemOffsetsLog,
        gates: Mutex<HashMap<i64, Arc<Notify>>>,
    }

    impl GatedLog {
        fn gate(&self, target: i64) -> Arc<Notify> {
            self.gates
                .lock()
                .unwrap()
                .entry(target)
                .or_default()
                .clone()
        }
    }

    impl OffsetsLog for GatedLog {
        fn n_partitions(&self) -> i32 {
            1
        }
        fn append(
            &self,
            partition: i32,
            records: Vec<OffsetsRecord>,
        ) -> BoxFuture<'_, Result<i64, OffsetsLogError>> {
            self.inner.append(partition, records)
        }
        fn wait_durable(
            &self,
            _partition: i32,
            target: i64,
        ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
            let gate = self.gate(target);
            Box::pin(async move {
                gate.notified().await;
                Ok(())
            })
        }
        fn read_all(
            &self,
            partition: i32,
        ) -> BoxFuture<'_, Result<Vec<OffsetsRecord>, OffsetsLogError>> {
            self.inner.read_all(partition)
        }
    }

    /// Two commits of one partition whose fsyncs finish in reverse order: neither is answered
    /// before it is visible, and memory ends with the later one, as the log does.
    #[tokio::test(start_paused = true)]
    async fn commits_apply_in_log_order_whatever_order_their_fsyncs_finish() {
        let log = Arc::new(GatedLog {
            inner: MemOffsetsLog::new(1),
            ..Default::default()
        });
        let c = GroupCoordinator::load(config(), log.clone()).await.unwrap();
        let first = tokio::spawn({
            let c = c.clone();
            async move { c.commit(who("", -1), vec![(tp(0), offset(1))]).await }
        });
        while log.inner.records().is_empty() {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let c = c.clone();
            async move { c.commit(who("", -1), vec![(tp(0), offset(2))]).await }
        });
        while log.inner.records().len() < 2 {
            tokio::task::yield_now().await;
        }
        log.gate(2).notify_one();
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(
            !second.is_finished(),
            "answered before the earlier write was applied"
        );
        assert_eq!(c.committed("g", Some(&[tp(0)])), vec![(tp(0), None)]);
        log.gate(1).notify_one();
        assert_eq!(first.await.unwrap(), vec![(tp(0), Code::None)]);
        assert_eq!(second.await.unwrap(), vec![(tp(0), Code::None)]);
        assert_eq!(
            c.committed("g", Some(&[tp(0)])),
            vec![(tp(0), Some(offset(2)))]
        );
    }
}
