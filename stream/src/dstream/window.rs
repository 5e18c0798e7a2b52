//! Windows over batches (DStream windows, processing time): `window`, `count_by_window`,
//! `reduce_by_window`, `reduce_by_key_and_window` with an optional inverse function.
//!
//! A window of `length` sliding every `slide` (both multiples of the batch interval) holds the
//! batches whose time lies in `(t - length, t]`; it produces an RDD only at batch times `t` that are
//! multiples of `slide` (batch times are aligned to the epoch, so this is stable across restarts).
//! With an inverse function, `reduce_by_key_and_window` is incremental: the new window's values are
//! the previous window's plus the batches that entered, "minus" (by the inverse) those that left.

use super::{lock, Batch, DStream};
use crate::error::StreamError;
use crate::partitioner::{HashPartitioner, Partitioner};
use crate::rdd::{union_all, Data, Key, Rdd};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Checks window and slide against the batch interval.
fn check(length_ms: u64, slide_ms: u64, interval_ms: u64) -> Result<(), StreamError> {
    if length_ms == 0 || slide_ms == 0 {
        return Err(StreamError::Config(
            "window length and slide must be > 0".into(),
        ));
    }
    if !length_ms.is_multiple_of(interval_ms) || !slide_ms.is_multiple_of(interval_ms) {
        return Err(StreamError::Config(format!(
            "window length ({length_ms} ms) and slide ({slide_ms} ms) must be multiples of the batch interval ({interval_ms} ms)"
        )));
    }
    Ok(())
}

fn fires(batch: &Batch, slide_ms: u64) -> bool {
    batch.time_ms.rem_euclid(slide_ms as i64) == 0
}

/// The batches kept by a window: (batch time, RDD) in time order.
type Ring<T> = Mutex<VecDeque<(i64, Rdd<T>)>>;

impl<T: Data> DStream<T> {
    /// The union of the batches in the last `length_ms`, every `slide_ms`.
    pub fn window(&self, length_ms: u64, slide_ms: u64) -> Result<DStream<T>, StreamError> {
        check(length_ms, slide_ms, self.graph.batch_interval_ms())?;
        let parent = self.clone();
        let ring: Ring<T> = Mutex::new(VecDeque::new());
        let ctx = self.context().clone();
        Ok(self.graph.add("window", None, move |b| {
            let mut ring = lock(&ring);
            if let Some(r) = parent.current() {
                ring.push_back((b.time_ms, r));
            }
            while ring
                .front()
                .is_some_and(|(t, _)| *t <= b.time_ms - length_ms as i64)
            {
                ring.pop_front();
            }
            if !fires(b, slide_ms) {
                return Ok(None);
            }
            Ok(Some(union_all(
                &ctx,
                ring.iter().map(|(_, r)| r.clone()).collect(),
            )))
        }))
    }

