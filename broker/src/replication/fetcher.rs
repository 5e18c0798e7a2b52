//! Follower fetches over the peer protocol: the leader side ([`ReplicaHandler`], which also serves
//! the metadata Raft's RPCs) and the follower side ([`run_follower`], one task per followed
//! partition).
//!
//! A fetch that finds nothing new is held by the leader until the log grows or
//! [`REPLICA_FETCH_WAIT_MS`] passes. A follower waits for its own fsync after appending before it
//! fetches again, so that the next fetch reports the new durable offset and the leader can move
//! the high watermark (and complete acks=all) at once.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use super::limits::{PEER_FETCH_BYTES_MAX, REPLICA_FETCH_BACKOFF_MS, REPLICA_FETCH_WAIT_MS};
use super::message::{FetchData, FetchRequest, FetchResponse, ReplicaError, TopicPartition};
use super::peer::transport::{BoxFuture, PeerClient, PeerHandler, RaftHandler};
use super::peer::{FetchHeader, PeerError, PeerRequest, PeerResponse};
use super::replica::{FollowerOutcome, FollowerReplica, LeaderReplica};

/// Milliseconds since the Unix epoch: the `now` the cores get from the async drivers.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The partitions this broker leads, by partition, with the id of the topic incarnation led.
#[derive(Default)]
pub struct Leaders {
    map: RwLock<BTreeMap<TopicPartition, (u64, Arc<LeaderReplica>)>>,
}

impl Leaders {
    /// No leaderships.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts serving `leader` for `tp` of topic incarnation `topic_id` (replacing any earlier
    /// leadership, which is returned).
    pub fn insert(
        &self,
        tp: TopicPartition,
        topic_id: u64,
        leader: Arc<LeaderReplica>,
    ) -> Option<Arc<LeaderReplica>> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tp, (topic_id, leader))
            .map(|(_, l)| l)
    }

    /// Stops serving `tp`.
    pub fn remove(&self, tp: &TopicPartition) -> Option<Arc<LeaderReplica>> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp)
            .map(|(_, l)| l)
    }

    /// The leadership of `tp`, if any.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<LeaderReplica>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tp)
            .map(|(_, l)| l.clone())
    }

    /// The leadership of `tp` for a follower of incarnation `topic_id`: NOT_LEADER_OR_FOLLOWER
    /// if there is none, INCONSISTENT_TOPIC_ID if it is of another incarnation.
    pub fn for_follower(
        &self,
        tp: &TopicPartition,
        topic_id: u64,
    ) -> Result<Arc<LeaderReplica>, ReplicaError> {
        match self.map.read().unwrap_or_else(|p| p.into_inner()).get(tp) {
            None => Err(ReplicaError::NotLeader),
            // 0: a follower of an earlier version, which does not name the topic id.
            Some((id, _)) if topic_id != 0 && *id != topic_id => {
                Err(ReplicaError::InconsistentTopicId)
            }
            Some((_, l)) => Ok(l.clone()),
        }
    }
}

/// Serves follower fetches from this broker's leaderships and, if given, the metadata Raft.
pub struct ReplicaHandler {
    leaders: Arc<Leaders>,
    raft: Option<RaftHandler>,
}

impl ReplicaHandler {
    /// Serves `leaders` and optionally the metadata Raft.
    pub fn new(leaders: Arc<Leaders>, raft: Option<RaftHandler>) -> Self {
        Self { leaders, raft }
    }

    async fn fetch(
        &self,
        tp: TopicPartition,
        topic_id: u64,
        req: FetchRequest,
        max_bytes: u32,
    ) -> (PeerResponse, Vec<Bytes>) {
        let refuse = |e: ReplicaError| {
            (
                PeerResponse::Fetch {
                    fetch_id: req.fetch_id,
                    result: Err(e),
                },
                Vec::new(),
            )
        };
        let leader = match self.leaders.for_follower(&tp, topic_id) {
            Ok(leader) => leader,
            Err(e) => return refuse(e),
        };
        let max_bytes = max_bytes.min(PEER_FETCH_BYTES_MAX) as usize;
        let mut grown = leader.partition().subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(REPLICA_FETCH_WAIT_MS);
        loop {
            let resp = match leader.fetch(now_ms(), &req, max_bytes) {
                Ok(r) => r,
                Err(e) => {
                    return (PeerResponse::Unavailable(format!("{tp}: {e}")), Vec::new());
                }
            };
            // A follower below the log start is answered at once: it must start over there.
            let idle = matches!(&resp.result, Ok(d) if d.records.is_empty()
                && d.diverging.is_none()
                && req.fetch_offset >= d.log_start_offset)
                && req.durable_offset >= req.fetch_offset;
            if !idle || tokio::time::Instant::now() >= deadline {
                return match resp.result {
                    Ok(d) => (
                        PeerResponse::Fetch {
                            fetch_id: req.fetch_id,
                            result: Ok(FetchHeader {
                                high_watermark: d.high_watermark,
                                log_start_offset: d.log_start_offset,
                                diverging: d.diverging,
                            }),
                        },
                        d.records,
                    ),
                    Err(e) => refuse(e),
                };
            }
            // Hold the fetch until the log grows (or the wait ends), as Kafka does.
            if tokio::time::timeout_at(deadline, grown.changed())
                .await
                .is_err()
            {
                continue;
            }
        }
    }
}

