//! Stateful DStreams: `update_state_by_key`, `map_with_state` (with per-key timeouts) and event-time
//! windows with a watermark. Their state is snapshotted after every batch (serde JSON) so that the
//! streaming driver can store it in the broker and restore it on restart.
//!
//! Keyed state is an RDD hash-partitioned like the batch's aggregation, so the per-batch cogroup of
//! state and new data moves only the new data; it is materialized every batch to cut the lineage.

use super::{lock, Batch, DStream, Snapshot};
use crate::error::StreamError;
use crate::event_time::{EventTimeSpec, EventTimeState, Window};
use crate::hash::FxHashMap;
use crate::partitioner::{HashPartitioner, Partitioner, PartitionerIdentity};
use crate::rdd::{Data, Key, Rdd};
use crate::state::{map_with_state_partition, update_state_partition, MappingFn, StateEntry};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex};

type UpdateFn<V, S> = dyn Fn(Vec<V>, Option<S>) -> Option<S> + Send + Sync;
type EventTimeFn<K, V> = dyn Fn(&K, &V) -> i64 + Send + Sync;

/// Keyed state held as hash-partitioned, materialized partitions.
struct KeyedState<K, S> {
    name: &'static str,
    n: usize,
    rdd: Mutex<Rdd<(K, StateEntry<S>)>>,
}

impl<K: Key + Serialize + DeserializeOwned, S: Data + Serialize + DeserializeOwned>
    KeyedState<K, S>
{
    fn new(name: &'static str, ctx: &crate::Context, n: usize) -> KeyedState<K, S> {
        let empty = ctx.from_partitions(vec![Vec::new(); n], Some(PartitionerIdentity::Hash(n)));
        KeyedState {
            name,
            n,
            rdd: Mutex::new(empty),
        }
    }

    fn get(&self) -> Rdd<(K, StateEntry<S>)> {
        lock(&self.rdd).clone()
    }

    fn set(&self, r: Rdd<(K, StateEntry<S>)>) {
        *lock(&self.rdd) = r;
    }

    fn err(&self, reason: impl ToString) -> StreamError {
        StreamError::Snapshot {
            node: self.name.into(),
            reason: reason.to_string(),
        }
    }
}

impl<K: Key + Serialize + DeserializeOwned, S: Data + Serialize + DeserializeOwned> Snapshot
    for KeyedState<K, S>
{
    fn snapshot(&self) -> Result<Vec<u8>, StreamError> {
        let parts = self
            .get()
            .run_partitions(|_, it| Ok(it.collect::<Vec<_>>()))?;
        let flat: Vec<(K, StateEntry<S>)> = parts.into_iter().flatten().collect();
        serde_json::to_vec(&flat).map_err(|e| self.err(e))
    }

    fn restore(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let flat: Vec<(K, StateEntry<S>)> =
            serde_json::from_slice(bytes).map_err(|e| self.err(e))?;
        let p = HashPartitioner::new(self.n);
        let mut parts: Vec<Vec<(K, StateEntry<S>)>> = vec![Vec::new(); self.n];
        for (k, e) in flat {
            parts[Partitioner::<K>::partition(&p, &k)].push((k, e));
        }
        let ctx = self.get().context().clone();
        self.set(ctx.from_partitions(parts, Some(PartitionerIdentity::Hash(self.n))));
        Ok(())
    }
}

/// What `map_with_state` does: the mapping function, an optional idle timeout, the state's
/// partition count (Spark's `StateSpec`).
pub struct StateSpec<K, V, S, U> {
    /// Called per value (and once with `None` when a key times out).
    pub function: Arc<MappingFn<K, V, S, U>>,
    /// Keys idle for this long (batch time) time out; `None`: never.
    pub timeout_ms: Option<i64>,
    /// Partitions of the state; `None`: the number of workers.
    pub partitions: Option<usize>,
}

impl<K, V, S, U> StateSpec<K, V, S, U> {
    /// A spec with no timeout and the default partition count.
    pub fn function(
        f: impl Fn(&K, Option<V>, &mut crate::state::State<S>) -> Option<U> + Send + Sync + 'static,
    ) -> Self {
        StateSpec {
            function: Arc::new(f),
            timeout_ms: None,
            partitions: None,
        }
    }