    /// The number of elements in each window, as a one-element RDD.
    pub fn count_by_window(
        &self,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<u64>, StreamError> {
        Ok(self.window(length_ms, slide_ms)?.count())
    }

    /// Each window's elements reduced with `f` (an RDD with one element, or none when empty).
    pub fn reduce_by_window(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<T>, StreamError> {
        let f = Arc::new(f);
        Ok(self.window(length_ms, slide_ms)?.transform(move |r| {
            let v = r.reduce(|a, b| f(a, b))?;
            r.context().parallelize(v.into_iter().collect(), 1)
        }))
    }
}

/// The inverse of a reduce function: `inv(f(a, b), b) == a`.
pub type InverseFn<V> = dyn Fn(V, V) -> V + Send + Sync;

/// Which keys a window keeps (e.g. drops counts that returned to 0).
pub type KeepFn<K, V> = dyn Fn(&(K, V)) -> bool + Send + Sync;

/// State of an incremental window: per-batch reduced RDDs and the previous window's result.
struct Incremental<K, V> {
    batches: VecDeque<(i64, Rdd<(K, V)>)>,
    previous: Option<(i64, Rdd<(K, V)>)>,
}

impl<K: Key, V: Data> DStream<(K, V)> {
    /// Per-key reduction over a sliding window. Without `inverse`, every window reduces all its
    /// batches. With `inverse` (`inv(f(a, b), b) == a`), each window is computed from the previous
    /// one: plus the batches that entered, minus those that left; `keep` then drops keys whose value
    /// returned to neutral (e.g. counts of 0).
    pub fn reduce_by_key_and_window(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        inverse: Option<Arc<InverseFn<V>>>,
        keep: Option<Arc<KeepFn<K, V>>>,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<(K, V)>, StreamError> {
        check(length_ms, slide_ms, self.graph.batch_interval_ms())?;
        let f: Arc<dyn Fn(V, V) -> V + Send + Sync> = Arc::new(f);
        let partitioner: Arc<dyn Partitioner<K>> =
            Arc::new(HashPartitioner::new(self.context().workers()));
        let Some(inv) = inverse else {
            let g = f.clone();
            let windowed = self.window(length_ms, slide_ms)?;
            let p = partitioner.clone();
            return Ok(windowed.transform(move |r| {
                let g = g.clone();
                let out = r.reduce_by_key_with(p.clone(), move |a, b| g(a, b));
                Ok(match &keep {
                    Some(k) => {
                        let k = k.clone();
                        out.filter(move |x| k(x))
                    }
                    None => out,
                })
            }));
        };
        let parent = self.clone();
        let ctx = self.context().clone();
        let state = Mutex::new(Incremental::<K, V> {
            batches: VecDeque::new(),
            previous: None,
        });
        let length = length_ms as i64;
        let slide = slide_ms as i64;
        Ok(self.graph.add("reduce_by_key_and_window", None, move |b| {
            let mut st = lock(&state);
            let t = b.time_ms;
            if let Some(r) = parent.current() {
                let g = f.clone();
                st.batches.push_back((
                    t,
                    r.reduce_by_key_with(partitioner.clone(), move |a, b| g(a, b)),
                ));
            }
            // Keep the batches this window and its "leaving" side need: times after t - length - slide.
            while st
                .batches
                .front()
                .is_some_and(|(bt, _)| *bt <= t - length - slide)
            {
                st.batches.pop_front();
            }
            if !fires(b, slide_ms) {
                return Ok(None);
            }
            let in_range = |lo: i64, hi: i64| -> Rdd<(K, V)> {
                let parts = st
                    .batches
                    .iter()
                    .filter(|(bt, _)| *bt > lo && *bt <= hi)
                    .map(|(_, r)| r.clone())
                    .collect();
                union_all(&ctx, parts)
            };
            let result = match &st.previous {
                // The previous window is exactly one slide back: update it incrementally.
                Some((pt, prev)) if *pt == t - slide => {
                    let entered = in_range(*pt, t);
                    let left = in_range(*pt - length, t - length);
                    let (f2, inv2) = (f.clone(), inv.clone());
                    prev.cogroup_with(&entered, partitioner.clone())
                        .cogroup_with(&left, partitioner.clone())
                        .flat_map_values(move |(first, left)| {
                            let (prev, entered) = first.into_iter().next().unwrap_or_default();
                            let mut acc: Option<V> = None;
                            for v in prev.into_iter().chain(entered) {
                                acc = Some(match acc {
                                    Some(a) => f2(a, v),
                                    None => v,
                                });
                            }
                            for v in left {
                                acc = acc.map(|a| inv2(a, v));
                            }
                            acc
                        })
                }
                _ => {
                    let g = f.clone();
                    in_range(t - length, t)
                        .reduce_by_key_with(partitioner.clone(), move |a, b| g(a, b))
                }
            };
            let result = match &keep {
                Some(k) => {
                    let k = k.clone();
                    result.filter(move |x| k(x))
                }
                None => result,
            };
            let result = result.materialize()?;
            st.previous = Some((t, result.clone()));
            Ok(Some(result))
        }))
    }
}
