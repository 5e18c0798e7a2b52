//! Deterministic simulation of partition replication and leader election.
//!
//! An in-memory cluster of the real cores ([`super::leader`], [`super::follower`],
//! [`super::controller`]) on a simulated network, driven by one seeded RNG and a virtual clock, so
//! a seed replays exactly. Faults: message loss, delay and reordering, network partitions (a node
//! cut off from its peers, the controller on either side), crashes that lose a random part of each
//! log's unfsynced tail, whole-cluster crashes, restarts, and clean (controlled) shutdowns. An
//! `acks=all` producer and readers run throughout; then the network heals, every node restarts and
//! the cluster settles.
//!
//! Checked invariants (a violation names the seed and the simulated time):
//! - every acknowledged record is in the final log at its acknowledged offset;
//! - the committed prefixes (below each leader's high watermark) of all replicas agree, at every
//!   step and at the end;
//! - no offset a reader saw below a high watermark ever changes;
//! - no replica ever truncates a committed record;
//! - after settling, there is a leader and every replica holds the same log.
//!
//! The controller is modelled as one linearizable process (what the Raft metadata log provides)
//! whose messages are lost and delayed like any other; its liveness view resets on failover.

mod log;
mod node;
mod world;

pub use world::run;

/// What a run simulates. [`SimConfig::new`] gives the defaults the CI sweep uses.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the whole run is a function of it.
    pub seed: u64,
    /// Number of brokers (the replication factor).
    pub nodes: i32,
    /// Simulated time with faults and producers.
    pub chaos_ms: u64,
    /// Simulated time after healing, before the final checks.
    pub settle_ms: u64,
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Ordinary message delay bound; a few messages take much longer (reordering).
    pub max_delay_ms: u64,
    /// Whether crashes, partitions and shutdowns happen.
    pub faults: bool,
    /// `min.insync.replicas` of the simulated topic.
    pub min_insync: usize,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// Broker session timeout at the controller.
    pub session_timeout_ms: u64,
    /// A follower re-sends an unanswered fetch after this long.
    pub fetch_timeout_ms: u64,
    /// A scripted fault: at this time the current leader dies (SIGKILL) and stays down until the
    /// end of the fault phase; [`SimReport::failover_ms`] measures its replacement.
    pub kill_leader_at_ms: Option<u64>,
    /// A scripted rolling restart: each broker in turn shuts down cleanly (controlled shutdown),
    /// restarts, and the next goes only once the ISR is full again. Random faults are off.
    pub rolling_restart: bool,
    /// Keep a timeline of faults and controller decisions in [`SimReport::trace`] (replays).
    pub trace: bool,
}

impl SimConfig {
    /// The defaults for `seed`: 3 brokers, 10 s of faults, 10 s to settle, 5% loss.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 3,
            chaos_ms: 10_000,
            settle_ms: 10_000,
            loss: 0.05,
            max_delay_ms: 20,
            faults: true,
            min_insync: 2,
            replica_lag_time_max_ms: 1_000,
            session_timeout_ms: super::limits::BROKER_SESSION_TIMEOUT_MS,
            fetch_timeout_ms: 200,
            kill_leader_at_ms: None,
            rolling_restart: false,
            trace: false,
        }
    }
}

/// What happened in a run that passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Records offered to a leader.
    pub produced: u64,
    /// Records acknowledged (acks=all).
    pub acked: u64,
    /// Produce attempts refused with NOT_ENOUGH_REPLICAS (before or after the append).
    pub not_enough_replicas: u64,
    /// Records read by the readers.
    pub read: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Controlled shutdowns.
    pub shutdowns: u64,
    /// Network partitions started.
    pub partitions: u64,
    /// Leaderships taken up by nodes.
    pub leader_changes: u64,
    /// Truncations of divergent tails.
    pub truncations: u64,
    /// Length of the final log.
    pub final_log_len: u64,
    /// Longest time the partition had no leader acting on the controller's current epoch, in
    /// simulated milliseconds (includes whole-cluster outages).
    pub longest_leaderless_ms: u64,
    /// With [`SimConfig::kill_leader_at_ms`]: milliseconds from the kill until another broker
    /// served as leader in the controller's current epoch.
    pub failover_ms: Option<u64>,
    /// With [`SimConfig::rolling_restart`]: brokers restarted (all of them when it finished).
    pub rolled: u64,
    /// Longest stretch with no serving leader after the first leader took over, in ms.
    pub longest_leaderless_after_start_ms: u64,
    /// With [`SimConfig::trace`]: the timeline, one line per fault or controller decision.
    pub trace: Vec<String>,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replication simulation seed {seed} failed at t={at_ms} ms: {what} (replay: SLUICE_SIM_SEED={seed})")]
pub struct SimViolation {
    /// The seed that reproduces it.
    pub seed: u64,
    /// Simulated time of detection.
    pub at_ms: u64,
    /// What broke.
    pub what: String,
}
