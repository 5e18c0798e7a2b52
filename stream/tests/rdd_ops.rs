//! Property tests: every RDD operation equals the same computation done sequentially on a `Vec`,
//! whatever the data and the partition counts.

use proptest::prelude::*;
use sluice_stream::{Context, ContextConfig, HashPartitioner, Rdd};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

fn ctx() -> Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        Context::new(ContextConfig {
            workers: Some(2),
            ..Default::default()
        })
        .unwrap()
    })
    .clone()
}

fn rdd<T: Clone + Send + Sync + 'static>(v: &[T], parts: usize) -> Rdd<T> {
    ctx().parallelize(v.to_vec(), parts).unwrap()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn pairs() -> impl Strategy<Value = Vec<(u8, i32)>> {
    prop::collection::vec((0u8..16, -1000i32..1000), 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn narrow_ops_match_vec(v in prop::collection::vec(-1000i64..1000, 0..300), parts in 1usize..9) {
        let r = rdd(&v, parts);
        prop_assert_eq!(r.collect().unwrap(), v.clone());
        prop_assert_eq!(r.map(|x| x * 3 + 1).collect().unwrap(), v.iter().map(|x| x * 3 + 1).collect::<Vec<_>>());
        prop_assert_eq!(r.filter(|x| x % 3 == 0).collect().unwrap(), v.iter().copied().filter(|x| x % 3 == 0).collect::<Vec<_>>());
        prop_assert_eq!(
            r.flat_map(|x| vec![x; (x.rem_euclid(3)) as usize]).collect().unwrap(),
            v.iter().flat_map(|&x| vec![x; (x.rem_euclid(3)) as usize]).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            r.map_partitions(|it| { let s: i64 = it.sum(); std::iter::once(s) }).collect().unwrap().iter().sum::<i64>(),
            v.iter().sum::<i64>()
        );
        prop_assert_eq!(r.union(&r.map(|x| -x)).collect().unwrap(),
            v.iter().copied().chain(v.iter().map(|x| -x)).collect::<Vec<_>>());
        prop_assert_eq!(r.count().unwrap(), v.len() as u64);
        prop_assert_eq!(r.reduce(|a, b| a + b).unwrap(), v.iter().copied().reduce(|a, b| a + b));
        prop_assert_eq!(r.fold(0, |a, b| a + b).unwrap(), v.iter().sum::<i64>());
        prop_assert_eq!(r.first().unwrap(), v.first().copied());
        for n in [0usize, 1, 7, 1000] {
            prop_assert_eq!(r.take(n).unwrap(), v.iter().copied().take(n).collect::<Vec<_>>());
        }
        let sum = std::sync::atomic::AtomicI64::new(0);
        r.foreach(|x| { sum.fetch_add(x, std::sync::atomic::Ordering::Relaxed); }).unwrap();
        prop_assert_eq!(sum.into_inner(), v.iter().sum::<i64>());
    }

    #[test]
    fn wide_ops_match_vec(v in prop::collection::vec(-50i64..50, 0..300), parts in 1usize..9, out in 1usize..7) {
        let r = rdd(&v, parts);
        let mut d = v.clone(); d.sort(); d.dedup();
        prop_assert_eq!(sorted(r.distinct().collect().unwrap()), d);
        let mut s = v.clone(); s.sort();
        prop_assert_eq!(r.sort_by(|x| *x, true, out).unwrap().collect().unwrap(), s.clone());
        s.reverse();
        prop_assert_eq!(r.sort_by(|x| *x, false, out).unwrap().collect().unwrap(), s);
        let re = r.repartition(out).unwrap();
        prop_assert_eq!(re.num_partitions(), out);
        prop_assert_eq!(sorted(re.collect().unwrap()), sorted(v.clone()));
    }

    #[test]
    fn key_value_ops_match_vec(a in pairs(), b in pairs(), pa in 1usize..7, pb in 1usize..7) {
        let ra = rdd(&a, pa);
        let rb = rdd(&b, pb);
        let mut sums: BTreeMap<u8, i64> = BTreeMap::new();
        let mut groups: BTreeMap<u8, Vec<i32>> = BTreeMap::new();
        for &(k, v) in &a {
            *sums.entry(k).or_default() += i64::from(v);
            groups.entry(k).or_default().push(v);
        }
        prop_assert_eq!(sorted(ra.map_values(i64::from).reduce_by_key(|x, y| x + y).collect().unwrap()),
            sums.clone().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(sorted(ra.aggregate_by_key(0i64, |acc, v| acc + i64::from(v), |x, y| x + y).collect().unwrap()),
            sums.into_iter().collect::<Vec<_>>());
        // Within a key, group order follows partition order = input order.
        prop_assert_eq!(sorted(ra.group_by_key().collect().unwrap()), groups.clone().into_iter().collect::<Vec<_>>());
        let counts: HashMap<u8, u64> = groups.iter().map(|(k, vs)| (*k, vs.len() as u64)).collect();
        prop_assert_eq!(ra.count_by_key().unwrap(), counts);
        prop_assert_eq!(sorted(ra.map_values(|v| v * 2).collect().unwrap()),
            sorted(a.iter().map(|&(k, v)| (k, v * 2)).collect()));

        let mut join = Vec::new();
        let mut left = Vec::new();
        for &(k, v) in &a {
            let matches: Vec<i32> = b.iter().filter(|(kb, _)| *kb == k).map(|(_, w)| *w).collect();
            if matches.is_empty() { left.push((k, (v, None))); }
            for w in matches { join.push((k, (v, w))); left.push((k, (v, Some(w)))); }
        }
        prop_assert_eq!(sorted(ra.join(&rb).collect().unwrap()), sorted(join));
        prop_assert_eq!(sorted(ra.left_outer_join(&rb).collect().unwrap()), sorted(left));

        let mut cg: BTreeMap<u8, (Vec<i32>, Vec<i32>)> = BTreeMap::new();
        for &(k, v) in &a { cg.entry(k).or_default().0.push(v); }
        for &(k, w) in &b { cg.entry(k).or_default().1.push(w); }
        prop_assert_eq!(sorted(ra.cogroup(&rb).collect().unwrap()), cg.into_iter().collect::<Vec<_>>());

        let p = ra.partition_by(Arc::new(HashPartitioner::new(pb)));
        prop_assert_eq!(p.num_partitions(), pb);
        prop_assert_eq!(sorted(p.collect().unwrap()), sorted(a.clone()));
        // Every key sits in exactly one partition.
        let per_part = p.run_partitions(|_, it| Ok(it.map(|(k, _)| k).collect::<Vec<u8>>())).unwrap();
        for k in 0u8..16 {
            prop_assert!(per_part.iter().filter(|ks| ks.contains(&k)).count() <= 1);
        }
    }

    #[test]
    fn sample_is_a_deterministic_subsequence(v in prop::collection::vec(0u32..1000, 0..300), parts in 1usize..6, seed in any::<u64>(), frac in 0.0f64..1.0) {
        let r = rdd(&v, parts);
        let s1 = r.sample(false, frac, seed).unwrap().collect().unwrap();
        let s2 = r.sample(false, frac, seed).unwrap().collect().unwrap();
        prop_assert_eq!(&s1, &s2);
        // s1 is a subsequence of v.
        let mut it = v.iter();
        for x in &s1 { prop_assert!(it.any(|y| y == x)); }
        prop_assert_eq!(r.sample(false, 0.0, seed).unwrap().count().unwrap(), 0);
        prop_assert_eq!(r.sample(false, 1.0, seed).unwrap().collect().unwrap(), v.clone());
        let with = r.sample(true, 2.0, seed).unwrap().collect().unwrap();
        for x in &with { prop_assert!(v.contains(x)); }
    }
}

#[test]
fn sample_fraction_is_roughly_honoured() {
    let v: Vec<u32> = (0..20_000).collect();
    let n = rdd(&v, 4).sample(false, 0.25, 42).unwrap().count().unwrap();
    assert!((4_000..6_000).contains(&n), "{n}");
    let m = rdd(&v, 4).sample(true, 2.0, 42).unwrap().count().unwrap();
    assert!((36_000..44_000).contains(&m), "{m}");
}

#[test]
fn invalid_arguments_are_typed_errors() {
    assert!(ctx().parallelize(vec![1], 0).is_err());
    assert!(rdd(&[1], 1).sample(false, 1.5, 0).is_err());
    assert!(rdd(&[1], 1).sample(true, f64::NAN, 0).is_err());
    assert!(rdd(&[1], 1).repartition(0).is_err());
    assert!(rdd(&[1], 1).sort_by(|x| *x, true, 0).is_err());
}
