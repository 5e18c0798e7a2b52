//! The event loop: a virtual clock, a seeded RNG, the network, the controller, the nodes, the
//! clients, the faults, and the invariant checks.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use super::log::Entry;
use super::node::{Addr, Msg, Node, Out, Role};
use super::{SimConfig, SimReport, SimViolation};
use crate::replication::controller::{ClusterState, CommandOutcome, Liveness, MetadataCommand};
use crate::replication::leader::LeaderConfig;
use crate::replication::limits::BROKER_HEARTBEAT_INTERVAL_MS;
use crate::replication::message::TopicPartition;
use crate::replication::{NodeId, NO_NODE};

/// Node tick period.
const TICK_MS: u64 = 10;
/// Controller tick period.
const CONTROLLER_TICK_MS: u64 = 50;
/// Chaos decision period.
const CHAOS_MS: u64 = 100;
/// Producer period.
const PRODUCE_MS: u64 = 5;
/// Reader period.
const READ_MS: u64 = 20;
/// Records a reader takes at once.
const READ_RECORDS_MAX: i64 = 32;
/// How long a clean shutdown waits for leadership to move before stopping anyway.
const SHUTDOWN_WAIT_MS: u64 = 1_000;

enum Event {
    Deliver {
        from: Addr,
        from_incarnation: u64,
        to: Addr,
        to_incarnation: u64,
        msg: Msg,
    },
    Tick(NodeId),
    ControllerTick,
    Chaos,
    Restart(NodeId),
    Produce,
    Read,
    EndChaos,
    KillLeader,
    RollingStep,
}

