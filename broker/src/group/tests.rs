//! Table-driven tests of the coordinator core: joins, leaves, expiries, stale generations and
//! concurrent rebalances, all through one harness that owns the clock and the reply inbox.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::config::GroupConfig;
use super::registry::Groups;
use super::types::*;

const SESSION_MS: i32 = 1_000;
const REBALANCE_MS: i32 = 5_000;
const DELAY_MS: u64 = 300;

/// The harness: a coordinator, a clock, and every delivery received so far by token.
struct H {
    groups: Groups,
    now_ms: u64,
    next_token: u64,
    inbox: BTreeMap<ReplyToken, Vec<Reply>>,
    issued: Vec<ReplyToken>,
}

impl H {
    fn new(initial_delay_ms: u64) -> H {
        let config = GroupConfig {
            initial_rebalance_delay_ms: initial_delay_ms,
            min_session_timeout_ms: 100,
            ..GroupConfig::default()
        };
        H {
            groups: Groups::new(config, 42),
            now_ms: 0,
            next_token: 0,
            inbox: BTreeMap::new(),
            issued: Vec::new(),
        }
    }

    fn token(&mut self) -> ReplyToken {
        self.next_token += 1;
        let t = ReplyToken(self.next_token);
        self.issued.push(t);
        t
    }

    fn receive(&mut self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            self.inbox.entry(d.token).or_default().push(d.reply);
        }
    }

    fn join_req(&self, member_id: &str, protocols: &[&str], version: i16) -> JoinRequest {
        JoinRequest {
            api_version: version,
            group_id: "g".into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| JoinProtocol {
                    name: p.to_string(),
                    metadata: Bytes::from(format!("{p}-meta")),
                })
                .collect(),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn send_join(&mut self, req: JoinRequest) -> ReplyToken {
        let t = self.token();
        let out = self.groups.join(t, req, self.now_ms);
        self.receive(out);
        t
    }

    /// A v3 join (no MEMBER_ID_REQUIRED step).
    fn join(&mut self, member_id: &str) -> ReplyToken {
        let req = self.join_req(member_id, &["range"], 3);
        self.send_join(req)
    }

    fn sync(
        &mut self,
        member_id: &str,
        generation_id: i32,
        assignments: &[(&str, &str)],
    ) -> ReplyToken {
        let t = self.token();
        let req = SyncRequest {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| SyncAssignment {
                    member_id: m.to_string(),
                    assignment: Bytes::from(a.to_string()),
                })
                .collect(),
        };
        let out = self.groups.sync(t, req, self.now_ms);
        self.receive(out);
        t
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> Code {
        let req = HeartbeatRequest {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
        };
        self.groups.heartbeat(&req, self.now_ms)
    }

    fn leave(&mut self, member_id: &str) -> Code {
        let (code, out) = self.groups.leave(
            &LeaveRequest {
                group_id: "g".into(),
                member_id: member_id.into(),
            },
            self.now_ms,
        );
        self.receive(out);
        code
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now_ms + ms;
        // Step through every deadline on the way, as the async driver does.
        let mut steps = 0;
        while let Some(d) = self.groups.next_deadline_ms().filter(|d| *d <= target) {
            steps += 1;
            assert!(
                steps < 100_000,
                "a deadline at {d} is never cleared by tick"
            );
            self.now_ms = self.now_ms.max(d);
            let out = self.groups.tick(self.now_ms);
            self.receive(out);
        }
        self.now_ms = target;
        let out = self.groups.tick(self.now_ms);
        self.receive(out);
    }

    fn join_answer(&mut self, t: ReplyToken) -> Option<JoinResponse> {
        let replies = self.inbox.get(&t)?;
        assert_eq!(
            replies.len(),
            1,
            "token {t:?} answered {} times",
            replies.len()
        );
        match &replies[0] {
            Reply::Join(j) => Some(j.clone()),
            other => panic!("expected a join answer, got {other:?}"),
        }
    }

    fn sync_answer(&mut self, t: ReplyToken) -> Option<SyncResponse> {
        let replies = self.inbox.get(&t)?;
        assert_eq!(
            replies.len(),
            1,
            "token {t:?} answered {} times",
            replies.len()
        );
        match &replies[0] {
            Reply::Sync(s) => Some(s.clone()),
            other => panic!("expected a sync answer, got {other:?}"),
        }
    }

    fn state(&self) -> GroupState {
        self.groups
            .group("g")
            .map(|g| g.state())
            .unwrap_or(GroupState::Dead)
    }

    fn generation(&self) -> i32 {
        self.groups
            .group("g")
            .map(|g| g.generation_id())
            .unwrap_or(-1)
    }

    /// Joins `ids` (v3, fixed ids are not possible: returns the assigned ids in join order) and
    /// completes the round and the sync; returns (member ids, generation).
    fn stable_group(&mut self, n: usize) -> (Vec<String>, i32) {
        let tokens: Vec<ReplyToken> = (0..n).map(|_| self.join("")).collect();
        self.advance(2 * DELAY_MS);
        let answers: Vec<JoinResponse> = tokens
            .iter()
            .map(|t| self.join_answer(*t).expect("joined"))
            .collect();
        let ids: Vec<String> = answers.iter().map(|a| a.member_id.clone()).collect();
        let generation = answers[0].generation_id;
        let leader = answers[0].leader.clone();
        let assignments: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.clone(), format!("assign-{id}")))
            .collect();
        for id in ids.iter().filter(|id| **id != leader) {
            self.sync(id, generation, &[]);
        }
        let refs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.sync(&leader, generation, &refs);
        assert_eq!(self.state(), GroupState::Stable);
        (ids, generation)
    }

    /// Invariant check: every join/sync token issued was answered exactly once.
    fn assert_all_answered_once(&self) {
        for t in &self.issued {
            let n = self.inbox.get(t).map(Vec::len).unwrap_or(0);
            assert_eq!(n, 1, "token {t:?} answered {n} times");
        }
    }
}

