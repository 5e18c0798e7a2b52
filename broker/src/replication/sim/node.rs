//! One simulated broker: the replication cores for one partition plus the driver logic the real
//! broker will have (become leader or follower on controller news, answer and send fetches,
//! heartbeat, sync, controlled shutdown).

use std::collections::BTreeMap;

use super::log::{Entry, SimLog};
use crate::replication::follower::{FollowerAction, FollowerState};
use crate::replication::leader::{AckId, LeaderConfig, LeaderState, LogPosition};
use crate::replication::message::{
    AlterPartition, FetchData, FetchRequest, FetchResponse, PartitionState, ReplicaError,
    TopicPartition,
};
use crate::replication::NodeId;

/// Most records in one fetch response.
const FETCH_RECORDS_MAX: usize = 64;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Addr {
    Controller,
    Node(NodeId),
}

/// Everything that crosses the simulated network.
#[derive(Debug, Clone)]
pub(super) enum Msg {
    Register {
        id: NodeId,
        incarnation: u64,
    },
    Heartbeat {
        id: NodeId,
        incarnation: u64,
    },
    Alter {
        incarnation: u64,
        req: AlterPartition,
    },
    Shutdown {
        id: NodeId,
        incarnation: u64,
    },
    Meta {
        registered: bool,
        partition: Option<PartitionState>,
    },
    AlterAnswer {
        ok: bool,
        current: Option<PartitionState>,
    },
    ShutdownAnswer {
        remaining: usize,
    },
    Fetch(FetchRequest),
    FetchResp(FetchResponse<Vec<Entry>>),
}

pub(super) enum Role {
    None,
    Leader(Box<LeaderState>),
    Follower(FollowerState),
}

/// A produce waiting for acks=all: its values and base offset.
pub(super) struct Pending {
    pub base: i64,
    pub values: Vec<u64>,
}

/// What a node handler produced besides state changes.
#[derive(Default)]
pub(super) struct Out {
    pub send: Vec<(Addr, Msg)>,
    /// (offset, value) pairs acknowledged to the producer.
    pub acked: Vec<(i64, u64)>,
    pub not_enough_replicas: u64,
    pub leader_changes: u64,
    pub truncations: u64,
    /// A truncation: (node, offset, the log before it).
    pub truncated: Vec<(NodeId, i64, Vec<Entry>)>,
    pub violations: Vec<String>,
}

pub(super) struct Node {
    pub id: NodeId,
    pub up: bool,
    pub incarnation: u64,
    pub registered: bool,
    pub log: SimLog,
    pub role: Role,
    /// The newest leader epoch heard of in this incarnation.
    pub known_epoch: i32,
    pub pending: BTreeMap<AckId, Pending>,
    pub last_heartbeat_ms: u64,
    pub last_register_ms: u64,
    pub shutting_down: Option<u64>,
    next_fetch_id: u64,
    pub tp: TopicPartition,
    pub leader_config: LeaderConfig,
    pub fetch_timeout_ms: u64,
    last_shutdown_request_ms: u64,
}

impl Node {
    pub fn new(
        id: NodeId,
        tp: TopicPartition,
        leader_config: LeaderConfig,
        fetch_timeout_ms: u64,
    ) -> Self {
        Self {
            id,
            up: true,
            incarnation: 1,
            registered: true,
            log: SimLog::default(),
            role: Role::None,
            known_epoch: -1,
            pending: BTreeMap::new(),
            last_heartbeat_ms: 0,
            last_register_ms: 0,
            shutting_down: None,
            next_fetch_id: 0,
            tp,
            leader_config,
            fetch_timeout_ms,
            last_shutdown_request_ms: 0,
        }
    }

    pub fn high_watermark(&self) -> i64 {
        match &self.role {
            Role::Leader(l) => l.high_watermark(),
            Role::Follower(f) => f.high_watermark(self.log.local()),
            Role::None => 0,
        }
    }

