//! DStream operations over queued batches with injected batch times: lifted operations, windows
//! (with and without inverse functions), keyed state with timeouts, event-time windows, snapshots.

use proptest::prelude::*;
use sluice_stream::dstream::{KeepFn, StateSpec};
use sluice_stream::event_time::{EventTimeSpec, Window};
use sluice_stream::{Batch, Context, ContextConfig, DStream, Data, StreamGraph};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const INTERVAL: u64 = 1000;

fn graph() -> StreamGraph {
    let ctx = Context::new(ContextConfig {
        workers: Some(2),
        ..Default::default()
    })
    .unwrap();
    StreamGraph::new(ctx, INTERVAL).unwrap()
}

type Sink<T> = Arc<Mutex<Vec<(i64, Vec<T>)>>>;

fn sink<T: Data + Ord>(s: &DStream<T>) -> Sink<T> {
    let out: Sink<T> = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    s.foreach_rdd(move |r, b| {
        let mut v = r.collect()?;
        v.sort();
        o.lock().unwrap().push((b.time_ms, v));
        Ok(())
    });
    out
}

fn run(g: &StreamGraph, first: u64, n: u64) {
    for i in first..first + n {
        g.run_batch(&Batch {
            id: i,
            time_ms: (i as i64 + 1) * INTERVAL as i64,
            is_final: false,
        })
        .unwrap();
    }
}

fn taken<T: Clone>(s: &Sink<T>) -> Vec<(i64, Vec<T>)> {
    s.lock().unwrap().clone()
}

#[test]
fn lifted_operations_apply_per_batch() {
    let g = graph();
    let words = g.queue_stream(vec![vec!["a b", "b c"], vec!["c c"], vec![]], 2);
    let counts = words
        .flat_map(|l: &str| l.split(' ').map(str::to_string).collect::<Vec<_>>())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b);
    let out = sink(&counts);
    let n = sink(&words.count());
    let statics = g
        .context()
        .parallelize(vec![("a".to_string(), 10u64), ("c".to_string(), 30)], 1)
        .unwrap();
    let joined = sink(&counts.transform(move |r| Ok(r.join(&statics))));
    let distinct = sink(
        &words
            .flat_map(|l: &str| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .distinct(),
    );
    let agg = sink(&counts.aggregate_by_key(0u64, |a, v| a + v * 10, |a, b| a + b));
    run(&g, 0, 3);
    let s = |x: &str| x.to_string();
    assert_eq!(
        taken(&out),
        vec![
            (1000, vec![(s("a"), 1), (s("b"), 2), (s("c"), 1)]),
            (2000, vec![(s("c"), 2)]),
            (3000, vec![])
        ]
    );
    assert_eq!(
        taken(&n),
        vec![(1000, vec![2]), (2000, vec![1]), (3000, vec![0])]
    );
    assert_eq!(
        taken(&joined)[0].1,
        vec![(s("a"), (1, 10)), (s("c"), (1, 30))]
    );
    assert_eq!(taken(&distinct)[0].1, vec![s("a"), s("b"), s("c")]);
    assert_eq!(taken(&agg)[1].1, vec![(s("c"), 20)]);
}