#[test]
fn first_join_v4_requires_member_id_then_completes_after_initial_delay() {
    let mut h = H::new(DELAY_MS);
    let req = h.join_req("", &["range"], 4);
    let t = h.send_join(req);
    let first = h.join_answer(t).expect("answered at once");
    assert_eq!(first.error, Code::MemberIdRequired);
    assert!(
        first.member_id.starts_with("client-"),
        "{}",
        first.member_id
    );
    assert_eq!(h.state(), GroupState::Empty);

    let req = h.join_req(&first.member_id, &["range"], 4);
    let t = h.send_join(req);
    assert_eq!(
        h.join_answer(t),
        None,
        "parked until the initial delay ends"
    );
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    h.advance(DELAY_MS - 1);
    assert_eq!(h.join_answer(t), None);
    h.advance(1);
    let joined = h.join_answer(t).expect("round complete");
    assert_eq!(joined.error, Code::None);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, first.member_id);
    assert_eq!(joined.protocol_name, "range");
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from("range-meta"));
    assert_eq!(h.state(), GroupState::CompletingRebalance);
}

#[test]
fn initial_delay_extends_while_members_arrive_up_to_the_rebalance_timeout() {
    // (arrival times of further members, expected completion time)
    let cases: &[(&[u64], u64)] = &[
        (&[], DELAY_MS),
        (&[100], 2 * DELAY_MS),
        (&[100, 400], 3 * DELAY_MS),
        // Members arriving at every step: bounded by the rebalance timeout.
        (
            &[
                10, 310, 610, 910, 1210, 1510, 1810, 2110, 2410, 2710, 3010, 3310, 3610, 3910,
                4210, 4510, 4810,
            ],
            REBALANCE_MS as u64,
        ),
    ];
    for (arrivals, done_at) in cases {
        let mut h = H::new(DELAY_MS);
        let first = h.join("");
        for at in *arrivals {
            h.advance(at - h.now_ms);
            h.join("");
        }
        while h.join_answer(first).is_none() {
            assert!(h.now_ms < 100_000, "never completed");
            h.advance(1);
        }
        assert_eq!(h.now_ms, *done_at, "arrivals {arrivals:?}");
        assert_eq!(
            h.groups.group("g").map(|g| g.members().len()),
            Some(arrivals.len() + 1)
        );
    }
}

