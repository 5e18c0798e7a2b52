//! Controller decisions: elections only from the ISR, epoch bumps, fencing, AlterPartition checks,
//! controlled shutdown.

use super::*;

fn cluster(n: i32) -> ClusterState {
    let mut c = ClusterState::new();
    for id in 1..=n {
        c.apply(&MetadataCommand::RegisterBroker {
            id,
            incarnation: 1,
            client_addr: format!("127.0.0.1:{}", 9000 + id),
            peer_addr: format!("127.0.0.1:{}", 9100 + id),
        })
        .unwrap();
    }
    c.apply(&MetadataCommand::CreateTopic {
        name: "t".into(),
        partitions: 3,
        replication_factor: 3,
        configs: BTreeMap::new(),
    })
    .unwrap();
    c
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

#[test]
fn create_assigns_round_robin_with_min_insync_two() {
    let c = cluster(3);
    let p1 = c.partition(&tp(1)).unwrap();
    assert_eq!(p1.replicas, vec![2, 3, 1]);
    assert_eq!((p1.leader, p1.leader_epoch, p1.min_insync), (2, 0, 2));
    assert_eq!(p1.isr, vec![2, 3, 1]);
    let mut c = c;
    let err = c.apply(&MetadataCommand::CreateTopic {
        name: "u".into(),
        partitions: 1,
        replication_factor: 4,
        configs: BTreeMap::new(),
    });
    assert_eq!(
        err,
        Err(MetadataError::InvalidReplicationFactor {
            requested: 4,
            available: 3
        })
    );
    let err = c.apply(&MetadataCommand::CreateTopic {
        name: "t".into(),
        partitions: 1,
        replication_factor: 1,
        configs: BTreeMap::new(),
    });
    assert_eq!(err, Err(MetadataError::TopicExists("t".into())));
}

#[test]
fn fencing_the_leader_elects_from_the_isr_and_bumps_the_epoch() {
    let mut c = cluster(3);
    // Shrink partition 0's ISR to {1, 2}: 3 must never be elected.
    c.apply(&MetadataCommand::AlterPartition(AlterPartition {
        tp: tp(0),
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        new_isr: vec![1, 2],
    }))
    .unwrap();
    c.apply(&MetadataCommand::FenceBroker {
        id: 1,
        incarnation: 1,
    })
    .unwrap();
    let p0 = c.partition(&tp(0)).unwrap();
    assert_eq!((p0.leader, p0.leader_epoch), (2, 1));
    assert_eq!(p0.isr, vec![2]);
    // Fence 2 too: 2 is the last ISR member, so it stays in the ISR and nobody leads.
    c.apply(&MetadataCommand::FenceBroker {
        id: 2,
        incarnation: 1,
    })
    .unwrap();
    let p0 = c.partition(&tp(0)).unwrap();
    assert_eq!((p0.leader, p0.leader_epoch), (NO_NODE, 2));
    assert_eq!(p0.isr, vec![2]);
    // 1 comes back: not in the ISR, so still no leader; 2 comes back: it leads again, new epoch.
    c.apply(&MetadataCommand::UnfenceBroker {
        id: 1,
        incarnation: 1,
    })
    .unwrap();
    assert_eq!(c.partition(&tp(0)).unwrap().leader, NO_NODE);
    c.apply(&MetadataCommand::UnfenceBroker {
        id: 2,
        incarnation: 1,
    })
    .unwrap();
    let p0 = c.partition(&tp(0)).unwrap();
    assert_eq!((p0.leader, p0.leader_epoch), (2, 3));
}

#[test]
fn re_registration_bumps_the_epoch_of_the_same_leader() {
    let mut c = ClusterState::new();
    c.apply(&MetadataCommand::RegisterBroker {
        id: 1,
        incarnation: 1,
        client_addr: "a".into(),
        peer_addr: "b".into(),
    })
    .unwrap();
    c.apply(&MetadataCommand::CreateTopic {
        name: "t".into(),
        partitions: 1,
        replication_factor: 1,
        configs: BTreeMap::new(),
    })
    .unwrap();
    assert_eq!(c.partition(&tp(0)).unwrap().min_insync, 1);
    c.apply(&MetadataCommand::RegisterBroker {
        id: 1,
        incarnation: 2,
        client_addr: "a".into(),
        peer_addr: "b".into(),
    })
    .unwrap();
    let p = c.partition(&tp(0)).unwrap();
    assert_eq!((p.leader, p.leader_epoch), (1, 2));
    // A fence for the old incarnation is refused and changes nothing.
    assert_eq!(
        c.apply(&MetadataCommand::FenceBroker {
            id: 1,
            incarnation: 1
        }),
        Err(MetadataError::UnknownBroker(1))
    );
}

#[test]
fn alter_partition_checks_epochs_and_eligibility() {
    let mut c = cluster(3);
    let shrink = AlterPartition {
        tp: tp(0),
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        new_isr: vec![1, 2],
    };
    let out = c
        .apply(&MetadataCommand::AlterPartition(shrink.clone()))
        .unwrap();
    let CommandOutcome::Partition(state) = out else {
        panic!("expected partition state, got {out:?}")
    };
    assert_eq!((state.partition_epoch, state.isr.clone()), (1, vec![1, 2]));
    // The same request again is stale.
    assert_eq!(
        c.apply(&MetadataCommand::AlterPartition(shrink)),
        Err(MetadataError::InvalidUpdateVersion)
    );
    // A non-leader, or an old leader epoch, is fenced.
    let wrong = AlterPartition {
        tp: tp(0),
        leader: 2,
        leader_epoch: 0,
        partition_epoch: 1,
        new_isr: vec![2],
    };
    assert_eq!(
        c.apply(&MetadataCommand::AlterPartition(wrong)),
        Err(MetadataError::FencedLeaderEpoch)
    );
    // Adding a fenced broker is refused.
    c.apply(&MetadataCommand::FenceBroker {
        id: 3,
        incarnation: 1,
    })
    .unwrap();
    let grow = AlterPartition {
        tp: tp(0),
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 1,
        new_isr: vec![1, 2, 3],
    };
    assert_eq!(
        c.apply(&MetadataCommand::AlterPartition(grow)),
        Err(MetadataError::IneligibleReplica(3))
    );
}

#[test]
fn controlled_shutdown_moves_every_leadership_first() {
    let mut c = cluster(3);
    let out = c
        .apply(&MetadataCommand::ControlledShutdown {
            id: 1,
            incarnation: 1,
        })
        .unwrap();
    assert_eq!(out, CommandOutcome::RemainingLeaderships(0));
    for (_, p) in c.partitions() {
        assert_ne!(p.leader, 1);
        assert!(!p.isr.contains(&1));
        assert!(p.isr.contains(&p.leader));
    }
    // New leaders never come from a shutting-down broker.
    c.apply(&MetadataCommand::FenceBroker {
        id: 2,
        incarnation: 1,
    })
    .unwrap();
    for (_, p) in c.partitions() {
        assert_eq!(p.leader, 3);
    }
}

#[test]
fn liveness_fences_silent_brokers_and_unfences_returning_ones() {
    let mut c = cluster(3);
    let mut l = Liveness::new(1_000);
    for id in 1..=3 {
        l.on_heartbeat(id, 1, 0);
    }
    assert!(l.tick(500, &c).is_empty());
    l.on_heartbeat(1, 1, 900);
    l.on_heartbeat(2, 1, 900);
    let cmds = l.tick(1_500, &c);
    assert_eq!(
        cmds,
        vec![MetadataCommand::FenceBroker {
            id: 3,
            incarnation: 1
        }]
    );
    for cmd in &cmds {
        c.apply(cmd).unwrap();
    }
    l.on_heartbeat(3, 1, 1_600);
    let cmds = l.tick(1_700, &c);
    assert_eq!(
        cmds,
        vec![MetadataCommand::UnfenceBroker {
            id: 3,
            incarnation: 1
        }]
    );
}

#[test]
fn a_new_controller_gives_unheard_brokers_only_the_grace() {
    let c = cluster(3);
    let mut l = Liveness::after_failover(1_500, 900);
    l.on_heartbeat(1, 1, 10_000);
    l.on_heartbeat(2, 1, 10_000);
    assert!(
        l.tick(10_000, &c).is_empty(),
        "3 first seen now: within its grace"
    );
    l.on_heartbeat(1, 1, 10_800);
    l.on_heartbeat(2, 1, 10_800);
    assert!(l.tick(10_850, &c).is_empty());
    assert_eq!(
        l.tick(10_950, &c),
        vec![MetadataCommand::FenceBroker {
            id: 3,
            incarnation: 1
        }]
    );
}

#[test]
fn altering_topic_configs_replaces_them_and_moves_min_insync_with_a_new_partition_epoch() {
    let mut c = cluster(3);
    let before = c.partition(&tp(0)).unwrap().clone();
    let configs = BTreeMap::from([
        ("retention.ms".to_string(), "1000".to_string()),
        ("min.insync.replicas".to_string(), "3".to_string()),
    ]);
    let alter = |configs: &BTreeMap<String, String>| MetadataCommand::AlterTopicConfigs {
        name: "t".into(),
        configs: configs.clone(),
    };
    c.apply(&alter(&configs)).unwrap();
    assert_eq!(c.topics["t"].configs, configs);
    let after = c.partition(&tp(0)).unwrap();
    assert_eq!(after.min_insync, 3);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    assert_eq!(
        (after.leader, after.leader_epoch, &after.isr),
        (before.leader, before.leader_epoch, &before.isr)
    );

    // Dropping the key returns min.insync.replicas to the replicated default.
    c.apply(&alter(&BTreeMap::new())).unwrap();
    assert!(c.topics["t"].configs.is_empty());
    assert_eq!(c.partition(&tp(0)).unwrap().min_insync, 2);

    // Refused, changing nothing.
    let bad = BTreeMap::from([("min.insync.replicas".to_string(), "zero".to_string())]);
    let snapshot = c.clone();
    assert!(matches!(
        c.apply(&alter(&bad)),
        Err(MetadataError::InvalidConfig { .. })
    ));
    assert_eq!(c, snapshot);
    assert_eq!(
        c.apply(&MetadataCommand::AlterTopicConfigs {
            name: "nope".into(),
            configs: BTreeMap::new(),
        }),
        Err(MetadataError::UnknownTopic("nope".into()))
    );
}
