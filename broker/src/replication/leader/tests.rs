//! Leader bookkeeping: HW over durable offsets of the ISR, acks=all, ISR shrink/expand, fencing of
//! stale fetches, divergence answers.

use super::*;
use crate::replication::epoch::EpochEndOffset;

fn state(isr: &[NodeId]) -> PartitionState {
    PartitionState {
        replicas: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        isr: isr.to_vec(),
        min_insync: 2,
    }
}

fn leader(isr: &[NodeId], leo: i64) -> LeaderState {
    let config = LeaderConfig {
        replica_lag_time_max_ms: 1_000,
        alter_partition_retry_ms: 100,
    };
    LeaderState::new(
        TopicPartition::new("t", 0),
        1,
        &state(isr),
        config,
        0,
        LogPosition {
            log_end_offset: leo,
            durable_offset: leo,
            high_watermark: 0,
        },
    )
}

fn cache() -> EpochCache {
    let mut c = EpochCache::new();
    c.assign(3, 0).unwrap();
    c.assign(5, 10).unwrap();
    c
}

fn fetch(replica: NodeId, offset: i64, epoch: i32, durable: i64) -> FetchRequest {
    FetchRequest {
        replica,
        leader_epoch: 5,
        fetch_offset: offset,
        last_fetched_epoch: epoch,
        durable_offset: durable,
        log_start_offset: 0,
        fetch_id: 0,
    }
}

#[test]
fn high_watermark_is_the_minimum_durable_offset_over_the_isr() {
    let mut l = leader(&[1, 2, 3], 20);
    assert_eq!(l.high_watermark(), 0, "unknown followers hold the HW");
    l.on_fetch(1, &fetch(2, 20, 5, 18), &cache()).unwrap();
    assert_eq!(l.high_watermark(), 0);
    let a = l.on_fetch(1, &fetch(3, 15, 5, 12), &cache()).unwrap();
    assert_eq!((a.high_watermark, a.diverging, a.read_from), (12, None, 15));
    // A stale fetch reporting less never moves the HW back.
    l.on_fetch(2, &fetch(3, 10, 3, 10), &cache()).unwrap();
    assert_eq!(l.high_watermark(), 12);
}

#[test]
fn acks_all_completes_at_the_hw_and_needs_min_insync() {
    let mut l = leader(&[1, 2], 10);
    assert_eq!(l.check_append(true), Ok(()));
    l.on_append(15);
    let id = l.register_ack(15);
    l.on_synced(15);
    assert!(
        l.take_completed().is_empty(),
        "the follower has not fetched it"
    );
    l.on_fetch(1, &fetch(2, 15, 5, 15), &cache()).unwrap();
    assert_eq!(l.take_completed(), vec![(id, Ok(()))]);

    let l1 = leader(&[1], 10);
    assert_eq!(l1.check_append(true), Err(ReplicaError::NotEnoughReplicas));
    assert_eq!(l1.check_append(false), Ok(()));
}

#[test]
fn leader_not_synced_holds_the_hw() {
    let mut l = leader(&[1, 2], 10);
    l.on_append(12);
    l.on_fetch(1, &fetch(2, 12, 5, 12), &cache()).unwrap();
    assert_eq!(l.high_watermark(), 10);
    l.on_synced(12);
    assert_eq!(l.high_watermark(), 12);
}

#[test]
fn stale_and_future_epochs_are_refused() {
    let mut l = leader(&[1, 2, 3], 10);
    let mut f = fetch(2, 10, 5, 10);
    f.leader_epoch = 4;
    assert_eq!(
        l.on_fetch(0, &f, &cache()),
        Err(ReplicaError::FencedLeaderEpoch)
    );
    f.leader_epoch = 6;
    assert_eq!(
        l.on_fetch(0, &f, &cache()),
        Err(ReplicaError::UnknownLeaderEpoch)
    );
    assert_eq!(
        l.on_fetch(0, &fetch(9, 10, 5, 10), &cache()),
        Err(ReplicaError::NotLeader)
    );
}

#[test]
fn divergent_follower_is_told_where_its_epoch_ends() {
    let mut l = leader(&[1, 2, 3], 20);
    // The follower has epoch 4 (never on this leader) up to 14: our epoch 3 ends at 10.
    let a = l.on_fetch(0, &fetch(2, 14, 4, 14), &cache()).unwrap();
    assert_eq!(
        a.diverging,
        Some(EpochEndOffset {
            epoch: 3,
            end_offset: 10
        })
    );
    // Same epoch but beyond where that epoch ends here.
    let a = l.on_fetch(0, &fetch(2, 12, 3, 12), &cache()).unwrap();
    assert_eq!(
        a.diverging,
        Some(EpochEndOffset {
            epoch: 3,
            end_offset: 10
        })
    );
    // A diverging follower does not count toward the HW.
    assert!(l.follower(2).unwrap().log_end_offset.is_none());
}