#[test]
fn leader_gets_every_member_followers_get_their_assignment_after_the_leader_syncs() {
    let mut h = H::new(DELAY_MS);
    let t1 = h.join("");
    let t2 = h.join("");
    // The second arrival extends the initial delay once.
    h.advance(2 * DELAY_MS);
    let a1 = h.join_answer(t1).expect("answered");
    let a2 = h.join_answer(t2).expect("answered");
    assert_eq!(a1.leader, a1.member_id, "first member leads");
    assert_eq!(a1.members.len(), 2);
    assert!(a2.members.is_empty(), "followers see no member list");
    assert_eq!(a1.generation_id, a2.generation_id);

    let s2 = h.sync(&a2.member_id, a2.generation_id, &[]);
    assert_eq!(h.sync_answer(s2), None, "follower waits for the leader");
    let s1 = h.sync(
        &a1.member_id,
        a1.generation_id,
        &[(&a1.member_id, "p0,p1"), (&a2.member_id, "p2,p3")],
    );
    assert_eq!(
        h.sync_answer(s1).map(|s| s.assignment),
        Some(Bytes::from("p0,p1"))
    );
    assert_eq!(
        h.sync_answer(s2).map(|s| s.assignment),
        Some(Bytes::from("p2,p3"))
    );
    assert_eq!(h.state(), GroupState::Stable);
    // A late follower sync in Stable gets its assignment at once.
    let again = h.sync(&a2.member_id, a2.generation_id, &[]);
    assert_eq!(
        h.sync_answer(again).map(|s| s.assignment),
        Some(Bytes::from("p2,p3"))
    );
    h.assert_all_answered_once();
}

#[test]
fn heartbeat_and_sync_fence_stale_and_unknown_members() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    // (member, generation, expected heartbeat code) in a Stable group
    let table: &[(&str, i32, Code)] = &[
        (&ids[0], generation, Code::None),
        (&ids[1], generation, Code::None),
        (&ids[0], generation - 1, Code::IllegalGeneration),
        (&ids[0], generation + 1, Code::IllegalGeneration),
        ("nobody", generation, Code::UnknownMemberId),
    ];
    for (member, gen, expected) in table {
        assert_eq!(
            h.heartbeat(member, *gen),
            *expected,
            "member {member} gen {gen}"
        );
    }
    let s = h.sync(&ids[1], generation - 1, &[]);
    assert_eq!(
        h.sync_answer(s).map(|s| s.error),
        Some(Code::IllegalGeneration)
    );
    let s = h.sync("nobody", generation, &[]);
    assert_eq!(
        h.sync_answer(s).map(|s| s.error),
        Some(Code::UnknownMemberId)
    );
    // Unknown group.
    let req = HeartbeatRequest {
        group_id: "other".into(),
        generation_id: 1,
        member_id: "x".into(),
        group_instance_id: None,
    };
    assert_eq!(h.groups.heartbeat(&req, h.now_ms), Code::UnknownMemberId);
}

#[test]
fn new_member_triggers_a_rebalance_that_completes_when_everyone_rejoined() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    let t3 = h.join("");
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[0], generation), Code::RebalanceInProgress);
    let s = h.sync(&ids[0], generation, &[]);
    assert_eq!(
        h.sync_answer(s).map(|s| s.error),
        Some(Code::RebalanceInProgress)
    );
    let t1 = h.join(&ids[0]);
    assert_eq!(
        h.join_answer(t3),
        None,
        "still waiting for the second member"
    );
    let t2 = h.join(&ids[1]);
    // Not the first round: no initial delay, completes as soon as all rejoined.
    let a1 = h.join_answer(t1).expect("complete");
    let a2 = h.join_answer(t2).expect("complete");
    let a3 = h.join_answer(t3).expect("complete");
    assert_eq!(a1.generation_id, generation + 1);
    assert_eq!(a1.leader, ids[0], "the leader stays the leader");
    assert_eq!(a1.members.len(), 3);
    assert!(a2.members.is_empty() && a3.members.is_empty());
    assert_eq!(h.state(), GroupState::CompletingRebalance);
}

