//! [`GroupConsumer`]: a consumer whose partitions are handed out by its group.
//!
//! ```text
//! let mut config = GroupConsumerConfig::new("127.0.0.1:9092", "billing");
//! config.auto_commit_interval = Some(Duration::from_secs(5)); // off unless asked for
//! let mut consumer = GroupConsumer::new(config).await?;
//! consumer.subscribe(&["orders"]);
//! loop {
//!     for record in consumer.poll(Duration::from_millis(500)).await? { /* ... */ }
//!     consumer.commit_sync().await?;                          // or commit_async()
//! }
//! ```
//!
//! Rebalances happen inside `poll`, as in Kafka's consumers: a background task heartbeats every
//! `heartbeat.interval`; when the coordinator says the group is rebalancing, the next `poll`
//! revokes the current partitions (the listener's `on_partitions_revoked` runs first and may queue
//! commits, which are made before the member rejoins), joins and syncs (this member runs the
//! assignor when it leads), then resumes every newly assigned partition from its committed offset
//! (or `auto.offset.reset` when there is none) and calls `on_partitions_assigned`. The protocol is
//! eager: every partition is revoked at each rebalance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::assignor::{self, Assignor};
use super::member::{GroupConfig, GroupError, Heartbeat, Membership};
use super::protocol::Subscription;
use crate::cluster::Client;
use crate::config::ConsumerConfig;
pub use crate::config::OffsetReset;
use crate::consumer::{Consumer, SeekTo};
use crate::error::{ClientError, ConsumeError};
use crate::message::ConsumerRecord;

/// Settings of a [`GroupConsumer`].
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// Fetching.
    pub consumer: ConsumerConfig,
    /// Membership.
    pub group: GroupConfig,
    /// Assignor names in preference order (`range`, `roundrobin`).
    pub assignors: Vec<String>,
    /// Commit the positions this often from `poll`; `None` (the default) leaves commits to the
    /// application.
    pub auto_commit_interval: Option<Duration>,
    /// Where partitions without a committed offset start, and where a position the log no longer
    /// holds moves (overrides `consumer.auto_offset_reset`).
    pub auto_offset_reset: OffsetReset,
}

impl GroupConsumerConfig {
    /// Defaults for `group_id` on `bootstrap`: range then roundrobin, no auto-commit, latest.
    pub fn new(bootstrap: &str, group_id: &str) -> GroupConsumerConfig {
        GroupConsumerConfig {
            consumer: ConsumerConfig::new(bootstrap),
            group: GroupConfig::new(group_id),
            assignors: vec!["range".to_string(), "roundrobin".to_string()],
            auto_commit_interval: None,
            auto_offset_reset: OffsetReset::Latest,
        }
    }
}

/// What a group consumer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GroupConsumeError {
    /// A group operation failed.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// Fetching failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// A setting is invalid.
    #[error("invalid group consumer setting: {0}")]
    Config(String),
    /// `poll` before `subscribe`.
    #[error("subscribe to at least one topic before polling")]
    NotSubscribed,
    /// The consumer was closed.
    #[error("the group consumer is closed")]
    Closed,
}

impl From<ClientError> for GroupConsumeError {
    fn from(e: ClientError) -> Self {
        GroupConsumeError::Group(GroupError::Client(e))
    }
}

/// One partition, as rebalance callbacks see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// What a rebalance callback may do: read positions and queue commits, made before the
/// rebalance goes on (so a job can commit what it processed before losing a partition).
#[derive(Debug, Default)]
pub struct RebalanceContext {
    positions: BTreeMap<(String, i32), i64>,
    commits: BTreeMap<(String, i32), i64>,
}

impl RebalanceContext {
    /// The consumer's position (next offset to read) of a partition being revoked.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions.get(&(topic.to_string(), partition)).copied()
    }

    /// Queues a commit of `offset` (the next offset to read) for a partition.
    pub fn commit(&mut self, topic: &str, partition: i32, offset: i64) {
        self.commits.insert((topic.to_string(), partition), offset);
    }

    /// Queues a commit of every current position.
    pub fn commit_positions(&mut self) {
        let positions = self.positions.clone();
        self.commits.extend(positions);
    }
}

/// Rebalance callbacks.
pub trait RebalanceListener: Send {
    /// The member is about to lose `partitions` (every one it had: the protocol is eager).
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition], ctx: &mut RebalanceContext) {
        let _ = (partitions, ctx);
    }

    /// The member now owns `partitions`, positioned at their committed offsets.
    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        ctx: &mut RebalanceContext,
    ) {
        let _ = (partitions, ctx);
    }
}

