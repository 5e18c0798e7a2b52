//! Seeded simulation sweeps of partition replication and leader election (see
//! `sluice_broker::replication::sim` for the faults and invariants).
//!
//! - `SLUICE_SIM_SEED=N` replays one seed of every sweep here (printing its report);
//! - `SLUICE_SIM_SEEDS=N` sets how many seeds the main sweep runs (default 200; thousands for a
//!   long sweep), `SLUICE_SIM_FIRST_SEED` where it starts.

use sluice_broker::replication::sim::{run, SimConfig, SimReport};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `n` seeds (or the one in `SLUICE_SIM_SEED`); fails listing every failing seed.
fn sweep(configure: impl Fn(&mut SimConfig), n: u64) -> Vec<SimReport> {
    let seeds: Vec<u64> = match env_u64("SLUICE_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = env_u64("SLUICE_SIM_FIRST_SEED").unwrap_or(0);
            (first..first + n).collect()
        }
    };
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for seed in &seeds {
        let mut cfg = SimConfig::new(*seed);
        configure(&mut cfg);
        cfg.trace = seeds.len() == 1;
        match run(&cfg) {
            Ok(r) => reports.push(r),
            Err(v) => failures.push(v.to_string()),
        }
    }
    if seeds.len() == 1 {
        for r in &reports {
            for line in &r.trace {
                println!("{line}");
            }
            println!(
                "{:?}",
                SimReport {
                    trace: Vec::new(),
                    ..r.clone()
                }
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    reports
}

fn totals(reports: &[SimReport]) -> SimReport {
    let mut t = SimReport::default();
    for r in reports {
        t.produced += r.produced;
        t.acked += r.acked;
        t.not_enough_replicas += r.not_enough_replicas;
        t.read += r.read;
        t.crashes += r.crashes;
        t.shutdowns += r.shutdowns;
        t.partitions += r.partitions;
        t.leader_changes += r.leader_changes;
        t.truncations += r.truncations;
        t.final_log_len += r.final_log_len;
        t.longest_leaderless_ms = t.longest_leaderless_ms.max(r.longest_leaderless_ms);
    }
    t
}

#[test]
fn faults_never_lose_an_acknowledged_or_read_record() {
    let n = env_u64("SLUICE_SIM_SEEDS").unwrap_or(200);
    let reports = sweep(|_| {}, n);
    let t = totals(&reports);
    println!("totals over {} seeds: {t:?}", reports.len());
    // The sweep must actually reach the dangerous paths, or it proves nothing.
    if reports.len() >= 50 {
        assert!(t.acked > 0 && t.read > 0, "no traffic: {t:?}");
        assert!(
            t.crashes > 0 && t.partitions > 0 && t.shutdowns > 0,
            "no faults: {t:?}"
        );
        assert!(
            t.truncations > 0,
            "no divergent tail was ever truncated: {t:?}"
        );
        assert!(
            t.leader_changes > 2 * reports.len() as u64,
            "few failovers: {t:?}"
        );
        assert!(
            t.not_enough_replicas > 0,
            "min.insync.replicas never refused a write: {t:?}"
        );
    }
}

#[test]
fn without_faults_every_record_is_acknowledged_and_the_leader_never_changes() {
    let reports = sweep(
        |c| {
            c.faults = false;
            c.loss = 0.0;
            c.chaos_ms = 3_000;
            c.settle_ms = 2_000;
        },
        5,
    );
    for r in &reports {
        assert_eq!(r.acked, r.produced, "{r:?}");
        assert_eq!(r.leader_changes, 1, "{r:?}");
        assert_eq!(r.final_log_len, r.produced, "{r:?}");
    }
}

#[test]
fn a_killed_leader_is_replaced_within_three_seconds() {
    let reports = sweep(
        |c| {
            c.faults = false;
            c.loss = 0.0;
            c.chaos_ms = 8_000;
            c.settle_ms = 5_000;
            c.kill_leader_at_ms = Some(2_000);
        },
        20,
    );
    for r in &reports {
        let failover = r.failover_ms.unwrap_or(u64::MAX);
        assert!(failover <= 3_000, "failover took {failover} ms: {r:?}");
        assert!(r.acked > 0, "{r:?}");
    }
}

#[test]
fn a_rolling_restart_never_leaves_the_partition_without_a_leader_for_long() {
    let reports = sweep(
        |c| {
            c.faults = false;
            c.loss = 0.0;
            c.chaos_ms = 20_000;
            c.settle_ms = 5_000;
            c.rolling_restart = true;
        },
        20,
    );
    for r in &reports {
        assert_eq!(r.rolled, 3, "the rolling restart did not finish: {r:?}");
        // Only the hand-over itself: one controller message and a fetch, never a session timeout.
        assert!(r.longest_leaderless_after_start_ms <= 100, "{r:?}");
        assert_eq!(r.not_enough_replicas, 0, "{r:?}");
    }
}
