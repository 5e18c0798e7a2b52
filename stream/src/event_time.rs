//! Event-time windows with a watermark (Structured Streaming's `window` + `withWatermark`), as a
//! synchronous state machine.
//!
//! Records carry an event time. Each record is assigned to the tumbling or sliding windows that
//! contain it, and per (window, key) an accumulator is kept. The watermark is the largest event time
//! seen minus the allowed delay; it only moves forward, and is advanced at the end of each batch
//! (so it applies from the next batch on, as in Structured Streaming). A record whose every window
//! has already been closed by the watermark is late: dropped and counted. When the watermark passes
//! a window's end, its results are emitted once (append mode) and its state is evicted, so state
//! stays bounded by the windows still open.
//!
//! Per-batch aggregation is parallel (the batch is pre-aggregated per (window, key) as an RDD with
//! map-side combine); this machine merges the batch's partial aggregates and decides what closes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::Hash;
use thiserror::Error;

/// A window `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start, epoch milliseconds.
    pub start_ms: i64,
    /// Exclusive end, epoch milliseconds.
    pub end_ms: i64,
}

/// Window length, slide and allowed lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTimeSpec {
    /// Window length in milliseconds.
    pub length_ms: i64,
    /// Slide in milliseconds (= length for tumbling windows).
    pub slide_ms: i64,
    /// How far behind the largest seen event time records are still accepted.
    pub watermark_delay_ms: i64,
}

/// An invalid event-time window specification.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid event-time window: {0}")]
pub struct WindowSpecError(pub String);

impl EventTimeSpec {
    /// Tumbling windows of `length_ms`.
    pub fn tumbling(length_ms: i64, watermark_delay_ms: i64) -> EventTimeSpec {
        EventTimeSpec {
            length_ms,
            slide_ms: length_ms,
            watermark_delay_ms,
        }
    }

    /// Sliding windows of `length_ms` every `slide_ms`.
    pub fn sliding(length_ms: i64, slide_ms: i64, watermark_delay_ms: i64) -> EventTimeSpec {
        EventTimeSpec {
            length_ms,
            slide_ms,
            watermark_delay_ms,
        }
    }

    /// Checks the spec: positive length and slide, slide at most the length, delay >= 0.
    pub fn validate(&self) -> Result<(), WindowSpecError> {
        if self.length_ms <= 0 || self.slide_ms <= 0 {
            return Err(WindowSpecError("length and slide must be > 0 ms".into()));
        }
        if self.slide_ms > self.length_ms {
            return Err(WindowSpecError(format!(
                "slide ({} ms) must not exceed the length ({} ms)",
                self.slide_ms, self.length_ms
            )));
        }
        if self.watermark_delay_ms < 0 {
            return Err(WindowSpecError("watermark delay must be >= 0 ms".into()));
        }
        Ok(())
    }

    /// The windows containing `ts_ms`, earliest first.
    pub fn windows_of(&self, ts_ms: i64) -> impl Iterator<Item = Window> + use<> {
        let (length, slide) = (self.length_ms, self.slide_ms);
        // The latest window start <= ts, then step back while the window still contains ts.
        let last_start = ts_ms - ts_ms.rem_euclid(slide);
        let n = (length + slide - 1) / slide;
        (0..n).rev().filter_map(move |i| {
            let start = last_start - i * slide;
            let end = start + length;
            (ts_ms >= start && ts_ms < end).then_some(Window {
                start_ms: start,
                end_ms: end,
            })
        })
    }
}

/// Per (window, key) aggregation state with a watermark. `A` is the accumulator type.
///
/// Serialized (for state snapshots) with maps as lists of pairs, so keys need not be strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    into = "EventTimeSnapshot<K, A>",
    from = "EventTimeSnapshot<K, A>",
    bound(
        serialize = "K: Serialize + Clone, A: Serialize + Clone",
        deserialize = "K: Deserialize<'de> + Ord, A: Deserialize<'de>"
    )
)]
pub struct EventTimeState<K: Ord, A> {
    spec: EventTimeSpec,
    /// Largest event time seen; `i64::MIN` before any record.
    max_event_time_ms: i64,
    /// Records at or before this are late once their windows have closed.
    watermark_ms: i64,
    open: BTreeMap<Window, BTreeMap<K, A>>,
    late_dropped: u64,
}