    pub fn leader(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// Drops all volatile state (crash or stop).
    pub fn go_down(&mut self) {
        self.up = false;
        self.role = Role::None;
        self.pending.clear();
        self.registered = false;
        self.shutting_down = None;
        self.known_epoch = -1;
    }

    pub fn restart(&mut self, now_ms: u64) {
        self.up = true;
        self.incarnation += 1;
        // A new process numbers its fetches from zero again, as the real one does.
        self.next_fetch_id = 0;
        self.registered = false;
        self.last_register_ms = 0;
        self.last_heartbeat_ms = now_ms;
    }

    /// Periodic work: registration, heartbeats, fsync, leader ISR proposals, follower fetches.
    pub fn tick(&mut self, now_ms: u64, sync: bool, heartbeat_ms: u64, out: &mut Out) {
        if !self.registered {
            if now_ms.saturating_sub(self.last_register_ms) >= 100 || self.last_register_ms == 0 {
                self.last_register_ms = now_ms;
                out.send.push((
                    Addr::Controller,
                    Msg::Register {
                        id: self.id,
                        incarnation: self.incarnation,
                    },
                ));
            }
            return;
        }
        if let Some(since) = self.shutting_down {
            // Keep asking until every leadership has moved (requests and answers may be lost).
            if now_ms.saturating_sub(self.last_shutdown_request_ms.max(since)) >= 100 {
                self.last_shutdown_request_ms = now_ms;
                out.send.push((
                    Addr::Controller,
                    Msg::Shutdown {
                        id: self.id,
                        incarnation: self.incarnation,
                    },
                ));
            }
        }
        if self.last_heartbeat_ms == 0
            || now_ms.saturating_sub(self.last_heartbeat_ms) >= heartbeat_ms
        {
            self.last_heartbeat_ms = now_ms;
            out.send.push((
                Addr::Controller,
                Msg::Heartbeat {
                    id: self.id,
                    incarnation: self.incarnation,
                },
            ));
        }
        if sync {
            self.log.sync();
            if let Role::Leader(l) = &mut self.role {
                l.on_synced(self.log.durable());
            }
        }
        let local = self.log.local();
        match &mut self.role {
            Role::Leader(l) => {
                if let Some(req) = l.tick(now_ms) {
                    out.send.push((
                        Addr::Controller,
                        Msg::Alter {
                            incarnation: self.incarnation,
                            req,
                        },
                    ));
                }
            }
            Role::Follower(f) => {
                if let Some(req) = f.poll_fetch(now_ms, local) {
                    out.send.push((Addr::Node(f.leader()), Msg::Fetch(req)));
                }
            }
            Role::None => {}
        }
        self.drain_acks(out);
    }

    /// Controller news about the partition: become leader or follower on a newer epoch, or take
    /// a new ISR for the current one.
    pub fn on_partition_state(&mut self, now_ms: u64, state: &PartitionState, out: &mut Out) {
        if state.leader_epoch < self.known_epoch {
            return;
        }
        if state.leader_epoch == self.known_epoch {
            if let Role::Leader(l) = &mut self.role {
                l.update_state(state);
                self.drain_acks(out);
            }
            return;
        }
        self.known_epoch = state.leader_epoch;
        let hw = self.high_watermark();
        if let Role::Leader(l) = std::mem::replace(&mut self.role, Role::None) {
            for (id, _) in l.resign() {
                self.pending.remove(&id);
            }
        }
        self.pending.clear();
        if let Role::Follower(f) = &self.role {
            self.next_fetch_id = f.next_fetch_id();
        }
        if state.leader == self.id {
            out.leader_changes += 1;
            let pos = LogPosition {
                log_end_offset: self.log.len(),
                durable_offset: self.log.durable(),
                high_watermark: hw,
            };
            self.role = Role::Leader(Box::new(LeaderState::new(
                self.tp.clone(),
                self.id,
                state,
                self.leader_config,
                now_ms,
                pos,
            )));
        } else if state.replicas.contains(&self.id) {
            let mut f = FollowerState::new(
                self.tp.clone(),
                self.id,
                state.leader,
                state.leader_epoch,
                hw,
                self.next_fetch_id,
            );
            f.set_fetch_timeout_ms(self.fetch_timeout_ms);
            self.role = Role::Follower(f);
        } else {
            self.role = Role::None;
        }
    }

    /// A producer's acks=all request for `values`.
    pub fn produce(&mut self, values: &[u64], out: &mut Out) -> bool {
        let Role::Leader(l) = &mut self.role else {
            return false;
        };
        if l.check_append(true).is_err() {
            out.not_enough_replicas += 1;
            return false;
        }
        let base = self.log.len();
        for &value in values {
            if let Err(e) = self.log.append(Entry {
                epoch: l.leader_epoch(),
                value,
            }) {
                out.violations.push(format!("leader append refused: {e}"));
                return false;
            }
        }
        l.on_append(self.log.len());
        let id = l.register_ack(self.log.len());
        self.pending.insert(
            id,
            Pending {
                base,
                values: values.to_vec(),
            },
        );
        self.drain_acks(out);
        true
    }

    fn drain_acks(&mut self, out: &mut Out) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        for (id, result) in l.take_completed() {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            match result {
                Ok(()) => {
                    for (i, v) in p.values.iter().enumerate() {
                        out.acked.push((p.base + i as i64, *v));
                    }
                }
                Err(ReplicaError::NotEnoughReplicasAfterAppend) => out.not_enough_replicas += 1,
                Err(_) => {}
            }
        }
    }