#[test]
fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    // The leader rejoins (e.g. subscription change): a new round starts; the follower stays silent
    // apart from heartbeats, which keep its session alive but do not rejoin it.
    let t1 = h.join(&ids[0]);
    for _ in 0..(REBALANCE_MS as u64 / 500) {
        h.advance(500);
        if h.join_answer(t1).is_some() {
            break;
        }
        assert_eq!(h.heartbeat(&ids[1], generation), Code::RebalanceInProgress);
    }
    let a1 = h
        .join_answer(t1)
        .expect("round ended at the rebalance timeout");
    assert_eq!(a1.generation_id, generation + 1);
    assert_eq!(a1.members.len(), 1);
    assert_eq!(h.heartbeat(&ids[1], generation), Code::UnknownMemberId);
}

#[test]
fn expired_session_removes_the_member_and_the_survivor_takes_over() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    // Only member 1 heartbeats.
    h.advance(600);
    assert_eq!(h.heartbeat(&ids[1], generation), Code::None);
    h.advance(600);
    // Member 0's session has passed: removed, the group rebalances; member 1 learns it from its
    // heartbeat and rejoins alone.
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[1], generation), Code::RebalanceInProgress);
    let t = h.join(&ids[1]);
    let a = h.join_answer(t).expect("only member: completes at once");
    assert_eq!(a.generation_id, generation + 1);
    assert_eq!(a.leader, ids[1], "leadership moved to the survivor");
    assert_eq!(a.members.len(), 1);
    assert_eq!(h.heartbeat(&ids[0], a.generation_id), Code::UnknownMemberId);
}

#[test]
fn leaves_rebalance_and_the_last_leave_empties_the_group() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    assert_eq!(h.leave("nobody"), Code::UnknownMemberId);
    assert_eq!(h.leave(&ids[0]), Code::None);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    let t = h.join(&ids[1]);
    let a = h.join_answer(t).expect("completes");
    assert_eq!(
        (a.generation_id, a.leader.as_str()),
        (generation + 1, ids[1].as_str())
    );
    assert_eq!(h.leave(&ids[1]), Code::None);
    assert_eq!(h.state(), GroupState::Empty);
    assert_eq!(h.generation(), generation + 2);
    h.assert_all_answered_once();
}

#[test]
fn leaving_while_a_join_is_parked_answers_it() {
    let mut h = H::new(DELAY_MS);
    let t = h.join("");
    let id = {
        // The member id is only learned from the answer; find it in the group.
        let g = h.groups.group("g").expect("group");
        g.members().keys().next().cloned().expect("member")
    };
    assert_eq!(h.leave(&id), Code::None);
    assert_eq!(
        h.join_answer(t).map(|a| a.error),
        Some(Code::UnknownMemberId)
    );
    h.advance(DELAY_MS);
    assert_eq!(
        h.state(),
        GroupState::Dead,
        "empty group without offsets is forgotten"
    );
}

#[test]
fn concurrent_rebalance_fails_parked_syncs_and_fences_the_old_generation() {
    let mut h = H::new(DELAY_MS);
    let t1 = h.join("");
    let t2 = h.join("");
    // The second arrival extends the initial delay once.
    h.advance(2 * DELAY_MS);
    let (a1, a2) = (
        h.join_answer(t1).expect("a1"),
        h.join_answer(t2).expect("a2"),
    );
    let s2 = h.sync(&a2.member_id, a2.generation_id, &[]);
    // A third member arrives before the leader synced.
    let t3 = h.join("");
    assert_eq!(
        h.sync_answer(s2).map(|s| s.error),
        Some(Code::RebalanceInProgress)
    );
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    // The leader's sync for the old generation is refused.
    let s1 = h.sync(&a1.member_id, a1.generation_id, &[(&a1.member_id, "x")]);
    assert_eq!(
        h.sync_answer(s1).map(|s| s.error),
        Some(Code::RebalanceInProgress)
    );
    let r1 = h.join(&a1.member_id);
    let r2 = h.join(&a2.member_id);
    let b1 = h.join_answer(r1).expect("b1");
    assert_eq!(
        h.join_answer(r2).map(|a| a.generation_id),
        Some(a1.generation_id + 1)
    );
    assert_eq!(
        h.join_answer(t3).map(|a| a.generation_id),
        Some(b1.generation_id)
    );
    let stale = h.sync(&a1.member_id, a1.generation_id, &[]);
    assert_eq!(
        h.sync_answer(stale).map(|s| s.error),
        Some(Code::IllegalGeneration)
    );
    h.assert_all_answered_once();
}

