//! Keyed state across batches: the per-partition cores of `update_state_by_key` and
//! `map_with_state`, as pure functions of (previous state, the batch's values, the batch time).
//!
//! The DStream layer cogroups the previous state RDD with the batch (both hash-partitioned the same
//! way, so the state never moves) and applies these functions per partition; each key's state
//! carries the time it was last updated so that `map_with_state` can time out idle keys: a key with
//! no data for `timeout_ms` is called once more with no value and `State::is_timing_out()` true,
//! then removed (Spark's `StateSpec.timeout`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A key's stored state and when it was last updated (batch time, epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry<S> {
    /// The state value.
    pub value: S,
    /// Batch time of the last update.
    pub last_update_ms: i64,
}

/// Misuse of [`State`] inside a mapping function.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum StateError {
    /// `update` was called on a key that is timing out (its state is removed after this call).
    #[error("cannot update the state of a key that is timing out")]
    UpdateWhileTimingOut,
    /// `update` or `remove` was called after `remove`.
    #[error("the state was already removed in this call")]
    AlreadyRemoved,
}

/// The state handle given to a `map_with_state` function (Spark's `State[S]`).
#[derive(Debug)]
pub struct State<S> {
    value: Option<S>,
    timing_out: bool,
    removed: bool,
}

impl<S> State<S> {
    fn new(value: Option<S>, timing_out: bool) -> State<S> {
        State {
            value,
            timing_out,
            removed: false,
        }
    }