#[test]
fn window_holds_the_last_length_and_fires_every_slide() {
    let g = graph();
    let s = g.queue_stream((1..=6).map(|i| vec![i]).collect(), 1);
    let w = sink(&s.window(3000, 2000).unwrap());
    let c = sink(&s.count_by_window(2000, 1000).unwrap());
    let r = sink(&s.reduce_by_window(|a, b| a + b, 3000, 3000).unwrap());
    assert!(
        s.window(1500, 1000).is_err(),
        "length must be a multiple of the interval"
    );
    run(&g, 0, 6);
    // Batch i (time i s) carries [i]; windows fire at even seconds over (t-3, t].
    assert_eq!(
        taken(&w),
        vec![
            (2000, vec![1, 2]),
            (4000, vec![2, 3, 4]),
            (6000, vec![4, 5, 6])
        ]
    );
    assert_eq!(
        taken(&c).iter().map(|(_, v)| v[0]).collect::<Vec<_>>(),
        vec![1, 2, 2, 2, 2, 2]
    );
    assert_eq!(taken(&r), vec![(3000, vec![6]), (6000, vec![15])]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The incremental (inverse-function) window equals recomputing each window from scratch.
    #[test]
    fn incremental_window_equals_full_recompute(
        batches in prop::collection::vec(prop::collection::vec((0u8..6, 1i64..5), 0..20), 1..14),
        len in 1u64..5, slide in 1u64..3,
    ) {
        let g = graph();
        let s = g.queue_stream(batches.clone(), 2);
        let keep: Arc<KeepFn<u8, i64>> = Arc::new(|(_, v)| *v != 0);
        let inc = s.reduce_by_key_and_window(|a, b| a + b, Some(Arc::new(|a, b| a - b)), Some(keep), len * INTERVAL, slide * INTERVAL).unwrap();
        let full = s.reduce_by_key_and_window(|a, b| a + b, None, None, len * INTERVAL, slide * INTERVAL).unwrap();
        let (a, b) = (sink(&inc), sink(&full));
        run(&g, 0, batches.len() as u64);
        let (a, b) = (taken(&a), taken(&b));
        prop_assert_eq!(&a, &b);
        // And both equal the sum over the batches in (t - len, t].
        for (t, got) in &a {
            let mut want: BTreeMap<u8, i64> = BTreeMap::new();
            for (i, batch) in batches.iter().enumerate() {
                let bt = (i as i64 + 1) * INTERVAL as i64;
                if bt > t - (len * INTERVAL) as i64 && bt <= *t {
                    for &(k, v) in batch { *want.entry(k).or_default() += v; }
                }
            }
            prop_assert_eq!(got, &want.into_iter().collect::<Vec<_>>());
        }
    }

    /// update_state_by_key's state equals the running totals; snapshot + restore into a fresh graph
    /// continues identically.
    #[test]
    fn update_state_by_key_is_a_running_total(
        batches in prop::collection::vec(prop::collection::vec((0u8..8, 1u64..4), 0..20), 2..8),
        cut in 1usize..7,
    ) {
        let cut = cut.min(batches.len() - 1);
        let build = |bs: Vec<Vec<(u8, u64)>>| {
            let g = graph();
            let s = g.queue_stream(bs, 3).update_state_by_key(|vs: Vec<u64>, st: Option<u64>| Some(st.unwrap_or(0) + vs.iter().sum::<u64>()), None);
            let out = sink(&s);
            (g, out)
        };
        let (g, out) = build(batches.clone());
        run(&g, 0, batches.len() as u64);
        let mut total: BTreeMap<u8, u64> = BTreeMap::new();
        for (i, b) in batches.iter().enumerate() {
            for &(k, v) in b { *total.entry(k).or_default() += v; }
            prop_assert_eq!(&taken(&out)[i].1, &total.clone().into_iter().collect::<Vec<_>>());
        }
        // Crash after `cut` batches: restore the snapshot into a new graph and run the rest.
        let (g1, _) = build(batches[..cut].to_vec());
        run(&g1, 0, cut as u64);
        let snap = g1.snapshot_state().unwrap();
        let (g2, out2) = build(batches[cut..].to_vec());
        g2.restore_state(&snap).unwrap();
        run(&g2, cut as u64, (batches.len() - cut) as u64);
        prop_assert_eq!(taken(&out2).last().map(|x| x.1.clone()), taken(&out).last().map(|x| x.1.clone()));
    }
}

#[test]
fn map_with_state_counts_and_times_out_idle_keys() {
    let g = graph();
    let s = g
        .queue_stream(
            vec![
                vec![("a", 1u64), ("b", 1)],
                vec![("a", 1)],
                vec![],
                vec![],
                vec![("b", 5)],
            ],
            2,
        )
        .map(|(k, v)| (k.to_string(), v));
    let spec = StateSpec::function(
        |k: &String, v: Option<u64>, st: &mut sluice_stream::state::State<u64>| match v {
            Some(v) => {
                let n = st.get().copied().unwrap_or(0) + v;
                st.update(n).ok()?;
                Some((k.to_string(), n, "update"))
            }
            None => Some((k.to_string(), *st.get()?, "timeout")),
        },
    )
    .timeout(2000);
    let m = s.map_with_state(spec);
    let out = sink(&m.mapped);
    let snaps = sink(&m.state_snapshots);
    run(&g, 0, 5);
    let s = |x: &str| x.to_string();
    assert_eq!(
        taken(&out),
        vec![
            (1000, vec![(s("a"), 1, "update"), (s("b"), 1, "update")]),
            (2000, vec![(s("a"), 2, "update")]),
            // b idle since 1000: times out at 3000; a (since 2000) at 4000.
            (3000, vec![(s("b"), 1, "timeout")]),
            (4000, vec![(s("a"), 2, "timeout")]),
            (5000, vec![(s("b"), 5, "update")]),
        ]
    );
    assert_eq!(taken(&snaps)[3].1, Vec::<(String, u64)>::new());
    assert_eq!(taken(&snaps)[4].1, vec![(s("b"), 5)]);
}

#[test]
fn event_time_windows_emit_once_when_the_watermark_passes() {
    let g = graph();
    // (key, event time): 10 s tumbling windows, 2 s allowed lateness.
    let batches = vec![
        vec![("x", 1_000i64), ("y", 3_000), ("x", 9_000)],
        vec![("x", 12_500), ("x", 8_000)], // 8 s is behind the max but its window is open
        vec![("y", 4_000), ("x", 15_000)], // watermark 10.5 s closed [0, 10): 4 s is late
        vec![("x", 31_000)],
    ];
    let s = g
        .queue_stream(batches, 2)
        .map(|(k, t)| (k.to_string(), (t, 1u64)));
    let w = s
        .reduce_by_key_and_event_window(
            |_, (t, _)| *t,
            EventTimeSpec::tumbling(10_000, 2_000),
            |a, b| (a.0.max(b.0), a.1 + b.1),
        )
        .unwrap()
        .map(|(w, k, (_, n))| (w.start_ms, k, n));
    let out = sink(&w);
    run(&g, 0, 4);
    g.run_batch(&Batch {
        id: 4,
        time_ms: 5000,
        is_final: true,
    })
    .unwrap();
    let s = |x: &str| x.to_string();
    assert_eq!(
        taken(&out).into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        vec![
            vec![],
            vec![(0, s("x"), 3), (0, s("y"), 1)],
            vec![],
            vec![(10_000, s("x"), 2)],
            vec![(30_000, s("x"), 1)],
        ]
    );
    assert_eq!(g.late_dropped(), 1);
    let _ = Window {
        start_ms: 0,
        end_ms: 1,
    };
}