struct Scheduled {
    at_ms: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

struct World {
    cfg: SimConfig,
    rng: fastrand::Rng,
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: BTreeMap<NodeId, Node>,
    cluster: ClusterState,
    liveness: Liveness,
    /// Network side of each address; messages cross only within a side.
    side: BTreeMap<Addr, u8>,
    chaos: bool,
    loss: f64,
    tp: TopicPartition,
    next_value: u64,
    /// Acknowledged records: offset -> value.
    acked: BTreeMap<i64, u64>,
    /// Records readers saw: offset -> value.
    seen: BTreeMap<i64, u64>,
    /// The longest committed prefix any leader has shown.
    committed: Vec<Entry>,
    leaderless_since: Option<u64>,
    /// While a message is handled: its sender and the sender's incarnation, for the answer.
    reply_to: Option<(Addr, u64)>,
    /// When the scripted leader kill happened, until a new leader serves.
    killed_leader_at: Option<(u64, NodeId)>,
    report: SimReport,
}

/// Runs one simulation; `Err` names the first invariant broken.
pub fn run(cfg: &SimConfig) -> Result<SimReport, SimViolation> {
    let mut w = World::new(cfg.clone());
    w.run()
}

impl World {
    fn new(cfg: SimConfig) -> Self {
        let tp = TopicPartition::new("sim", 0);
        let leader_config = LeaderConfig {
            replica_lag_time_max_ms: cfg.replica_lag_time_max_ms,
            ..LeaderConfig::default()
        };
        let mut cluster = ClusterState::new();
        let mut nodes = BTreeMap::new();
        let mut side = BTreeMap::new();
        side.insert(Addr::Controller, 0);
        for id in 1..=cfg.nodes {
            nodes.insert(
                id,
                Node::new(id, tp.clone(), leader_config, cfg.fetch_timeout_ms),
            );
            side.insert(Addr::Node(id), 0);
            // Bootstrap: every broker registered in incarnation 1 before the topic exists.
            let _ = cluster.apply(&MetadataCommand::RegisterBroker {
                id,
                incarnation: 1,
                client_addr: String::new(),
                peer_addr: String::new(),
            });
        }
        let mut configs = BTreeMap::new();
        configs.insert("min.insync.replicas".to_owned(), cfg.min_insync.to_string());
        let _ = cluster.apply(&MetadataCommand::CreateTopic {
            name: tp.topic.clone(),
            partitions: 1,
            replication_factor: usize::try_from(cfg.nodes).unwrap_or(1),
            configs,
        });
        let mut liveness = Liveness::new(cfg.session_timeout_ms);
        for id in 1..=cfg.nodes {
            liveness.on_heartbeat(id, 1, 0);
        }
        Self {
            rng: fastrand::Rng::with_seed(cfg.seed),
            loss: cfg.loss,
            report: SimReport {
                seed: cfg.seed,
                ..SimReport::default()
            },
            cfg,
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            cluster,
            liveness,
            side,
            chaos: true,
            tp,
            next_value: 1,
            acked: BTreeMap::new(),
            seen: BTreeMap::new(),
            committed: Vec::new(),
            leaderless_since: None,
            reply_to: None,
            killed_leader_at: None,
        }
    }

    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at_ms: self.now_ms + delay_ms,
            seq: self.seq,
            event,
        }));
    }

    fn violation(&self, what: impl Into<String>) -> SimViolation {
        let mut what = what.into();
        if self.cfg.trace {
            for line in &self.report.trace {
                what.push_str("\n  ");
                what.push_str(line);
            }
        }
        SimViolation {
            seed: self.cfg.seed,
            at_ms: self.now_ms,
            what,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.cfg.trace {
            let line = format!("{:>6} ms {}", self.now_ms, line());
            self.report.trace.push(line);
        }
    }

    /// Applies a controller command, noting partition changes in the trace.
    fn apply(
        &mut self,
        cmd: &MetadataCommand,
    ) -> Result<CommandOutcome, crate::replication::controller::MetadataError> {
        let before = self.cluster.partition(&self.tp).cloned();
        let result = self.cluster.apply(cmd);
        let after = self.cluster.partition(&self.tp).cloned();
        if before != after {
            self.note(|| format!("controller {cmd:?} -> {after:?}"));
            // Push the change to every broker at once (as brokers tailing the metadata log see
            // it), rather than waiting for their next heartbeat.
            let targets: Vec<NodeId> = self
                .nodes
                .values()
                .filter(|n| n.up && n.registered)
                .map(|n| n.id)
                .collect();
            for id in targets {
                self.send(
                    Addr::Controller,
                    Addr::Node(id),
                    Msg::Meta {
                        registered: true,
                        partition: after.clone(),
                    },
                );
            }
        }
        result
    }

    fn run(&mut self) -> Result<SimReport, SimViolation> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            let jitter = self.rng.u64(0..TICK_MS);
            self.schedule(jitter, Event::Tick(id));
        }
        self.schedule(0, Event::ControllerTick);
        self.schedule(CHAOS_MS, Event::Chaos);
        self.schedule(PRODUCE_MS, Event::Produce);
        self.schedule(READ_MS, Event::Read);
        self.schedule(self.cfg.chaos_ms, Event::EndChaos);
        if self.cfg.rolling_restart {
            self.schedule(1_000, Event::RollingStep);
        }
        if let Some(at) = self.cfg.kill_leader_at_ms {
            self.schedule(at, Event::KillLeader);
        }
        let end_ms = self.cfg.chaos_ms + self.cfg.settle_ms;
        while let Some(Reverse(s)) = self.queue.pop() {
            if s.at_ms > end_ms {
                break;
            }
            self.now_ms = s.at_ms;
            self.handle(s.event)?;
            self.track_leaderless();
        }
        self.now_ms = end_ms;
        self.final_checks()?;
        Ok(self.report.clone())
    }

    fn handle(&mut self, event: Event) -> Result<(), SimViolation> {
        match event {
            Event::Deliver {
                from,
                from_incarnation,
                to,
                to_incarnation,
                msg,
            } => {
                // Answers travel back on the requester's connection: they reach the process that
                // asked, never a later incarnation of it.
                self.reply_to = Some((from, from_incarnation));
                let result = self.deliver(from, to, to_incarnation, msg);
                self.reply_to = None;
                result?;
            }
            Event::Tick(id) => {
                let sync = self.rng.bool();
                let mut out = Out::default();
                let now = self.now_ms;
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Ok(());
                };
                if !node.up {
                    return Ok(());
                }
                if node
                    .shutting_down
                    .is_some_and(|since| now.saturating_sub(since) >= SHUTDOWN_WAIT_MS)
                {
                    self.stop_clean(id);
                    return Ok(());
                }
                node.tick(now, sync, BROKER_HEARTBEAT_INTERVAL_MS, &mut out);
                self.absorb(Addr::Node(id), out)?;
                self.check_leader_prefix(id)?;
                self.schedule(TICK_MS, Event::Tick(id));
            }
            Event::ControllerTick => {
                for cmd in self.liveness.tick(self.now_ms, &self.cluster) {
                    let _ = self.apply(&cmd);
                }
                self.schedule(CONTROLLER_TICK_MS, Event::ControllerTick);
            }
            Event::Chaos => {
                if self.chaos {
                    self.chaos_step();
                    self.schedule(CHAOS_MS, Event::Chaos);
                }
            }
            Event::Restart(id) => {
                let now = self.now_ms;
                if let Some(node) = self.nodes.get_mut(&id) {
                    if !node.up {
                        node.restart(now);
                        let len = node.log.len();
                        self.note(|| format!("node {id} restarted with {len} records"));
                        let jitter = self.rng.u64(0..TICK_MS);
                        self.schedule(jitter, Event::Tick(id));
                    }
                }
            }
            Event::Produce => {
                if self.chaos {
                    self.produce()?;
                    self.schedule(PRODUCE_MS, Event::Produce);
                }
            }
            Event::Read => {
                self.read()?;
                self.schedule(READ_MS, Event::Read);
            }
            Event::EndChaos => self.end_chaos(),
            Event::RollingStep => {
                let all_up = self
                    .nodes
                    .values()
                    .all(|n| n.up && n.registered && n.shutting_down.is_none());
                let isr_full = self
                    .cluster
                    .partition(&self.tp)
                    .is_some_and(|p| p.isr.len() == p.replicas.len());
                let next = self.report.rolled as i32 + 1;
                if all_up && isr_full && next <= self.cfg.nodes {
                    self.report.rolled += 1;
                    self.start_shutdown(next);
                }
                if self.report.rolled < self.cfg.nodes as u64 || !all_up {
                    self.schedule(100, Event::RollingStep);
                }
            }
            Event::KillLeader => {
                let leader = self
                    .cluster
                    .partition(&self.tp)
                    .map_or(NO_NODE, |p| p.leader);
                if let Some(node) = self.nodes.get_mut(&leader).filter(|n| n.up) {
                    node.go_down();
                    self.report.crashes += 1;
                    self.killed_leader_at = Some((self.now_ms, leader));
                }
            }
        }
        Ok(())
    }

    /// Sends the node's messages and records its acknowledgements and violations.
    fn absorb(&mut self, from: Addr, out: Out) -> Result<(), SimViolation> {
        if let Some(v) = out.violations.into_iter().next() {
            return Err(self.violation(v));
        }
        self.report.not_enough_replicas += out.not_enough_replicas;
        self.report.leader_changes += out.leader_changes;
        self.report.truncations += out.truncations;
        for (node, offset, before) in out.truncated {
            // A replica never cuts a committed record it holds.
            let holds = before
                .iter()
                .zip(&self.committed)
                .take_while(|(a, b)| a == b)
                .count() as i64;
            if offset < holds {
                return Err(self.violation(format!(
                    "node {node} truncated to {offset} but held committed records up to {holds}"
                )));
            }
        }
        for (offset, value) in out.acked {
            if let Some(old) = self.acked.insert(offset, value) {
                return Err(self.violation(format!(
                    "offset {offset} acknowledged twice: {old} then {value}"
                )));
            }
            self.report.acked += 1;
        }
        for (to, msg) in out.send {
            self.send(from, to, msg);
        }
        Ok(())
    }

    fn send(&mut self, from: Addr, to: Addr, msg: Msg) {
        if self.rng.f64() < self.loss {
            return;
        }
        // One message in a hundred is very late (reordering), while faults are on.
        let delay = if self.chaos && self.cfg.faults && self.rng.u32(0..100) == 0 {
            self.rng.u64(50..500)
        } else {
            self.rng.u64(1..=self.cfg.max_delay_ms.max(1))
        };
        let incarnation = |addr: Addr| match addr {
            Addr::Node(id) => self.nodes.get(&id).map_or(0, |n| n.incarnation),
            Addr::Controller => 0,
        };
        let to_incarnation = match self.reply_to {
            Some((requester, inc)) if requester == to => inc,
            _ => incarnation(to),
        };
        let from_incarnation = incarnation(from);
        self.schedule(
            delay,
            Event::Deliver {
                from,
                from_incarnation,
                to,
                to_incarnation,
                msg,
            },
        );
    }

    fn deliver(
        &mut self,
        from: Addr,
        to: Addr,
        to_incarnation: u64,
        msg: Msg,
    ) -> Result<(), SimViolation> {
        if self.side.get(&from) != self.side.get(&to) {
            return Ok(());
        }
        match to {
            Addr::Controller => {
                self.controller_receive(from, msg);
                Ok(())
            }
            Addr::Node(id) => {
                let now = self.now_ms;
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Ok(());
                };
                // A connection dies with the process it led to.
                if !node.up || node.incarnation != to_incarnation {
                    return Ok(());
                }
                let mut out = Out::default();
                match msg {
                    Msg::Meta {
                        registered,
                        partition,
                    } => {
                        if !registered {
                            node.registered = false;
                        } else {
                            node.registered = true;
                            if let Some(p) = partition {
                                node.on_partition_state(now, &p, &mut out);
                            }
                        }
                    }
                    Msg::AlterAnswer { ok, current } => {
                        node.on_alter_answer(now, ok, current, &mut out)
                    }
                    Msg::ShutdownAnswer { remaining } => {
                        if remaining == 0 && node.shutting_down.is_some() {
                            self.stop_clean(id);
                            return Ok(());
                        }
                    }
                    Msg::Fetch(req) => node.on_fetch(now, req, &mut out),
                    Msg::FetchResp(resp) => {
                        if let Addr::Node(from_id) = from {
                            node.on_fetch_response(now, from_id, resp, &mut out);
                        }
                    }
                    Msg::Register { .. }
                    | Msg::Heartbeat { .. }
                    | Msg::Alter { .. }
                    | Msg::Shutdown { .. } => {}
                }
                self.absorb(Addr::Node(id), out)?;
                self.check_leader_prefix(id)
            }
        }
    }

    fn controller_receive(&mut self, from: Addr, msg: Msg) {
        let Addr::Node(sender) = from else { return };
        let tp = self.tp.clone();
        let partition = |c: &ClusterState| c.partition(&tp).cloned();
        let reply = match msg {
            Msg::Register { id, incarnation } => {
                let _ = self.apply(&MetadataCommand::RegisterBroker {
                    id,
                    incarnation,
                    client_addr: String::new(),
                    peer_addr: String::new(),
                });
                self.liveness.on_heartbeat(id, incarnation, self.now_ms);
                Some((
                    incarnation,
                    Msg::Meta {
                        registered: true,
                        partition: partition(&self.cluster),
                    },
                ))
            }
            Msg::Heartbeat { id, incarnation } => {
                let current = self
                    .cluster
                    .brokers
                    .get(&id)
                    .is_some_and(|b| b.incarnation == incarnation);
                if current {
                    self.liveness.on_heartbeat(id, incarnation, self.now_ms);
                }
                Some((
                    incarnation,
                    Msg::Meta {
                        registered: current,
                        partition: partition(&self.cluster),
                    },
                ))
            }
            Msg::Alter { incarnation, req } => {
                let current = self
                    .cluster
                    .brokers
                    .get(&sender)
                    .is_some_and(|b| b.incarnation == incarnation);
                let ok = current
                    && matches!(
                        self.apply(&MetadataCommand::AlterPartition(req)),
                        Ok(CommandOutcome::Partition(_))
                    );
                Some((
                    incarnation,
                    Msg::AlterAnswer {
                        ok,
                        current: partition(&self.cluster),
                    },
                ))
            }
            Msg::Shutdown { id, incarnation } => {
                match self.apply(&MetadataCommand::ControlledShutdown { id, incarnation }) {
                    Ok(CommandOutcome::RemainingLeaderships(remaining)) => {
                        Some((incarnation, Msg::ShutdownAnswer { remaining }))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((incarnation, msg)) = reply {
            // Answer the incarnation that asked; if it is gone the connection is gone too.
            if self
                .nodes
                .get(&sender)
                .is_some_and(|n| n.incarnation == incarnation)
            {
                self.send(Addr::Controller, Addr::Node(sender), msg);
            }
        }
    }

    fn chaos_step(&mut self) {
        if !self.cfg.faults {
            return;
        }
        let up: Vec<NodeId> = self.nodes.values().filter(|n| n.up).map(|n| n.id).collect();
        let roll = self.rng.u32(0..1000);
        match roll {
            0..=39 if !up.is_empty() => {
                let id = up[self.rng.usize(0..up.len())];
                self.crash(id);
            }
            40..=44 => {
                for id in up {
                    self.crash(id);
                }
            }
            45..=89 => {
                // Cut one node off; the controller lands on a random side.
                self.report.partitions += 1;
                let cut = self.rng.i32(1..=self.cfg.nodes);
                for (addr, side) in self.side.iter_mut() {
                    *side = u8::from(*addr == Addr::Node(cut));
                }
                let controller_side = u8::from(self.rng.bool());
                self.side.insert(Addr::Controller, controller_side);
                self.note(|| {
                    format!(
                        "partition: node {cut} cut off, controller with it: {}",
                        controller_side == 1
                    )
                });
            }
            90..=139 => self.heal(),
            140..=159 if !up.is_empty() => {
                let id = up[self.rng.usize(0..up.len())];
                self.start_shutdown(id);
            }
            160..=169 => {
                // Controller failover: the new active controller knows no heartbeats yet.
                // As `cluster` does: brokers not heard from get three heartbeats of grace.
                self.liveness = Liveness::after_failover(
                    self.cfg.session_timeout_ms,
                    3 * BROKER_HEARTBEAT_INTERVAL_MS,
                );
                self.note(|| "controller failover".to_owned());
            }
            _ => {}
        }
    }

    fn heal(&mut self) {
        if self.side.values().any(|&s| s != 0) {
            self.note(|| "network healed".to_owned());
        }
        for side in self.side.values_mut() {
            *side = 0;
        }
    }

    fn crash(&mut self, id: NodeId) {
        let extra = self.rng.usize(0..8);
        let down_ms = self.rng.u64(100..3_000);
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if !node.up {
            return;
        }
        let unsynced = usize::try_from(node.log.len() - node.log.durable()).unwrap_or(0);
        let before = node.log.len();
        node.log.crash(extra.min(unsynced));
        let after = node.log.len();
        node.go_down();
        self.report.crashes += 1;
        self.note(|| format!("node {id} crashed, log {before} -> {after}, down {down_ms} ms"));
        self.schedule(down_ms, Event::Restart(id));
    }

    fn start_shutdown(&mut self, id: NodeId) {
        let now = self.now_ms;
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if !node.up || node.shutting_down.is_some() || !node.registered {
            return;
        }
        node.shutting_down = Some(now);
        let incarnation = node.incarnation;
        self.report.shutdowns += 1;
        self.note(|| format!("node {id} controlled shutdown begins (incarnation {incarnation})"));
    }

    fn stop_clean(&mut self, id: NodeId) {
        let down_ms = self.rng.u64(100..2_000);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.log.sync();
            node.go_down();
        }
        self.note(|| format!("node {id} stopped cleanly, down {down_ms} ms"));
        self.schedule(down_ms, Event::Restart(id));
    }

    fn end_chaos(&mut self) {
        self.chaos = false;
        self.loss = 0.0;
        self.heal();
        let down: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| !n.up)
            .map(|n| n.id)
            .collect();
        for id in down {
            self.schedule(0, Event::Restart(id));
        }
    }

    fn produce(&mut self) -> Result<(), SimViolation> {
        let leaders: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.up && n.leader().is_some())
            .map(|n| n.id)
            .collect();
        if leaders.is_empty() {
            return Ok(());
        }
        let id = leaders[self.rng.usize(0..leaders.len())];
        let n = self.rng.u64(1..=3);
        let values: Vec<u64> = (self.next_value..self.next_value + n).collect();
        self.next_value += n;
        let mut out = Out::default();
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        if node.produce(&values, &mut out) {
            self.report.produced += n;
        }
        self.absorb(Addr::Node(id), out)
    }

    fn read(&mut self) -> Result<(), SimViolation> {
        let leaders: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.up && n.leader().is_some())
            .map(|n| n.id)
            .collect();
        if leaders.is_empty() {
            return Ok(());
        }
        let id = leaders[self.rng.usize(0..leaders.len())];
        let Some(node) = self.nodes.get(&id) else {
            return Ok(());
        };
        let hw = node.high_watermark();
        if hw <= 0 {
            return Ok(());
        }
        let from = self.rng.i64(0..hw);
        let until = (from + READ_RECORDS_MAX).min(hw);
        let entries: Vec<(i64, u64)> = (from..until)
            .filter_map(|o| {
                node.log
                    .entries()
                    .get(usize::try_from(o).ok()?)
                    .map(|e| (o, e.value))
            })
            .collect();
        if entries.len() as i64 != until - from {
            return Err(self.violation(format!(
                "node {id} has HW {hw} but only {} records",
                node.log.len()
            )));
        }
        for (offset, value) in entries {
            self.report.read += 1;
            if let Some(old) = self.seen.insert(offset, value) {
                if old != value {
                    return Err(self.violation(format!(
                        "offset {offset} was read as {old} and later as {value} (node {id})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// A leader's prefix below its HW agrees with every other committed prefix seen so far.
    fn check_leader_prefix(&mut self, id: NodeId) -> Result<(), SimViolation> {
        let Some(node) = self.nodes.get(&id) else {
            return Ok(());
        };
        let Role::Leader(l) = &node.role else {
            return Ok(());
        };
        let hw = usize::try_from(l.high_watermark()).unwrap_or(0);
        let entries = node.log.entries();
        if hw > entries.len() {
            return Err(self.violation(format!(
                "leader {id} HW {hw} beyond its log end {}",
                entries.len()
            )));
        }
        let common = hw.min(self.committed.len());
        if let Some(i) = (0..common).find(|&i| entries[i] != self.committed[i]) {
            return Err(self.violation(format!(
                "leader {id} committed offset {i} = {:?} but earlier it was {:?}",
                entries[i], self.committed[i]
            )));
        }
        if hw > self.committed.len() {
            let tail = entries[self.committed.len()..hw].to_vec();
            self.committed.extend(tail);
        }
        Ok(())
    }

    fn track_leaderless(&mut self) {
        let state = self.cluster.partition(&self.tp);
        let serving = state.is_some_and(|p| {
            p.leader != NO_NODE
                && self.nodes.get(&p.leader).is_some_and(|n| {
                    n.up && n
                        .leader()
                        .is_some_and(|l| l.leader_epoch() == p.leader_epoch)
                })
        });
        if let (true, Some((at, old))) = (serving, self.killed_leader_at) {
            if state.is_some_and(|p| p.leader != old) {
                self.report.failover_ms = Some(self.now_ms - at);
                self.killed_leader_at = None;
            }
        }
        match (serving, self.leaderless_since) {
            (true, Some(since)) => {
                let gap = self.now_ms - since;
                self.report.longest_leaderless_ms = self.report.longest_leaderless_ms.max(gap);
                if since > 0 {
                    self.report.longest_leaderless_after_start_ms =
                        self.report.longest_leaderless_after_start_ms.max(gap);
                }
                self.leaderless_since = None;
            }
            (false, None) => {
                self.leaderless_since = Some(self.now_ms);
                self.note(|| "no serving leader".to_owned());
            }
            _ => {}
        }
    }

    fn final_checks(&mut self) -> Result<(), SimViolation> {
        let Some(state) = self.cluster.partition(&self.tp).cloned() else {
            return Err(self.violation("the partition disappeared"));
        };
        let Some(leader) = self
            .nodes
            .get(&state.leader)
            .filter(|n| n.up && n.leader().is_some())
        else {
            return Err(self.violation(format!(
                "no serving leader after settling (controller: {state:?})"
            )));
        };
        let final_log = leader.log.entries().to_vec();
        self.report.final_log_len = final_log.len() as u64;
        for (&offset, &value) in &self.acked {
            let at = usize::try_from(offset).ok().and_then(|o| final_log.get(o));
            if at.map(|e| e.value) != Some(value) {
                return Err(self.violation(format!(
                    "acknowledged record {value} at offset {offset} is not in the final log (found {at:?})"
                )));
            }
        }
        for (&offset, &value) in &self.seen {
            let at = usize::try_from(offset).ok().and_then(|o| final_log.get(o));
            if at.map(|e| e.value) != Some(value) {
                return Err(self.violation(format!(
                    "record {value} read at offset {offset} is not in the final log (found {at:?})"
                )));
            }
        }
        if final_log.len() < self.committed.len()
            || final_log[..self.committed.len()] != self.committed[..]
        {
            return Err(self.violation("the final log does not extend the committed prefix"));
        }
        for node in self.nodes.values() {
            if node.log.entries() != final_log.as_slice() {
                return Err(self.violation(format!(
                    "after settling node {} holds {} records, the leader {} holds {}",
                    node.id,
                    node.log.len(),
                    state.leader,
                    final_log.len()
                )));
            }
        }
        Ok(())
    }
}