#[test]
fn leader_dying_before_sync_rebalances_the_followers() {
    let mut h = H::new(DELAY_MS);
    let t1 = h.join("");
    let t2 = h.join("");
    // The second arrival extends the initial delay once.
    h.advance(2 * DELAY_MS);
    let (a1, a2) = (
        h.join_answer(t1).expect("a1"),
        h.join_answer(t2).expect("a2"),
    );
    assert_eq!(a1.leader, a1.member_id);
    let s2 = h.sync(&a2.member_id, a2.generation_id, &[]);
    // The leader never syncs nor heartbeats: its session expires.
    h.advance(SESSION_MS as u64);
    assert_eq!(
        h.sync_answer(s2).map(|s| s.error),
        Some(Code::RebalanceInProgress)
    );
    let r2 = h.join(&a2.member_id);
    let b2 = h.join_answer(r2).expect("completes alone");
    assert_eq!(b2.leader, a2.member_id);
    assert_eq!(b2.generation_id, a1.generation_id + 1);
}

#[test]
fn follower_that_never_syncs_is_removed_at_the_sync_deadline() {
    let mut h = H::new(DELAY_MS);
    let t1 = h.join("");
    let t2 = h.join("");
    // The second arrival extends the initial delay once.
    h.advance(2 * DELAY_MS);
    let (a1, a2) = (
        h.join_answer(t1).expect("a1"),
        h.join_answer(t2).expect("a2"),
    );
    let s1 = h.sync(&a1.member_id, a1.generation_id, &[]);
    assert_eq!(h.sync_answer(s1).map(|s| s.error), Some(Code::None));
    // The follower heartbeats (so its session lives) but never sends SyncGroup.
    while h.now_ms < REBALANCE_MS as u64 + 2 * DELAY_MS + 1 {
        h.advance(400);
        if h.state() != GroupState::Stable {
            break;
        }
        h.heartbeat(&a1.member_id, a1.generation_id);
        h.heartbeat(&a2.member_id, a2.generation_id);
    }
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&a2.member_id, a2.generation_id),
        Code::UnknownMemberId
    );
}

#[test]
fn lost_join_answer_is_repeated_without_a_new_round() {
    let mut h = H::new(DELAY_MS);
    let t1 = h.join("");
    let t2 = h.join("");
    // The second arrival extends the initial delay once.
    h.advance(2 * DELAY_MS);
    let (a1, a2) = (
        h.join_answer(t1).expect("a1"),
        h.join_answer(t2).expect("a2"),
    );
    // Same metadata in CompletingRebalance: same answer, same generation.
    let again = h.join(&a2.member_id);
    assert_eq!(h.join_answer(again), Some(a2.clone()));
    let again = h.join(&a1.member_id);
    assert_eq!(h.join_answer(again).map(|a| a.members.len()), Some(2));
    assert_eq!(h.state(), GroupState::CompletingRebalance);
    // A changed subscription starts a new round.
    let req = h.join_req(&a2.member_id, &["range", "roundrobin"], 3);
    h.send_join(req);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
}

#[test]
fn join_validation_table() {
    // (request tweak, expected error)
    type Tweak = fn(&mut JoinRequest);
    let cases: &[(&str, Tweak, Code)] = &[
        (
            "empty group id",
            |r| r.group_id.clear(),
            Code::InvalidGroupId,
        ),
        (
            "session too short",
            |r| r.session_timeout_ms = 10,
            Code::InvalidSessionTimeout,
        ),
        (
            "session too long",
            |r| r.session_timeout_ms = i32::MAX,
            Code::InvalidSessionTimeout,
        ),
        (
            "no protocols",
            |r| r.protocols.clear(),
            Code::InconsistentGroupProtocol,
        ),
        (
            "no protocol type",
            |r| r.protocol_type.clear(),
            Code::InconsistentGroupProtocol,
        ),
        (
            "unknown member of unknown group",
            |r| r.member_id = "ghost".into(),
            Code::UnknownMemberId,
        ),
        (
            "huge metadata",
            |r| r.protocols[0].metadata = Bytes::from(vec![0u8; 2 << 20]),
            Code::InvalidRequest,
        ),
    ];
    for (name, tweak, expected) in cases {
        let mut h = H::new(DELAY_MS);
        let mut req = h.join_req("", &["range"], 3);
        tweak(&mut req);
        let t = h.send_join(req);
        assert_eq!(h.join_answer(t).map(|a| a.error), Some(*expected), "{name}");
    }
}

