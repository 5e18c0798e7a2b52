//! Partition assignors run by the group leader: `range` and `roundrobin`, with Kafka's exact
//! placement so a Sluice leader assigns as a Java or librdkafka leader would.
//!
//! - **range** (per topic): the members subscribed to the topic, sorted by member id, each take a
//!   contiguous run; the first `n % m` members take one extra partition.
//! - **roundrobin**: every partition of every subscribed topic, sorted by (topic, partition), dealt
//!   in turn to the members (sorted by member id), skipping members not subscribed to that topic.

use std::collections::BTreeMap;

use super::protocol::{Assignment, Subscription};

/// A partition assignor.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name sent in JoinGroup (`range`, `roundrobin`).
    fn name(&self) -> &'static str;

    /// Assigns the partitions of the subscribed topics (`partitions` gives each topic's count;
    /// topics missing from it are skipped) to the members. Every member gets an entry.
    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment>;
}

/// Kafka's `range` assignor (the Java consumer's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

/// Kafka's `roundrobin` assignor.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

fn empty_for(members: &BTreeMap<String, Subscription>) -> BTreeMap<String, Assignment> {
    members
        .keys()
        .map(|m| (m.clone(), Assignment::default()))
        .collect()
}

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        let mut out = empty_for(members);
        for (topic, &n) in partitions {
            let subscribed: Vec<&String> = members
                .iter()
                .filter(|(_, s)| s.topics.iter().any(|t| t == topic))
                .map(|(m, _)| m)
                .collect();
            if subscribed.is_empty() || n <= 0 {
                continue;
            }
            let m = subscribed.len() as i32;
            let (per, extra) = (n / m, n % m);
            for (i, member) in subscribed.iter().enumerate() {
                let i = i as i32;
                let start = i * per + i.min(extra);
                let len = per + i32::from(i < extra);
                if len == 0 {
                    continue;
                }
                if let Some(a) = out.get_mut(*member) {
                    a.partitions
                        .entry(topic.clone())
                        .or_default()
                        .extend(start..start + len);
                }
            }
        }
        out
    }
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        let mut out = empty_for(members);
        let ids: Vec<&String> = members.keys().collect();
        if ids.is_empty() {
            return out;
        }
        let mut next = 0usize;
        for (topic, &n) in partitions {
            if !members
                .values()
                .any(|s| s.topics.iter().any(|t| t == topic))
            {
                continue;
            }
            for p in 0..n.max(0) {
                // Find the next member (cyclically) subscribed to this topic.
                for step in 0..ids.len() {
                    let id = ids[(next + step) % ids.len()];
                    if members[id].topics.iter().any(|t| t == topic) {
                        if let Some(a) = out.get_mut(id) {
                            a.partitions.entry(topic.clone()).or_default().push(p);
                        }
                        next = (next + step + 1) % ids.len();
                        break;
                    }
                }
            }
        }
        out
    }
}

/// The assignor named `name`, if Sluice has it.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(specs: &[(&str, &[&str])]) -> BTreeMap<String, Subscription> {
        specs
            .iter()
            .map(|(m, topics)| {
                (
                    m.to_string(),
                    Subscription {
                        topics: topics.iter().map(|t| t.to_string()).collect(),
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    fn flat(a: &BTreeMap<String, Assignment>) -> Vec<(String, Vec<(String, i32)>)> {
        a.iter()
            .map(|(m, asg)| {
                (
                    m.clone(),
                    asg.iter().map(|(t, p)| (t.to_string(), p)).collect(),
                )
            })
            .collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn range_table() {
        let parts = BTreeMap::from([("t".to_string(), 4), ("u".to_string(), 3)]);
        let got = RangeAssignor.assign(&members(&[("a", &["t", "u"]), ("b", &["t", "u"])]), &parts);
        assert_eq!(
            flat(&got),
            vec![
                ("a".into(), tps(&[("t", 0), ("t", 1), ("u", 0), ("u", 1)])),
                ("b".into(), tps(&[("t", 2), ("t", 3), ("u", 2)])),
            ]
        );
        // More members than partitions: the last ones get nothing but still get an entry.
        let got = RangeAssignor.assign(
            &members(&[("a", &["u"]), ("b", &["u"]), ("c", &["u"]), ("d", &["u"])]),
            &parts,
        );
        assert_eq!(got["d"].len(), 0);
        assert_eq!(got.values().map(Assignment::len).sum::<usize>(), 3);
    }

    #[test]
    fn roundrobin_table() {
        let parts = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 2)]);
        let got =
            RoundRobinAssignor.assign(&members(&[("a", &["t", "u"]), ("b", &["t", "u"])]), &parts);
        assert_eq!(
            flat(&got),
            vec![
                ("a".into(), tps(&[("t", 0), ("t", 2), ("u", 1)])),
                ("b".into(), tps(&[("t", 1), ("u", 0)])),
            ]
        );
        // Unsubscribed members are skipped.
        let got = RoundRobinAssignor.assign(&members(&[("a", &["t"]), ("b", &["u"])]), &parts);
        assert_eq!(
            flat(&got),
            vec![
                ("a".into(), tps(&[("t", 0), ("t", 1), ("t", 2)])),
                ("b".into(), tps(&[("u", 0), ("u", 1)]))
            ]
        );
    }

    #[test]
    fn every_partition_assigned_exactly_once() {
        for n_members in 1..6 {
            for n_parts in 0..9 {
                let specs: Vec<(String, Vec<&str>)> = (0..n_members)
                    .map(|i| (format!("m{i}"), vec!["t"]))
                    .collect();
                let ms: BTreeMap<String, Subscription> = specs
                    .iter()
                    .map(|(m, t)| {
                        (
                            m.clone(),
                            Subscription {
                                topics: t.iter().map(|s| s.to_string()).collect(),
                                ..Default::default()
                            },
                        )
                    })
                    .collect();
                let parts = BTreeMap::from([("t".to_string(), n_parts)]);
                for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor] {
                    let got = assignor.assign(&ms, &parts);
                    let mut all: Vec<i32> = got
                        .values()
                        .flat_map(|a| a.iter().map(|(_, p)| p))
                        .collect();
                    all.sort_unstable();
                    assert_eq!(
                        all,
                        (0..n_parts).collect::<Vec<_>>(),
                        "{} {n_members}x{n_parts}",
                        assignor.name()
                    );
                    let sizes: Vec<usize> = got.values().map(Assignment::len).collect();
                    let (min, max) = (
                        sizes.iter().min().copied().unwrap_or(0),
                        sizes.iter().max().copied().unwrap_or(0),
                    );
                    assert!(max - min <= 1, "balanced: {sizes:?}");
                }
            }
        }
    }
}
