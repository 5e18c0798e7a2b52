//! The streaming driver over an in-memory log with writes failing at random points (a crash in the
//! offset log write, in the middle of a sink, in the state snapshot, in the commit): after any
//! number of such crashes and restarts, the output holds each result exactly once.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_stream::dstream::StateSpec;
use sluice_stream::log::{Log, MemoryLog, OutRecord};
use sluice_stream::state::State;
use sluice_stream::streaming::{Driver, StepOutcome, StreamConfig, StreamingContext};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const WORDS: &[&str] = &["ant", "bee", "cat", "dog", "eel", "fox", "gnu"];

fn job(log: Arc<MemoryLog>) -> (StreamingContext, Driver) {
    let mut config = StreamConfig::new("unused", "wc-test");
    config.workers = Some(2);
    config.batch_attempts = 1;
    config.max_records_per_partition = Some(7);
    config.backpressure = false;
    let ssc = StreamingContext::with_log(config, Duration::from_millis(100), log).unwrap();
    let words = ssc.topic_stream(&["in"]).unwrap().map(|r| {
        (
            String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            1u64,
        )
    });
    // Per-batch counts: their sum per word must equal the input exactly.
    words
        .reduce_by_key(|a, b| a + b)
        .to_topic("per-batch", |(w, n)| OutRecord::new(w, n.to_string()))
        .unwrap();
    // Running counts with state: the updates per word must be 1, 2, 3, ... with no repeats.
    let spec = StateSpec::function(|w: &String, v: Option<u64>, st: &mut State<u64>| {
        let n = st.get().copied().unwrap_or(0) + v?;
        st.update(n).ok()?;
        Some((w.clone(), n))
    });
    words
        .map_with_state(spec)
        .mapped
        .to_topic("running", |(w, n)| OutRecord::new(w, n.to_string()))
        .unwrap();
    let driver = Driver::new(&ssc).unwrap();
    (ssc, driver)
}

fn produce(log: &MemoryLog, seed: &mut u64, n: usize, expected: &mut BTreeMap<String, u64>) {
    for _ in 0..n {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = WORDS[(*seed >> 33) as usize % WORDS.len()];
        let p = ((*seed >> 20) % 2) as i32;
        log.write(
            "in",
            p,
            vec![OutRecord::value(Bytes::from_static(w.as_bytes()))],
        )
        .unwrap();
        *expected.entry(w.to_string()).or_default() += 1;
    }
}