#[test]
fn lagging_follower_is_proposed_out_and_a_caught_up_one_back_in() {
    let mut l = leader(&[1, 2, 3], 20);
    l.on_synced(20);
    l.on_fetch(900, &fetch(2, 20, 5, 20), &cache()).unwrap();
    assert_eq!(l.tick(500), None);
    let shrink = l.tick(1_500).expect("3 never fetched");
    assert_eq!(shrink.new_isr, vec![1, 2]);
    assert_eq!((shrink.leader_epoch, shrink.partition_epoch), (5, 7));
    // Until committed, 3 still counts: the HW stays where 3 holds it.
    assert_eq!(l.high_watermark(), 0);
    assert_eq!(l.tick(1_550), None);
    assert_eq!(
        l.tick(1_600).map(|r| r.new_isr),
        Some(vec![1, 2]),
        "re-sent after the retry time"
    );
    let mut committed = state(&[1, 2]);
    committed.partition_epoch = 8;
    assert!(l.update_state(&committed));
    assert_eq!(l.high_watermark(), 20);
    // 3 catches up: proposed back in, and counted from the proposal on.
    l.on_fetch(1_700, &fetch(3, 20, 5, 20), &cache()).unwrap();
    let grow = l.tick(1_700).expect("3 caught up");
    assert_eq!(grow.new_isr, vec![1, 2, 3]);
    assert_eq!(l.maximal_isr().len(), 3);
}

/// A broker that handed its leadership over in a clean shutdown may fetch once more on its way
/// out: it must not be proposed back into the ISR (the controller would refuse, and the pending
/// proposal would keep it counted toward the HW, holding every acks=all write while it is gone).
#[test]
fn a_caught_up_broker_that_is_shutting_down_is_not_proposed() {
    let mut l = leader(&[1, 2], 20);
    l.on_synced(20);
    l.set_ineligible([3].into_iter().collect());
    l.on_fetch(100, &fetch(2, 20, 5, 20), &cache()).unwrap();
    l.on_fetch(100, &fetch(3, 20, 5, 20), &cache()).unwrap();
    assert_eq!(l.tick(200), None, "3 is caught up but shutting down");
    assert_eq!(l.high_watermark(), 20, "only the ISR holds the HW");
    l.set_ineligible(BTreeSet::new());
    let grow = l.tick(300).expect("3 is eligible again");
    assert_eq!(grow.new_isr, vec![1, 2, 3]);
}

#[test]
fn resigning_fails_waiting_acks() {
    let mut l = leader(&[1, 2], 10);
    let id = l.register_ack(11);
    assert_eq!(l.resign(), vec![(id, Err(ReplicaError::NotLeader))]);
}

/// Found by the rolling-restart test: a broker in controlled shutdown left the ISR, but the new
/// leader still saw it as caught up and proposed adding it back. The controller refused (it is
/// shutting down), yet the pending proposal kept counting it for the high watermark, so the HW,
/// and every acks=all produce, waited for a broker that was gone.
#[test]
fn an_ineligible_broker_is_neither_proposed_nor_counted() {
    let mut l = leader(&[1, 2], 20);
    l.on_fetch(1, &fetch(2, 20, 5, 20), &cache()).unwrap();
    l.on_fetch(1, &fetch(3, 15, 5, 15), &cache()).unwrap();
    assert_eq!(l.high_watermark(), 20);
    // 3 caught up: the leader proposes it, and from now on counts it.
    l.on_fetch(2, &fetch(3, 20, 5, 20), &cache()).unwrap();
    let alter = l.tick(3).expect("expansion");
    assert_eq!(alter.new_isr, vec![1, 2, 3]);
    l.on_append(30);
    l.on_synced(30);
    l.on_fetch(4, &fetch(2, 30, 5, 30), &cache()).unwrap();
    assert_eq!(
        l.high_watermark(),
        20,
        "3 is counted while its expansion is pending"
    );
    // 3 goes into controlled shutdown: no longer counted, never proposed again.
    l.set_ineligible([3].into_iter().collect());
    assert_eq!(l.high_watermark(), 30);
    assert!(
        l.tick(1_000).is_none(),
        "no proposal for an ineligible broker"
    );
    assert_eq!(l.maximal_isr().into_iter().collect::<Vec<_>>(), vec![1, 2]);
}