impl<K: Ord + Clone, A: Clone> EventTimeState<K, A> {
    /// Empty state.
    pub fn new(spec: EventTimeSpec) -> Result<EventTimeState<K, A>, WindowSpecError> {
        spec.validate()?;
        Ok(EventTimeState {
            spec,
            max_event_time_ms: i64::MIN,
            watermark_ms: i64::MIN,
            open: BTreeMap::new(),
            late_dropped: 0,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &EventTimeSpec {
        &self.spec
    }

    /// The current watermark (`i64::MIN` before any record).
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Late records dropped so far.
    pub fn late_dropped(&self) -> u64 {
        self.late_dropped
    }

    /// The number of (window, key) states held.
    pub fn n_states(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }

    /// Whether a window is already closed (its end at or before the watermark).
    pub fn is_closed(&self, w: &Window) -> bool {
        w.end_ms <= self.watermark_ms
    }

    /// Whether a record with this event time is late: every window containing it is closed. The
    /// batch pre-aggregation uses this (with the watermark at batch start) to drop late records.
    pub fn is_late(&self, ts_ms: i64) -> bool {
        self.spec.windows_of(ts_ms).all(|w| self.is_closed(&w))
    }

    /// Counts records the pre-aggregation dropped as late.
    pub fn count_late(&mut self, n: u64) {
        self.late_dropped += n;
    }

    /// Notes an event time seen in the current batch (including late records: Structured
    /// Streaming's watermark is computed from every record's time).
    pub fn observe(&mut self, ts_ms: i64) {
        self.max_event_time_ms = self.max_event_time_ms.max(ts_ms);
    }

    /// Merges a partial aggregate for `(window, key)` from the current batch. Partials for a closed
    /// window are dropped (counted by the caller with [`EventTimeState::count_late`]).
    pub fn merge(&mut self, window: Window, key: K, partial: A, merge: impl Fn(A, A) -> A) -> bool {
        if self.is_closed(&window) {
            return false;
        }
        let keys = self.open.entry(window).or_default();
        match keys.remove(&key) {
            Some(acc) => keys.insert(key, merge(acc, partial)),
            None => keys.insert(key, partial),
        };
        true
    }

    /// Ends the batch: advances the watermark and returns the windows it closed with their final
    /// aggregates (window order, then key order), evicting their state.
    pub fn end_batch(&mut self) -> Vec<(Window, K, A)> {
        if self.max_event_time_ms != i64::MIN {
            let candidate = self
                .max_event_time_ms
                .saturating_sub(self.spec.watermark_delay_ms);
            self.watermark_ms = self.watermark_ms.max(candidate);
        }
        self.evict(|w, wm| w.end_ms <= wm)
    }

    /// Closes every open window regardless of the watermark (graceful stop), returning them.
    pub fn close_all(&mut self) -> Vec<(Window, K, A)> {
        self.evict(|_, _| true)
    }

    fn evict(&mut self, closed: impl Fn(&Window, i64) -> bool) -> Vec<(Window, K, A)> {
        let mut out = Vec::new();
        let wm = self.watermark_ms;
        let windows: Vec<Window> = self
            .open
            .keys()
            .filter(|w| closed(w, wm))
            .copied()
            .collect();
        for w in windows {
            if let Some(keys) = self.open.remove(&w) {
                out.extend(keys.into_iter().map(|(k, a)| (w, k, a)));
            }
        }
        out
    }
}

/// The serialized form of [`EventTimeState`].
#[derive(Serialize, Deserialize)]
struct EventTimeSnapshot<K, A> {
    spec: EventTimeSpec,
    max_event_time_ms: i64,
    watermark_ms: i64,
    open: Vec<(Window, Vec<(K, A)>)>,
    late_dropped: u64,
}

impl<K: Ord, A> From<EventTimeState<K, A>> for EventTimeSnapshot<K, A> {
    fn from(s: EventTimeState<K, A>) -> Self {
        EventTimeSnapshot {
            spec: s.spec,
            max_event_time_ms: s.max_event_time_ms,
            watermark_ms: s.watermark_ms,
            open: s
                .open
                .into_iter()
                .map(|(w, keys)| (w, keys.into_iter().collect()))
                .collect(),
            late_dropped: s.late_dropped,
        }
    }
}

impl<K: Ord, A> From<EventTimeSnapshot<K, A>> for EventTimeState<K, A> {
    fn from(s: EventTimeSnapshot<K, A>) -> Self {
        EventTimeState {
            spec: s.spec,
            max_event_time_ms: s.max_event_time_ms,
            watermark_ms: s.watermark_ms,
            open: s
                .open
                .into_iter()
                .map(|(w, keys)| (w, keys.into_iter().collect()))
                .collect(),
            late_dropped: s.late_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_sliding_assignment() {
        let t = EventTimeSpec::tumbling(10_000, 0);
        assert_eq!(
            t.windows_of(12_345).collect::<Vec<_>>(),
            vec![Window {
                start_ms: 10_000,
                end_ms: 20_000
            }]
        );
        assert_eq!(
            t.windows_of(-1).collect::<Vec<_>>(),
            vec![Window {
                start_ms: -10_000,
                end_ms: 0
            }]
        );
        let s = EventTimeSpec::sliding(10, 5, 0);
        assert_eq!(
            s.windows_of(12).collect::<Vec<_>>(),
            vec![
                Window {
                    start_ms: 5,
                    end_ms: 15
                },
                Window {
                    start_ms: 10,
                    end_ms: 20
                }
            ]
        );
        let s = EventTimeSpec::sliding(10, 3, 0);
        let ws: Vec<_> = s.windows_of(9).collect();
        assert_eq!(ws.len(), 4); // starts 0, 3, 6, 9
        assert!(ws.iter().all(|w| w.start_ms <= 9 && 9 < w.end_ms));
    }

    #[test]
    fn invalid_specs_are_rejected() {
        assert!(EventTimeSpec::tumbling(0, 0).validate().is_err());
        assert!(EventTimeSpec::sliding(5, 10, 0).validate().is_err());
        assert!(EventTimeSpec::tumbling(5, -1).validate().is_err());
        assert!(EventTimeState::<u8, u64>::new(EventTimeSpec::tumbling(0, 0)).is_err());
    }

    fn feed(s: &mut EventTimeState<&'static str, u64>, records: &[(i64, &'static str)]) -> u64 {
        let mut late = 0;
        let wm_at_start = s.clone();
        for &(ts, k) in records {
            s.observe(ts);
            if wm_at_start.is_late(ts) {
                late += 1;
                continue;
            }
            for w in s.spec().windows_of(ts) {
                s.merge(w, k, 1, |a, b| a + b);
            }
        }
        s.count_late(late);
        late
    }

    #[test]
    fn windows_close_when_the_watermark_passes_and_late_records_are_dropped() {
        let mut s = EventTimeState::new(EventTimeSpec::tumbling(10, 5)).unwrap();
        feed(&mut s, &[(1, "a"), (3, "b"), (9, "a")]);
        assert!(s.end_batch().is_empty(), "watermark 4 closes nothing");
        assert_eq!(s.watermark_ms(), 4);
        feed(&mut s, &[(16, "a"), (2, "a")]); // 2 is behind the watermark but its window is open
        let closed = s.end_batch(); // watermark 11 closes [0, 10)
        let w0 = Window {
            start_ms: 0,
            end_ms: 10,
        };
        assert_eq!(closed, vec![(w0, "a", 3), (w0, "b", 1)]);
        assert_eq!(s.n_states(), 1);
        assert_eq!(
            feed(&mut s, &[(5, "a"), (12, "b")]),
            1,
            "[0,10) is closed: 5 is late"
        );
        assert_eq!(s.late_dropped(), 1);
        let w1 = Window {
            start_ms: 10,
            end_ms: 20,
        };
        assert!(s.end_batch().is_empty());
        assert_eq!(s.close_all(), vec![(w1, "a", 1), (w1, "b", 1)]);
        assert_eq!(s.n_states(), 0);
    }

    #[test]
    fn watermark_never_moves_back_and_state_survives_a_snapshot() {
        let mut s = EventTimeState::new(EventTimeSpec::sliding(10, 5, 0)).unwrap();
        feed(&mut s, &[(30, "x")]);
        s.end_batch();
        feed(&mut s, &[(31, "x"), (3, "y")]);
        assert_eq!(s.watermark_ms(), 30);
        let snap = serde_json::to_vec(&s).unwrap();
        let mut r: EventTimeState<String, u64> = serde_json::from_slice(&snap).unwrap();
        r.end_batch();
        assert_eq!(r.watermark_ms(), 31);
        assert_eq!(r.late_dropped(), 1);
        let all = r.close_all();
        let w = |start_ms| Window {
            start_ms,
            end_ms: start_ms + 10,
        };
        assert_eq!(
            all,
            vec![(w(25), "x".to_string(), 2), (w(30), "x".to_string(), 2)]
        );
    }
}
