//! The client's view of the cluster: brokers, topics, partitions and their leaders.
//!
//! A synchronous cache filled from Metadata responses and consulted by the producer, the consumer
//! and the admin client. Entries are invalidated when a broker says NOT_LEADER_OR_FOLLOWER or
//! UNKNOWN_TOPIC_OR_PARTITION, or a connection is lost, so the next lookup refreshes them: that is
//! what makes a leader change (replication failover) transparent to callers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Its node id.
    pub node_id: i32,
    /// `host:port` to connect to.
    pub addr: String,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, or -1 when there is none right now.
    pub leader: i32,
    /// The leader epoch, or -1 when unknown.
    pub leader_epoch: i32,
    /// Every replica's node id.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// A partition-level error code from the broker (0 = none).
    pub error_code: i16,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Its partitions, indexed by partition number.
    pub partitions: Vec<PartitionInfo>,
    /// Whether it is internal (`__consumer_offsets`, ...).
    pub internal: bool,
}

/// What the cache knows about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    /// Known, with its partitions.
    Known(Arc<TopicInfo>),
    /// The broker answered with an error code for it (UNKNOWN_TOPIC_OR_PARTITION, ...).
    Error(i16),
}

#[derive(Debug, Clone)]
struct Entry {
    state: TopicState,
    fetched: Instant,
    stale: bool,
}

/// The metadata cache.
#[derive(Debug, Default)]
pub struct MetadataCache {
    brokers: HashMap<i32, BrokerInfo>,
    topics: HashMap<String, Entry>,
    controller: Option<i32>,
}

impl MetadataCache {
    /// Records a Metadata response received at `now`: the broker list replaces the old one; each
    /// topic listed replaces its entry.
    pub fn update(
        &mut self,
        brokers: Vec<BrokerInfo>,
        controller: Option<i32>,
        topics: Vec<(String, TopicState)>,
        now: Instant,
    ) {
        if !brokers.is_empty() {
            self.brokers = brokers.into_iter().map(|b| (b.node_id, b)).collect();
        }
        if controller.is_some() {
            self.controller = controller;
        }
        for (name, state) in topics {
            self.topics.insert(
                name,
                Entry {
                    state,
                    fetched: now,
                    stale: false,
                },
            );
        }
    }

    /// The topic's state if known, fresh (younger than `max_age`) and not invalidated.
    pub fn topic(&self, name: &str, now: Instant, max_age: Duration) -> Option<&TopicState> {
        let e = self.topics.get(name)?;
        if e.stale || now.saturating_duration_since(e.fetched) > max_age {
            return None;
        }
        Some(&e.state)
    }

    /// The topic's last known state, however old.
    pub fn topic_any_age(&self, name: &str) -> Option<&TopicState> {
        self.topics.get(name).map(|e| &e.state)
    }

    /// Marks a topic for refresh (a leader moved or the topic changed).
    pub fn invalidate(&mut self, name: &str) {
        if let Some(e) = self.topics.get_mut(name) {
            e.stale = true;
        }
    }

    /// Marks every topic whose partitions `node_id` leads for refresh (its connection failed).
    pub fn invalidate_node(&mut self, node_id: i32) {
        for e in self.topics.values_mut() {
            if let TopicState::Known(t) = &e.state {
                if t.partitions.iter().any(|p| p.leader == node_id) {
                    e.stale = true;
                }
            }
        }
    }

    /// Forgets a topic (it was deleted).
    pub fn remove(&mut self, name: &str) {
        self.topics.remove(name);
    }

    /// The address of `node_id`.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&node_id)
    }

    /// Every known broker, by node id.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        let mut v: Vec<BrokerInfo> = self.brokers.values().cloned().collect();
        v.sort_by_key(|b| b.node_id);
        v
    }

    /// The controller's node id, if the broker told us.
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(leaders: &[i32]) -> TopicState {
        TopicState::Known(Arc::new(TopicInfo {
            name: "t".into(),
            internal: false,
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(i, &l)| PartitionInfo {
                    partition: i as i32,
                    leader: l,
                    leader_epoch: 0,
                    replicas: vec![l],
                    isr: vec![l],
                    error_code: 0,
                })
                .collect(),
        }))
    }

    #[test]
    fn entries_age_out_and_can_be_invalidated() {
        let t0 = Instant::now();
        let age = Duration::from_secs(10);
        let mut c = MetadataCache::default();
        c.update(
            vec![BrokerInfo {
                node_id: 1,
                addr: "h:1".into(),
            }],
            Some(1),
            vec![
                ("t".into(), topic(&[1, 2])),
                ("u".into(), TopicState::Error(3)),
            ],
            t0,
        );
        assert!(c.topic("t", t0 + Duration::from_secs(5), age).is_some());
        assert!(c.topic("t", t0 + Duration::from_secs(11), age).is_none());
        assert_eq!(c.topic("u", t0, age), Some(&TopicState::Error(3)));
        assert_eq!(c.broker(1).unwrap().addr, "h:1");
        assert_eq!(c.controller(), Some(1));
        c.invalidate("t");
        assert!(c.topic("t", t0, age).is_none());
        assert!(c.topic_any_age("t").is_some());
        c.update(vec![], None, vec![("t".into(), topic(&[1, 2]))], t0);
        assert!(c.topic("t", t0, age).is_some());
        assert_eq!(
            c.brokers().len(),
            1,
            "an empty broker list keeps the old one"
        );
        c.invalidate_node(2);
        assert!(c.topic("t", t0, age).is_none());
        c.remove("t");
        assert!(c.topic_any_age("t").is_none());
    }
}