    /// Whether the key has state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The state, if any.
    pub fn get(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// Replaces the state.
    pub fn update(&mut self, value: S) -> Result<(), StateError> {
        if self.timing_out {
            return Err(StateError::UpdateWhileTimingOut);
        }
        if self.removed {
            return Err(StateError::AlreadyRemoved);
        }
        self.value = Some(value);
        Ok(())
    }

    /// Removes the state.
    pub fn remove(&mut self) -> Result<(), StateError> {
        if self.removed {
            return Err(StateError::AlreadyRemoved);
        }
        self.value = None;
        self.removed = true;
        Ok(())
    }

    /// Whether this call is the key's timeout call (no value; the state goes after it).
    pub fn is_timing_out(&self) -> bool {
        self.timing_out
    }
}

/// One batch of `update_state_by_key` over one partition's cogrouped (state, values) items: `f`
/// is called for every key with state or new values; `None` removes the key.
pub fn update_state_partition<K, V, S>(
    items: impl Iterator<Item = (K, (Vec<StateEntry<S>>, Vec<V>))>,
    batch_time_ms: i64,
    f: &dyn Fn(Vec<V>, Option<S>) -> Option<S>,
) -> Vec<(K, StateEntry<S>)> {
    let mut out = Vec::new();
    for (k, (mut old, values)) in items {
        let previous = old.pop();
        let had_values = !values.is_empty();
        let last_update_ms = match (&previous, had_values) {
            (Some(p), false) => p.last_update_ms,
            _ => batch_time_ms,
        };
        if let Some(value) = f(values, previous.map(|p| p.value)) {
            out.push((
                k,
                StateEntry {
                    value,
                    last_update_ms,
                },
            ));
        }
    }
    out
}

/// The mapping function of `map_with_state`: key, value (`None` on timeout), state handle.
pub type MappingFn<K, V, S, U> = dyn Fn(&K, Option<V>, &mut State<S>) -> Option<U> + Send + Sync;

/// One batch of `map_with_state` over one partition's cogrouped (state, values) items. Returns the
/// new state and the mapped outputs. `f` is called once per value, in order; keys without values
/// whose state is older than `timeout_ms` get one call with `None` and are then dropped.
pub fn map_with_state_partition<K, V, S, U>(
    items: impl Iterator<Item = (K, (Vec<StateEntry<S>>, Vec<V>))>,
    batch_time_ms: i64,
    timeout_ms: Option<i64>,
    f: &MappingFn<K, V, S, U>,
) -> (Vec<(K, StateEntry<S>)>, Vec<U>) {
    let mut states = Vec::new();
    let mut outputs = Vec::new();
    for (k, (mut old, values)) in items {
        let previous = old.pop();
        if values.is_empty() {
            let Some(prev) = previous else { continue };
            let idle = timeout_ms.is_some_and(|t| batch_time_ms - prev.last_update_ms >= t);
            if idle {
                let mut state = State::new(Some(prev.value), true);
                outputs.extend(f(&k, None, &mut state));
            } else {
                states.push((k, prev));
            }
            continue;
        }
        let mut value = previous.map(|p| p.value);
        for v in values {
            let mut state = State::new(value.take(), false);
            outputs.extend(f(&k, Some(v), &mut state));
            value = state.value;
        }
        // Data counts as activity for the timeout even if the function left the state as is.
        if let Some(value) = value {
            states.push((
                k,
                StateEntry {
                    value,
                    last_update_ms: batch_time_ms,
                },
            ));
        }
    }
    (states, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Items = Vec<(&'static str, (Vec<StateEntry<u64>>, Vec<u64>))>;

    fn counting(
        k: &&'static str,
        v: Option<u64>,
        s: &mut State<u64>,
    ) -> Option<(String, u64, bool)> {
        match v {
            Some(v) => {
                let n = s.get().copied().unwrap_or(0) + v;
                s.update(n).ok()?;
                Some((k.to_string(), n, false))
            }
            None => {
                assert!(s.update(1).is_err());
                Some((k.to_string(), *s.get()?, true))
            }
        }
    }

    fn entry(value: u64, last_update_ms: i64) -> StateEntry<u64> {
        StateEntry {
            value,
            last_update_ms,
        }
    }

    #[test]
    fn update_state_by_key_calls_every_key_and_removes_on_none() {
        let items: Items = vec![
            ("a", (vec![entry(5, 100)], vec![1, 2])),
            ("b", (vec![entry(7, 100)], vec![])),
            ("c", (vec![], vec![3])),
            ("d", (vec![entry(1, 100)], vec![])),
        ];
        let f = |vs: Vec<u64>, s: Option<u64>| {
            let total = s.unwrap_or(0) + vs.iter().sum::<u64>();
            (total != 1).then_some(total)
        };
        let out = update_state_partition(items.into_iter(), 200, &f);
        assert_eq!(
            out,
            vec![
                ("a", entry(8, 200)),
                ("b", entry(7, 100)),
                ("c", entry(3, 200))
            ]
        );
    }

    #[test]
    fn map_with_state_times_out_idle_keys_once() {
        let f: &MappingFn<&'static str, u64, u64, (String, u64, bool)> = &counting;
        // Batch at t=1000: "a" gets data, "b" idle since 500 (not yet 1000 ms), "c" idle since 0.
        let items: Items = vec![
            ("a", (vec![entry(1, 0)], vec![2, 3])),
            ("b", (vec![entry(4, 500)], vec![])),
            ("c", (vec![entry(9, 0)], vec![])),
        ];
        let (states, out) = map_with_state_partition(items.into_iter(), 1000, Some(1000), f);
        assert_eq!(states, vec![("a", entry(6, 1000)), ("b", entry(4, 500))]);
        assert_eq!(
            out,
            vec![
                ("a".to_string(), 3, false),
                ("a".to_string(), 6, false),
                ("c".to_string(), 9, true)
            ]
        );
        // Without a timeout nothing expires.
        let items: Items = vec![("c", (vec![entry(9, 0)], vec![]))];
        let (states, out) = map_with_state_partition(items.into_iter(), 1_000_000, None, f);
        assert_eq!((states.len(), out.len()), (1, 0));
    }

    #[test]
    fn state_handle_rules() {
        let mut s = State::new(Some(1), false);
        assert!(s.exists());
        s.remove().unwrap();
        assert_eq!(s.remove(), Err(StateError::AlreadyRemoved));
        assert_eq!(s.update(2), Err(StateError::AlreadyRemoved));
        let mut t = State::new(Some(1), true);
        assert!(t.is_timing_out());
        assert_eq!(t.update(2), Err(StateError::UpdateWhileTimingOut));
        // Removing inside map_with_state drops the key.
        let f: &MappingFn<&'static str, u64, u64, ()> = &|_, _, s| {
            s.remove().ok();
            None
        };
        let items: Items = vec![("a", (vec![entry(1, 0)], vec![1]))];
        let (states, _) = map_with_state_partition(items.into_iter(), 10, None, f);
        assert!(states.is_empty());
    }
}