    pub fn on_fetch(&mut self, now_ms: u64, req: FetchRequest, out: &mut Out) {
        let result = match &mut self.role {
            Role::Leader(l) => l.on_fetch(now_ms, &req, self.log.cache()).map(|answer| {
                let records = if answer.diverging.is_some() {
                    Vec::new()
                } else {
                    let from = usize::try_from(answer.read_from).unwrap_or(usize::MAX);
                    self.log
                        .entries()
                        .iter()
                        .skip(from)
                        .take(FETCH_RECORDS_MAX)
                        .copied()
                        .collect()
                };
                FetchData {
                    high_watermark: answer.high_watermark,
                    log_start_offset: 0,
                    diverging: answer.diverging,
                    records,
                }
            }),
            _ if req.leader_epoch < self.known_epoch => Err(ReplicaError::FencedLeaderEpoch),
            _ => Err(ReplicaError::NotLeader),
        };
        out.send.push((
            Addr::Node(req.replica),
            Msg::FetchResp(FetchResponse {
                fetch_id: req.fetch_id,
                result,
            }),
        ));
        self.drain_acks(out);
    }

    pub fn on_fetch_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        resp: FetchResponse<Vec<Entry>>,
        out: &mut Out,
    ) {
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        if f.leader() != from {
            return;
        }
        let local = self.log.local();
        match f.on_fetch_response(now_ms, resp, local, self.log.cache()) {
            FollowerAction::Truncate { offset } => {
                out.truncations += 1;
                out.truncated
                    .push((self.id, offset, self.log.entries().to_vec()));
                self.log.truncate(offset);
            }
            FollowerAction::Append { records } => {
                for e in records {
                    if let Err(err) = self.log.append(e) {
                        out.violations
                            .push(format!("node {} follower append refused: {err}", self.id));
                        return;
                    }
                }
            }
            FollowerAction::Reset { offset } => {
                out.violations.push(format!(
                    "node {} told to start over at {offset}, but no log start moves here",
                    self.id
                ));
            }
            FollowerAction::Ignore | FollowerAction::Backoff(_) => {}
        }
    }

    pub fn on_alter_answer(
        &mut self,
        now_ms: u64,
        ok: bool,
        current: Option<PartitionState>,
        out: &mut Out,
    ) {
        if let Role::Leader(l) = &mut self.role {
            if !ok {
                l.on_alter_rejected();
            }
        }
        if let Some(state) = current {
            self.on_partition_state(now_ms, &state, out);
        }
    }
}