/// A consumer in a group.
pub struct GroupConsumer {
    consumer: Consumer,
    membership: Membership,
    assignors: Vec<Box<dyn Assignor>>,
    config: GroupConsumerConfig,
    topics: Vec<String>,
    assignment: Vec<(String, i32)>,
    rejoin: Arc<AtomicBool>,
    joining: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
    listener: Option<Box<dyn RebalanceListener>>,
    next_auto_commit: Option<Instant>,
    closed: bool,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group.group_id)
            .field("topics", &self.topics)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Connects (one client for fetching, one for the coordinator) and validates the settings.
    pub async fn new(config: GroupConsumerConfig) -> Result<GroupConsumer, GroupConsumeError> {
        if config.group.group_id.is_empty() {
            return Err(GroupConsumeError::Config("the group id is empty".into()));
        }
        if config.group.heartbeat_interval >= config.group.session_timeout {
            return Err(GroupConsumeError::Config(
                "heartbeat.interval must be shorter than session.timeout".into(),
            ));
        }
        let mut assignors = Vec::new();
        for name in &config.assignors {
            match assignor::by_name(name) {
                Some(a) => assignors.push(a),
                None => {
                    return Err(GroupConsumeError::Config(format!(
                        "unknown assignor {name:?} (use range or roundrobin)"
                    )))
                }
            }
        }
        if assignors.is_empty() {
            return Err(GroupConsumeError::Config("no assignor configured".into()));
        }
        let mut consumer_config = config.consumer.clone();
        consumer_config.auto_offset_reset = Some(config.auto_offset_reset);
        let consumer = Consumer::new(consumer_config).await?;
        let coordinator_client = Client::connect(config.consumer.client.clone()).await?;
        let membership = Membership::new(coordinator_client, config.group.clone());
        Ok(GroupConsumer {
            consumer,
            membership,
            assignors,
            next_auto_commit: config.auto_commit_interval.map(|d| Instant::now() + d),
            config,
            topics: Vec::new(),
            assignment: Vec::new(),
            rejoin: Arc::new(AtomicBool::new(true)),
            joining: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
            listener: None,
            closed: false,
        })
    }

    /// Sets the rebalance callbacks.
    pub fn set_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    /// Subscribes to `topics` (replacing any earlier subscription); the next `poll` joins.
    pub fn subscribe(&mut self, topics: &[&str]) {
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        if topics != self.topics {
            self.topics = topics;
            self.rejoin.store(true, Ordering::SeqCst);
        }
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> &[(String, i32)] {
        &self.assignment
    }

    /// The group membership (member id, generation).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The underlying consumer (positions, lag, high watermarks).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Returns the next records, first taking part in a rebalance if one is due.
    pub async fn poll(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>, GroupConsumeError> {
        if self.closed {
            return Err(GroupConsumeError::Closed);
        }
        if self.topics.is_empty() {
            return Err(GroupConsumeError::NotSubscribed);
        }
        if self.rejoin.load(Ordering::SeqCst) {
            self.rebalance().await?;
        }
        self.maybe_auto_commit().await;
        Ok(self.consumer.poll(timeout).await?)
    }

    fn positions(&self) -> BTreeMap<(String, i32), i64> {
        self.assignment
            .iter()
            .filter_map(|(t, p)| self.consumer.position(t, *p).map(|o| ((t.clone(), *p), o)))
            .collect()
    }

    async fn maybe_auto_commit(&mut self) {
        let (Some(interval), Some(due)) = (self.config.auto_commit_interval, self.next_auto_commit)
        else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        self.next_auto_commit = Some(Instant::now() + interval);
        if let Err(e) = self.commit_sync().await {
            tracing::warn!(group = %self.config.group.group_id, error = %e, "auto-commit failed");
        }
    }

    /// Commits the position of every assigned partition and waits for the broker to make it
    /// durable.
    pub async fn commit_sync(&mut self) -> Result<(), GroupConsumeError> {
        let positions = self.positions();
        self.commit_offsets(&positions).await
    }

    /// Commits explicit offsets (next offset to read per partition).
    pub async fn commit_offsets(
        &mut self,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), GroupConsumeError> {
        match self.membership.commit(offsets, false).await {
            Ok(()) => Ok(()),
            Err(e @ GroupError::Rejoin { .. }) => {
                self.rejoin.store(true, Ordering::SeqCst);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Commits the current positions in the background; await the handle to learn the outcome.
    pub fn commit_async(&self) -> JoinHandle<Result<(), GroupError>> {
        let positions = self.positions();
        let membership = self.membership.clone();
        let rejoin = self.rejoin.clone();
        tokio::spawn(async move {
            let result = membership.commit(&positions, false).await;
            if let Err(GroupError::Rejoin { .. }) = &result {
                rejoin.store(true, Ordering::SeqCst);
            }
            result
        })
    }

    /// Commits (if auto-commit is on), leaves the group and stops heartbeating.
    pub async fn close(&mut self) -> Result<(), GroupConsumeError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.config.auto_commit_interval.is_some() && !self.assignment.is_empty() {
            if let Err(e) = self.commit_sync().await {
                tracing::warn!(error = %e, "final auto-commit failed");
            }
        }
        self.membership.leave().await?;
        Ok(())
    }

    fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let membership = self.membership.clone();
        let rejoin = self.rejoin.clone();
        let joining = self.joining.clone();
        let interval = self.config.group.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if joining.load(Ordering::SeqCst) || rejoin.load(Ordering::SeqCst) {
                    continue;
                }
                let generation = membership.generation().generation_id;
                match membership.heartbeat().await {
                    Ok(Heartbeat::Ok) => {}
                    Ok(Heartbeat::Rejoin) => {
                        // Only if no rebalance started meanwhile (it would already handle it).
                        if !joining.load(Ordering::SeqCst)
                            && membership.generation().generation_id <= generation
                        {
                            tracing::debug!(group = %membership.config().group_id, "coordinator asks to rejoin");
                            rejoin.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(group = %membership.config().group_id, error = %e, "heartbeat failed")
                    }
                }
            }
        }));
    }

    async fn rebalance(&mut self) -> Result<(), GroupConsumeError> {
        self.joining.store(true, Ordering::SeqCst);
        let result = self.rebalance_inner().await;
        self.joining.store(false, Ordering::SeqCst);
        result
    }

    async fn rebalance_inner(&mut self) -> Result<(), GroupConsumeError> {
        self.rejoin.store(false, Ordering::SeqCst);
        self.revoke_all().await;
        let subscription = Subscription {
            topics: self.topics.clone(),
            ..Default::default()
        };
        let deadline = Instant::now()
            + self.config.group.rebalance_timeout
            + self.config.group.session_timeout;
        let assignment = loop {
            let client = self.consumer.client().clone();
            let counts = |topics: Vec<String>| partition_counts(client, topics);
            match self
                .membership
                .join_and_sync(&subscription, &self.assignors, counts)
                .await
            {
                Ok(a) => break a,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tracing::debug!(group = %self.config.group.group_id, error = %e, "rejoining");
                    tokio::time::sleep(self.config.consumer.client.retry_backoff).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let assigned: Vec<(String, i32)> = assignment
            .iter()
            .filter(|(t, _)| self.topics.iter().any(|s| s == t))
            .map(|(t, p)| (t.to_string(), p))
            .collect();
        self.consumer.assign(&assigned).await?;
        let committed = if assigned.is_empty() {
            BTreeMap::new()
        } else {
            self.membership.committed(Some(&assigned)).await?
        };
        let reset = SeekTo::from(self.config.auto_offset_reset);
        for (topic, partition) in &assigned {
            let to = match committed.get(&(topic.clone(), *partition)) {
                Some(Some(c)) => SeekTo::Offset(c.offset),
                _ => reset,
            };
            self.consumer.seek(topic, *partition, to).await?;
        }
        self.assignment = assigned;
        tracing::info!(
            group = %self.config.group.group_id,
            partitions = ?self.assignment,
            "partitions assigned"
        );
        self.start_heartbeat();
        if let Some(listener) = self.listener.as_mut() {
            let mut ctx = RebalanceContext {
                positions: BTreeMap::new(),
                commits: BTreeMap::new(),
            };
            let list: Vec<TopicPartition> = self
                .assignment
                .iter()
                .map(|(t, p)| TopicPartition {
                    topic: t.clone(),
                    partition: *p,
                })
                .collect();
            listener.on_partitions_assigned(&list, &mut ctx);
            if !ctx.commits.is_empty() {
                self.commit_offsets(&ctx.commits).await?;
            }
        }
        Ok(())
    }

    /// Eager revocation: callbacks, queued and automatic commits, then drop every partition.
    async fn revoke_all(&mut self) {
        if self.assignment.is_empty() {
            return;
        }
        let positions = self.positions();
        let mut ctx = RebalanceContext {
            positions: positions.clone(),
            commits: BTreeMap::new(),
        };
        if let Some(listener) = self.listener.as_mut() {
            let list: Vec<TopicPartition> = self
                .assignment
                .iter()
                .map(|(t, p)| TopicPartition {
                    topic: t.clone(),
                    partition: *p,
                })
                .collect();
            listener.on_partitions_revoked(&list, &mut ctx);
        }
        let mut commits = ctx.commits;
        if self.config.auto_commit_interval.is_some() {
            for (k, v) in positions {
                commits.entry(k).or_insert(v);
            }
        }
        if !commits.is_empty() && self.membership.generation().generation_id >= 0 {
            // Kafka accepts commits from the current generation while the group prepares the
            // rebalance; after that they are fenced, and the records will be read again.
            if let Err(e) = self.membership.commit(&commits, false).await {
                tracing::warn!(group = %self.config.group.group_id, error = %e, "commit before revocation failed");
            }
        }
        if let Err(e) = self.consumer.assign(&[]).await {
            tracing::debug!(error = %e, "clearing the assignment");
        }
        self.assignment.clear();
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// The partition count of each topic known to the cluster (unknown topics are left out).
async fn partition_counts(
    client: Client,
    topics: Vec<String>,
) -> Result<BTreeMap<String, i32>, GroupError> {
    let mut out = BTreeMap::new();
    for topic in topics {
        match client.topic(&topic).await {
            Ok(info) => {
                out.insert(
                    topic,
                    i32::try_from(info.partitions.len()).unwrap_or(i32::MAX),
                );
            }
            Err(ClientError::UnknownTopic(_)) => {
                tracing::warn!(%topic, "subscribed topic does not exist; nothing to assign for it");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