fn check(log: &MemoryLog, expected: &BTreeMap<String, u64>) -> Result<(), TestCaseError> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut running: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for p in 0..2 {
        for r in log.records("per-batch", p) {
            let w = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let n: u64 = std::str::from_utf8(&r.value.unwrap())
                .unwrap()
                .parse()
                .unwrap();
            *sums.entry(w).or_default() += n;
        }
        for r in log.records("running", p) {
            let w = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            running.entry(w).or_default().push(
                std::str::from_utf8(&r.value.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
    }
    prop_assert_eq!(&sums, expected);
    for (w, updates) in &running {
        let want: Vec<u64> = (1..=expected[w]).collect();
        prop_assert_eq!(updates, &want, "running counts of {}", w);
    }
    Ok(())
}

fn setup() -> Arc<MemoryLog> {
    let log = Arc::new(MemoryLog::new());
    log.ensure_topic("in", 2, &[]).unwrap();
    log.ensure_topic("per-batch", 2, &[]).unwrap();
    log.ensure_topic("running", 2, &[]).unwrap();
    log
}

#[test]
fn without_failures_every_result_is_written_once() {
    let log = setup();
    let (mut seed, mut expected) = (1u64, BTreeMap::new());
    let (_ssc, mut d) = job(log.clone());
    let clock = || 0i64;
    for i in 0..6 {
        produce(&log, &mut seed, 10, &mut expected);
        let StepOutcome::Ran(r) = d.step(100 * (i + 1), false, &clock).unwrap();
        assert_eq!(r.batch, i as u64);
        assert!(!r.rerun);
    }
    // Drain the rest (7 records per partition per batch).
    for i in 6..12 {
        d.step(100 * (i + 1), false, &clock).unwrap();
    }
    check(&log, &expected).unwrap();
    assert_eq!(d.summary().records, 60);

    // Restarting with another worker count would change partitioning: refused, with the fix.
    let mut config = StreamConfig::new("unused", "wc-test");
    config.workers = Some(1);
    let ssc = StreamingContext::with_log(config, Duration::from_millis(100), log.clone()).unwrap();
    ssc.topic_stream(&["in"])
        .unwrap()
        .count()
        .foreach_rdd(|_, _| Ok(()));
    match Driver::new(&ssc) {
        Err(e) => assert!(e.to_string().contains("workers = Some(2)"), "{e}"),
        Ok(_) => panic!("a restart with 1 worker instead of 2 must be refused"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn crashes_at_random_writes_neither_lose_nor_duplicate(
        seed0 in any::<u64>(),
        crashes in prop::collection::vec((0usize..12, 0u64..30), 1..6),
    ) {
        let log = setup();
        let (mut seed, mut expected) = (seed0, BTreeMap::new());
        let clock = || 0i64;
        let mut t = 0i64;
        let mut crash_at: BTreeMap<usize, u64> = crashes.into_iter().collect();
        let (mut ssc, mut d) = job(log.clone());
        let mut restarts = 0;
        for step in 0..40usize {
            if step < 12 {
                produce(&log, &mut seed, 9, &mut expected);
            }
            if let Some(k) = crash_at.remove(&step) {
                log.fail_after(Some(k));
            }
            t += 100;
            match d.step(t, false, &clock) {
                Ok(_) => {}
                Err(_) => {
                    // The process dies: drop everything in memory and start again from the log.
                    log.fail_after(None);
                    drop(d);
                    drop(ssc);
                    (ssc, d) = job(log.clone());
                    restarts += 1;
                }
            }
            log.fail_after(None);
        }
        let _ = restarts;
        check(&log, &expected)?;
    }
}

/// The threaded driver: batches at interval boundaries, listener reports, a graceful stop after
/// the input dries up that closes event-time windows, and `stop(false)` from another thread.
#[test]
fn started_context_runs_until_idle_and_reports_batches() {
    use sluice_stream::event_time::EventTimeSpec;
    use sluice_stream::listener::{BatchReport, StreamingListener, Summary};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<(Vec<BatchReport>, Option<Summary>)>);
    impl StreamingListener for Recorder {
        fn on_batch_completed(&self, r: &BatchReport) {
            self.0.lock().unwrap().0.push(r.clone());
        }
        fn on_stopped(&self, s: &Summary) {
            self.0.lock().unwrap().1 = Some(s.clone());
        }
    }

    let log = setup();
    for i in 0..50i64 {
        let r = OutRecord {
            timestamp_ms: Some(i * 100),
            ..OutRecord::value(Bytes::from_static(b"x"))
        };
        log.write("in", (i % 2) as i32, vec![r]).unwrap();
    }
    let mut config = StreamConfig::new("unused", "threaded");
    config.workers = Some(2);
    config.stop_when_idle = Some(Duration::from_millis(100));
    let ssc = StreamingContext::with_log(config, Duration::from_millis(20), log.clone()).unwrap();
    let recorder = Arc::new(Recorder::default());
    ssc.add_listener(recorder.clone());
    // Event-time windows of 1 s over the record timestamps: all 5 windows are emitted, the last
    // ones only by the final batch of the graceful stop.
    ssc.topic_stream(&["in"])
        .unwrap()
        .map(|r| (1u8, r.timestamp_ms))
        .reduce_by_key_and_event_window(
            |_, t| *t,
            EventTimeSpec::tumbling(1000, 0),
            |a, b| a.max(b),
        )
        .unwrap()
        .to_topic("per-batch", |(w, _, _)| {
            OutRecord::new(w.start_ms.to_string(), "closed")
        })
        .unwrap();
    ssc.start().unwrap();
    assert!(ssc.start().is_err(), "a context starts once");
    let summary = ssc.await_termination().unwrap();
    assert_eq!(summary.records, 50);
    let (reports, stopped) = recorder.0.lock().unwrap().clone();
    assert_eq!(stopped, Some(summary.clone()));
    assert_eq!(reports.len() as u64, summary.batches);
    assert!(reports
        .windows(2)
        .all(|w| w[1].batch == w[0].batch + 1 && w[1].batch_time_ms == w[0].batch_time_ms + 20));
    let mut windows: Vec<String> = (0..2)
        .flat_map(|p| log.records("per-batch", p))
        .map(|r| String::from_utf8(r.key.unwrap().to_vec()).unwrap())
        .collect();
    windows.sort();
    assert_eq!(windows, vec!["0", "1000", "2000", "3000", "4000"]);

    // An immediate stop from another thread ends a job that would otherwise run forever.
    let mut config = StreamConfig::new("unused", "stopped");
    config.workers = Some(1);
    let ssc = Arc::new(
        StreamingContext::with_log(config, Duration::from_millis(10), log.clone()).unwrap(),
    );
    ssc.topic_stream(&["in"])
        .unwrap()
        .count()
        .foreach_rdd(|_, _| Ok(()));
    ssc.start().unwrap();
    let s2 = ssc.clone();
    let stopper = std::thread::spawn(move || s2.stop(false));
    let summary = ssc.await_termination().unwrap();
    stopper.join().unwrap();
    assert!(summary.records <= 50);
}

/// `stop(true)` under input that never pauses: the job finishes the input that existed when the
/// stop was requested, runs its final batch and returns, instead of waiting for an empty batch.
#[test]
fn graceful_stop_terminates_under_continuous_input() {
    use sluice_stream::listener::{BatchReport, StreamingListener};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};

    struct FirstBatch(Mutex<Option<mpsc::Sender<()>>>);
    impl StreamingListener for FirstBatch {
        fn on_batch_completed(&self, r: &BatchReport) {
            if r.n_records() > 0 {
                if let Some(tx) = self.0.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        }
    }

    let log = setup();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) && n < 2_000_000 {
                log.write(
                    "in",
                    (n % 2) as i32,
                    vec![OutRecord::value(Bytes::from_static(b"w"))],
                )
                .unwrap();
                n += 1;
                if n.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut config = StreamConfig::new("unused", "graceful");
    config.workers = Some(1);
    config.max_records_per_partition = Some(5_000);
    let ssc = StreamingContext::with_log(config, Duration::from_millis(10), log.clone()).unwrap();
    let (tx, rx) = mpsc::channel();
    ssc.add_listener(Arc::new(FirstBatch(Mutex::new(Some(tx)))));
    ssc.topic_stream(&["in"])
        .unwrap()
        .count()
        .foreach_rdd(|_, _| Ok(()));
    ssc.start().unwrap();
    rx.recv().unwrap();
    ssc.stop(true);
    let summary = ssc.await_termination().unwrap();
    done.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(summary.records > 0);
}