#[test]
fn incompatible_protocols_are_refused() {
    let mut h = H::new(DELAY_MS);
    h.join("");
    let req = h.join_req("", &["roundrobin"], 3);
    let t = h.send_join(req);
    assert_eq!(
        h.join_answer(t).map(|a| a.error),
        Some(Code::InconsistentGroupProtocol)
    );
    let mut req = h.join_req("", &["range"], 3);
    req.protocol_type = "connect".into();
    let t = h.send_join(req);
    assert_eq!(
        h.join_answer(t).map(|a| a.error),
        Some(Code::InconsistentGroupProtocol)
    );
    // A member supporting both is fine, and the group keeps the common protocol.
    let req = h.join_req("", &["roundrobin", "range"], 3);
    let t = h.send_join(req);
    h.advance(DELAY_MS * 3);
    assert_eq!(
        h.join_answer(t).map(|a| a.protocol_name),
        Some("range".into())
    );
}

#[test]
fn pending_member_that_never_returns_expires_and_the_round_completes() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(1);
    // A v4 newcomer gets its id but never comes back.
    let req = h.join_req("", &["range"], 4);
    let t = h.send_join(req);
    assert_eq!(
        h.join_answer(t).map(|a| a.error),
        Some(Code::MemberIdRequired)
    );
    assert_eq!(
        h.state(),
        GroupState::Stable,
        "a pending member does not rebalance"
    );
    // Meanwhile the leader rejoins: the round waits for the pending member until its session ends.
    let r = h.join(&ids[0]);
    assert_eq!(h.join_answer(r), None);
    h.advance(SESSION_MS as u64);
    let a = h
        .join_answer(r)
        .expect("completed once the pending member expired");
    assert_eq!((a.generation_id, a.members.len()), (generation + 1, 1));
}

#[test]
fn commit_fencing_table() {
    let mut h = H::new(DELAY_MS);
    let (ids, generation) = h.stable_group(2);
    let who = |member: &str, generation_id: i32| CommitIdentity {
        group_id: "g".into(),
        generation_id,
        member_id: member.into(),
        group_instance_id: None,
    };
    let table: Vec<(CommitIdentity, Code)> = vec![
        (who(&ids[0], generation), Code::None),
        (who(&ids[1], generation), Code::None),
        (who(&ids[0], generation - 1), Code::IllegalGeneration),
        (who("", -1), Code::UnknownMemberId),
        (who("stranger", generation), Code::UnknownMemberId),
    ];
    for (identity, expected) in &table {
        assert_eq!(
            h.groups.validate_commit(identity, h.now_ms),
            *expected,
            "{identity:?}"
        );
    }
    // Standalone commits go to empty or unknown groups only.
    let mut other = who("", -1);
    other.group_id = "standalone".into();
    assert_eq!(h.groups.validate_commit(&other, h.now_ms), Code::None);
    other.generation_id = 3;
    assert_eq!(
        h.groups.validate_commit(&other, h.now_ms),
        Code::IllegalGeneration
    );
    // During CompletingRebalance commits wait for the new assignment.
    let t = h.join(&ids[0]);
    let t2 = h.join(&ids[1]);
    let a = h.join_answer(t).expect("a");
    h.join_answer(t2).expect("b");
    assert_eq!(
        h.groups
            .validate_commit(&who(&ids[0], a.generation_id), h.now_ms),
        Code::RebalanceInProgress
    );
    assert_eq!(
        h.groups
            .validate_commit(&who(&ids[0], generation), h.now_ms),
        Code::IllegalGeneration
    );
}