    /// Sets the idle timeout.
    pub fn timeout(mut self, timeout_ms: i64) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

/// The outputs of `map_with_state`, plus the state after each batch.
pub struct MapWithStateDStream<K, S, U> {
    /// What the mapping function returned, per batch.
    pub mapped: DStream<U>,
    /// Every key's state after each batch (Spark's `stateSnapshots()`).
    pub state_snapshots: DStream<(K, S)>,
}

impl<K, V> DStream<(K, V)>
where
    K: Key + Serialize + DeserializeOwned,
    V: Data,
{
    /// Keeps a state per key across batches: every batch, `f(new_values, previous_state)` is called
    /// for every key with state or new values, and returns the new state (`None` removes the key).
    /// The stream holds every key's state after each batch.
    pub fn update_state_by_key<S: Data + Serialize + DeserializeOwned>(
        &self,
        f: impl Fn(Vec<V>, Option<S>) -> Option<S> + Send + Sync + 'static,
        partitions: Option<usize>,
    ) -> DStream<(K, S)> {
        let n = partitions
            .unwrap_or_else(|| self.context().workers())
            .max(1);
        let state = Arc::new(KeyedState::<K, S>::new(
            "update_state_by_key",
            self.context(),
            n,
        ));
        let parent = self.clone();
        let ctx = self.context().clone();
        let f: Arc<UpdateFn<V, S>> = Arc::new(f);
        let st = state.clone();
        self.graph
            .add("update_state_by_key", Some(state), move |b| {
                let batch = parent.current().unwrap_or_else(|| ctx.empty());
                let p: Arc<dyn Partitioner<K>> = Arc::new(HashPartitioner::new(n));
                let (f, t) = (f.clone(), b.time_ms);
                let next = st
                    .get()
                    .cogroup_with(&batch, p)
                    .with_partition_fn("update_state", true, move |_, _, it| {
                        Box::new(update_state_partition(it, t, f.as_ref()).into_iter())
                    })
                    .materialize()?;
                st.set(next.clone());
                Ok(Some(next.map_values(|e| e.value)))
            })
    }

    /// Maps every record with access to its key's state, with optional per-key timeouts.
    pub fn map_with_state<S, U>(&self, spec: StateSpec<K, V, S, U>) -> MapWithStateDStream<K, S, U>
    where
        S: Data + Serialize + DeserializeOwned,
        U: Data,
    {
        let n = spec
            .partitions
            .unwrap_or_else(|| self.context().workers())
            .max(1);
        let state = Arc::new(KeyedState::<K, S>::new("map_with_state", self.context(), n));
        let parent = self.clone();
        let ctx = self.context().clone();
        let st = state.clone();
        let st2 = state.clone();
        let (f, timeout) = (spec.function, spec.timeout_ms);
        let mapped = self.graph.add("map_with_state", Some(state), move |b| {
            let batch = parent.current().unwrap_or_else(|| ctx.empty());
            let p: Arc<dyn Partitioner<K>> = Arc::new(HashPartitioner::new(n));
            let t = b.time_ms;
            let f = f.clone();
            let results = st
                .get()
                .cogroup_with(&batch, p)
                .run_partitions(move |_, it| {
                    Ok(map_with_state_partition(it, t, timeout, f.as_ref()))
                })?;
            let (states, outputs): (Vec<_>, Vec<_>) = results.into_iter().unzip();
            st.set(ctx.from_partitions(states, Some(PartitionerIdentity::Hash(n))));
            Ok(Some(ctx.from_partitions(outputs, None)))
        });
        let snapshots = self.graph.add("state_snapshots", None, move |_| {
            Ok(Some(st2.get().map_values(|e| e.value)))
        });
        MapWithStateDStream {
            mapped,
            state_snapshots: snapshots,
        }
    }
}

/// Event-time aggregation state as a snapshot-able node.
struct EventTimeNode<K: Ord, V> {
    state: Mutex<EventTimeState<K, V>>,
}

impl<K, V> Snapshot for EventTimeNode<K, V>
where
    K: Ord + Clone + Send + Sync + Serialize + DeserializeOwned,
    V: Clone + Send + Sync + Serialize + DeserializeOwned,
{
    fn snapshot(&self) -> Result<Vec<u8>, StreamError> {
        serde_json::to_vec(&*lock(&self.state)).map_err(|e| StreamError::Snapshot {
            node: "event_time_window".into(),
            reason: e.to_string(),
        })
    }
    fn restore(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let s: EventTimeState<K, V> =
            serde_json::from_slice(bytes).map_err(|e| StreamError::Snapshot {
                node: "event_time_window".into(),
                reason: e.to_string(),
            })?;
        *lock(&self.state) = s;
        Ok(())
    }
    fn late_dropped(&self) -> u64 {
        lock(&self.state).late_dropped()
    }
}

/// One partition's contribution to an event-time batch.
type Partial<K, V> = (i64, u64, Vec<((Window, K), V)>);

impl<K, V> DStream<(K, V)>
where
    K: Key + Ord + Serialize + DeserializeOwned,
    V: Data + Serialize + DeserializeOwned,
{
    /// Reduces values per key and event-time window (tumbling or sliding), emitting each
    /// `(window, key, value)` once, when the watermark (max event time - delay) passes the window's
    /// end; a final batch of a graceful stop closes every open window. Records whose windows are all
    /// closed are dropped and counted (see [`crate::dstream::StreamGraph::late_dropped`]).
    pub fn reduce_by_key_and_event_window(
        &self,
        event_time_ms: impl Fn(&K, &V) -> i64 + Send + Sync + 'static,
        spec: EventTimeSpec,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Result<DStream<(Window, K, V)>, StreamError> {
        let initial = EventTimeState::new(spec).map_err(|e| StreamError::Config(e.to_string()))?;
        let node = Arc::new(EventTimeNode {
            state: Mutex::new(initial),
        });
        let parent = self.clone();
        let ctx = self.context().clone();
        let f: Arc<dyn Fn(V, V) -> V + Send + Sync> = Arc::new(f);
        let time: Arc<EventTimeFn<K, V>> = Arc::new(event_time_ms);
        let n = node.clone();
        Ok(self
            .graph
            .add("event_time_window", Some(node), move |b: &Batch| {
                let watermark = lock(&n.state).watermark_ms();
                let mut partials: Vec<Partial<K, V>> = Vec::new();
                if let Some(r) = parent.current() {
                    let (f, time) = (f.clone(), time.clone());
                    partials = r.run_partitions(move |_, it| {
                        // Map-side combine per (window, key); `Option` lets the fold take the
                        // value out of its slot without cloning it or hashing the key twice.
                        let mut local: FxHashMap<(Window, K), Option<V>> = FxHashMap::default();
                        let (mut max_ts, mut late) = (i64::MIN, 0u64);
                        for (k, v) in it {
                            let ts = time(&k, &v);
                            max_ts = max_ts.max(ts);
                            let mut any = false;
                            for w in spec.windows_of(ts).filter(|w| w.end_ms > watermark) {
                                any = true;
                                let slot = local.entry((w, k.clone())).or_insert(None);
                                *slot = Some(match slot.take() {
                                    Some(acc) => f(acc, v.clone()),
                                    None => v.clone(),
                                });
                            }
                            late += u64::from(!any);
                        }
                        let entries = local.into_iter().filter_map(|(wk, v)| Some((wk, v?)));
                        Ok((max_ts, late, entries.collect()))
                    })?;
                }
                let mut st = lock(&n.state);
                for (max_ts, late, entries) in partials {
                    if max_ts != i64::MIN {
                        st.observe(max_ts);
                    }
                    st.count_late(late);
                    for ((w, k), v) in entries {
                        let g = f.clone();
                        st.merge(w, k, v, move |a, b| g(a, b));
                    }
                }
                let mut out = st.end_batch();
                if b.is_final {
                    out.extend(st.close_all());
                }
                Ok(Some(ctx.parallelize(out, ctx.workers())?))
            }))
    }
}