impl PeerHandler for ReplicaHandler {
    fn handle(&self, req: PeerRequest) -> BoxFuture<'_, (PeerResponse, Vec<Bytes>)> {
        Box::pin(async move {
            let req = match &self.raft {
                Some(raft) => match raft.handle_raft(req).await {
                    Ok(resp) => return (resp, Vec::new()),
                    Err(req) => req,
                },
                None => req,
            };
            match req {
                PeerRequest::Fetch {
                    tp,
                    topic_id,
                    req,
                    max_bytes,
                } => self.fetch(tp, topic_id, req, max_bytes).await,
                _ => (
                    PeerResponse::Unavailable("this broker serves no metadata log".into()),
                    Vec::new(),
                ),
            }
        })
    }
}

/// Sends one fetch to the leader and turns the answer into a [`FetchResponse`].
pub async fn fetch_once(
    client: &PeerClient,
    tp: &TopicPartition,
    topic_id: u64,
    req: FetchRequest,
    max_bytes: u32,
) -> Result<FetchResponse<Vec<Bytes>>, PeerError> {
    let (resp, tail) = client
        .call(PeerRequest::Fetch {
            tp: tp.clone(),
            topic_id,
            req,
            max_bytes,
        })
        .await?;
    match resp {
        PeerResponse::Fetch { fetch_id, result } => Ok(FetchResponse {
            fetch_id,
            result: result.map(|h| FetchData {
                high_watermark: h.high_watermark,
                log_start_offset: h.log_start_offset,
                diverging: h.diverging,
                records: if tail.is_empty() {
                    Vec::new()
                } else {
                    vec![tail]
                },
            }),
        }),
        other => Err(PeerError::Unexpected(format!("{other:?}"))),
    }
}

/// Follows one partition until `stop` turns true: fetch, apply, fsync, repeat. Errors are logged
/// and retried after a backoff (the leader may be restarting or changing).
pub async fn run_follower(
    follower: Arc<FollowerReplica>,
    client: Arc<PeerClient>,
    tp: TopicPartition,
    topic_id: u64,
    mut stop: watch::Receiver<bool>,
) {
    let backoff = Duration::from_millis(REPLICA_FETCH_BACKOFF_MS);
    // Failures in a row: the first is a warning, the rest (every backoff while a leader is down)
    // are debug lines, and the recovery is noted once.
    let mut failures: u32 = 0;
    while !*stop.borrow() {
        let step = async {
            let Some(req) = follower.poll_fetch(now_ms()).map_err(|e| e.to_string())? else {
                return Ok::<bool, String>(false);
            };
            let resp = fetch_once(&client, &tp, topic_id, req, PEER_FETCH_BYTES_MAX)
                .await
                .map_err(|e| e.to_string())?;
            let refused = resp.result.is_err();
            if let Err(e) = &resp.result {
                tracing::debug!(%tp, error = %e, "fetch refused by the leader");
            }
            match follower
                .on_fetch_response(now_ms(), resp)
                .await
                .map_err(|e| e.to_string())?
            {
                FollowerOutcome::Appended(end) => {
                    follower
                        .partition()
                        .wait_durable(end)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(true)
                }
                FollowerOutcome::Truncated(_) | FollowerOutcome::Reset(_) => Ok(true),
                FollowerOutcome::Nothing => Ok(!refused),
            }
        };
        let progressed = tokio::select! {
            r = step => r,
            _ = stop.changed() => return,
        };
        if progressed.is_ok() && failures > 0 {
            tracing::info!(%tp, failures, "follower fetching again");
            failures = 0;
        }
        match progressed {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(%tp, error = %e, "follower fetch failed; retrying");
                } else {
                    tracing::debug!(%tp, error = %e, failures, "follower fetch failed; retrying");
                }
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}