#[test]
fn offsets_fetch_list_describe_and_delete() {
    let mut h = H::new(DELAY_MS);
    let tp = |p: i32| TopicPartition {
        topic: "t".into(),
        partition: p,
    };
    let offset = |o: i64| CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp_ms: 7,
    };
    h.groups.apply_offsets(
        "g",
        vec![(tp(0), Some(offset(5))), (tp(1), Some(offset(9)))],
    );
    let got = h.groups.committed("g", Some(&[tp(0), tp(3)]));
    assert_eq!(got, vec![(tp(0), Some(offset(5))), (tp(3), None)]);
    assert_eq!(h.groups.committed("g", None).len(), 2);
    assert_eq!(h.groups.list().len(), 1);
    assert_eq!(h.groups.describe("g").state, GroupState::Empty);
    assert_eq!(h.groups.describe("nope").state, GroupState::Dead);

    let (_, _) = h.stable_group(1);
    assert_eq!(h.groups.delete("g"), Err(Code::NonEmptyGroup));
    let d = h.groups.describe("g");
    assert_eq!(
        (d.state, d.protocol.as_str(), d.members.len()),
        (GroupState::Stable, "range", 1)
    );
    assert!(!d.members[0].assignment.is_empty());
    let id = d.members[0].member_id.clone();
    h.leave(&id);
    assert_eq!(h.groups.delete("g"), Ok(vec![tp(0), tp(1)]));
    assert_eq!(h.groups.delete("g"), Err(Code::GroupIdNotFound));
    assert!(h.groups.committed("g", None).is_empty());
    // A tombstone replayed for the last offset forgets the group.
    h.groups.apply_offsets("h", vec![(tp(0), Some(offset(1)))]);
    h.groups.apply_offsets("h", vec![(tp(0), None)]);
    assert!(h.groups.group("h").is_none());
}

#[test]
fn static_member_restart_takes_over_without_rebalance() {
    let mut h = H::new(DELAY_MS);
    let static_req = |h: &H, member: &str, instance: &str| {
        let mut r = h.join_req(member, &["range"], 5);
        r.group_instance_id = Some(instance.into());
        r
    };
    let r1 = static_req(&h, "", "i1");
    let t1 = h.send_join(r1);
    let r2 = static_req(&h, "", "i2");
    let t2 = h.send_join(r2);
    h.advance(2 * DELAY_MS);
    let (a1, a2) = (
        h.join_answer(t1).expect("a1"),
        h.join_answer(t2).expect("a2"),
    );
    assert_eq!(
        a1.error,
        Code::None,
        "static members skip MEMBER_ID_REQUIRED"
    );
    h.sync(&a2.member_id, a2.generation_id, &[]);
    h.sync(
        &a1.member_id,
        a1.generation_id,
        &[(&a1.member_id, "A"), (&a2.member_id, "B")],
    );
    assert_eq!(h.state(), GroupState::Stable);
    // Follower i2 restarts with no member id.
    let r = static_req(&h, "", "i2");
    let t = h.send_join(r);
    let b2 = h.join_answer(t).expect("answered at once");
    assert_eq!(b2.generation_id, a2.generation_id, "no rebalance");
    assert_ne!(b2.member_id, a2.member_id);
    assert_eq!(h.state(), GroupState::Stable);
    let s = h.sync(&b2.member_id, b2.generation_id, &[]);
    assert_eq!(
        h.sync_answer(s).map(|s| s.assignment),
        Some(Bytes::from("B"))
    );
    // The old incarnation is fenced.
    let hb = HeartbeatRequest {
        group_id: "g".into(),
        generation_id: a2.generation_id,
        member_id: a2.member_id.clone(),
        group_instance_id: Some("i2".into()),
    };
    assert_eq!(h.groups.heartbeat(&hb, h.now_ms), Code::FencedInstanceId);
    // The leader restarting does not rebalance either: it gets the member list of the same
    // generation, and its sync returns its assignment.
    let r = static_req(&h, "", "i1");
    let t = h.send_join(r);
    let b1 = h.join_answer(t).expect("answered at once");
    assert_eq!(
        (b1.generation_id, b1.leader.as_str(), b1.members.len()),
        (a1.generation_id, b1.member_id.as_str(), 2)
    );
    assert_eq!(h.state(), GroupState::Stable);
    let s = h.sync(&b1.member_id, b1.generation_id, &[(&b1.member_id, "X")]);
    assert_eq!(
        h.sync_answer(s).map(|s| s.assignment),
        Some(Bytes::from("A"))
    );
    // A restart whose protocols change the group's choice does rebalance.
    let mut r = static_req(&h, "", "i2");
    r.protocols = vec![
        JoinProtocol {
            name: "roundrobin".into(),
            metadata: Bytes::new(),
        },
        r.protocols[0].clone(),
    ];
    let t = h.send_join(r);
    let c2 = h
        .join_answer(t)
        .expect("range is still every member's common choice");
    assert_eq!(
        (c2.protocol_name.as_str(), h.state()),
        ("range", GroupState::Stable)
    );
    let mut r = static_req(&h, "", "i1");
    r.protocols = vec![
        JoinProtocol {
            name: "roundrobin".into(),
            metadata: Bytes::new(),
        },
        r.protocols[0].clone(),
    ];
    let t = h.send_join(r);
    assert_eq!(
        h.state(),
        GroupState::PreparingRebalance,
        "both now prefer roundrobin"
    );
    let mut r = static_req(&h, &c2.member_id, "i2");
    r.protocols = vec![
        JoinProtocol {
            name: "roundrobin".into(),
            metadata: Bytes::new(),
        },
        r.protocols[0].clone(),
    ];
    let t2 = h.send_join(r);
    assert_eq!(
        h.join_answer(t2).map(|a| a.protocol_name),
        Some("roundrobin".into())
    );
    assert_eq!(
        h.join_answer(t).map(|a| a.generation_id),
        Some(a1.generation_id + 1)
    );
}

/// Random sequences of joins, syncs, heartbeats, leaves and time: every parked request is
/// answered exactly once, and the group always ends empty once everyone stops.
#[test]
fn random_operations_answer_every_request_exactly_once() {
    for seed in 1..=40u64 {
        let mut h = H::new(if seed % 2 == 0 { DELAY_MS } else { 0 });
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut known: Vec<(String, i32)> = Vec::new();
        for _ in 0..200 {
            match next() % 6 {
                0 => {
                    h.join("");
                }
                1 if !known.is_empty() => {
                    let (id, _) = known[(next() as usize) % known.len()].clone();
                    h.join(&id);
                }
                2 if !known.is_empty() => {
                    let (id, generation) = known[(next() as usize) % known.len()].clone();
                    let leader = h
                        .groups
                        .group("g")
                        .and_then(|g| g.leader_id().map(str::to_owned));
                    let assignment: Vec<(String, String)> =
                        if leader.as_deref() == Some(id.as_str()) {
                            known
                                .iter()
                                .map(|(m, _)| (m.clone(), "a".to_string()))
                                .collect()
                        } else {
                            Vec::new()
                        };
                    let refs: Vec<(&str, &str)> = assignment
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect();
                    h.sync(&id, generation, &refs);
                }
                3 if !known.is_empty() => {
                    let (id, generation) = known[(next() as usize) % known.len()].clone();
                    h.heartbeat(&id, generation);
                }
                4 if !known.is_empty() && next() % 4 == 0 => {
                    let (id, _) = known.remove((next() as usize) % known.len());
                    h.leave(&id);
                }
                _ => h.advance(next() % 700),
            }
            // Learn ids and generations from join answers.
            for replies in h.inbox.values() {
                for reply in replies {
                    if let Reply::Join(j) = reply {
                        if j.error == Code::None {
                            match known.iter_mut().find(|(id, _)| *id == j.member_id) {
                                Some(entry) => entry.1 = entry.1.max(j.generation_id),
                                None => known.push((j.member_id.clone(), j.generation_id)),
                            }
                        }
                    }
                }
            }
        }
        h.advance(60_000);
        h.assert_all_answered_once();
        assert_eq!(
            h.state(),
            GroupState::Dead,
            "seed {seed}: everyone stopped, the group is gone"
        );
    }
}
