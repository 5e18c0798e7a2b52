//! Storage benchmark: `cargo bench -p sluice-broker --bench log`.
//!
//! Prints the four figures of the storage issue as a table:
//! 1. append throughput of 1 MiB batches without fsync (in-process, page cache);
//! 2. append throughput with group-commit fsync from 4 concurrent writers, next to what
//!    `fio --name=w --rw=write --bs=1M --size=1G --ioengine=psync --fdatasync=1` reports on the same
//!    disk, run just before;
//! 3. sequential read throughput from the page cache (1 MiB fetch budget per read, CRC-checked);
//! 4. recovery time of a 1 GiB log after an unclean shutdown (files in the page cache).
//!
//! `SLUICE_BENCH_DIR` picks the directory (default: a temp dir under the current directory, so the
//! disk is the one the data dir would use); `SLUICE_BENCH_GIB` the log size (default 1).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_broker::log::recovery;
use sluice_broker::log::storage::{Directory, FileDirectory};
use sluice_broker::log::{Durability, LogConfig, Partition, SystemClock};
use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};

const MIB: usize = 1024 * 1024;

fn one_mib_batch() -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(BatchOptions::default(), MIB + 4096);
    let value = vec![0x5a; 1000];
    let mut i = 0u64;
    while b.estimated_bytes() + 1100 < MIB {
        b.append(1_700_000_000_000, Some(&i.to_be_bytes()), Some(&value), &[])
            .expect("record fits");
        i += 1;
    }
    b.finish().expect("batch builds")
}

fn config() -> LogConfig {
    let p: BTreeMap<String, String> = [("max.message.bytes", "4194304")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_props(&p).expect("valid bench config")
}

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn fio(dir: &Path) -> Option<f64> {
    let out = Command::new("fio")
        .args([
            "--name=w",
            "--rw=write",
            "--bs=1M",
            "--size=1G",
            "--ioengine=psync",
            "--fdatasync=1",
            "--output-format=json",
        ])
        .arg(format!("--directory={}", dir.display()))
        .output()
        .ok()?;
    let _ = std::fs::remove_file(dir.join("w.0.0"));
    let text = String::from_utf8_lossy(&out.stdout);
    // jobs[0].write.bw_bytes, without pulling a JSON parser into the bench.
    let at = text.find("\"write\"")?;
    let rest = &text[at..];
    let bw = rest.find("\"bw_bytes\"")?;
    let num: String = rest[bw + 10..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    num.parse::<f64>().ok().map(|b| b / 1e9)
}

fn main() -> anyhow::Result<()> {
    let base = std::env::var("SLUICE_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let gib: usize = std::env::var("SLUICE_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::tempdir_in(&base)?;
    let batch = one_mib_batch();
    let n = gib * 1024;
    let total = (batch.len() * n) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clock = Arc::new(SystemClock);

    // 1. Append without fsync.
    let dir_a = tmp.path().join("append-0");
    let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(&dir_a)?);
    let mut log = recovery::open(d, config(), 0)?;
    let t = Instant::now();
    for _ in 0..n {
        log.append_leader(&batch, 0, 0)?;
    }
    let append_secs = t.elapsed().as_secs_f64();
    let segments = log.segments().count();
    drop(log); // no close: an unclean shutdown for step 4

    // 3. Sequential read from the page cache through the partition handle.
    let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(&dir_a)?);
    let t = Instant::now();
    let log = recovery::open(d, config(), 0)?;
    let recovery_secs = t.elapsed().as_secs_f64();
    let end = log.log_end_offset();
    let p = Partition::new("bench", 0, log, clock.clone());
    let mut read_bytes = 0u64;
    let t = Instant::now();
    for _ in 0..3 {
        let mut offset = 0;
        while offset < end {
            let r = p.read(offset, MIB, i64::MAX)?;
            read_bytes += r.bytes as u64;
            offset = r.next_offset;
        }
    }
    let read_secs = t.elapsed().as_secs_f64();
    drop(p);

    // 2. fio, then 4 writers with group commit.
    let fio_gbps = fio(tmp.path());
    let dir_b = tmp.path().join("durable-0");
    let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(&dir_b)?);
    let p = Partition::new("bench", 1, recovery::open(d, config(), 0)?, clock.clone());
    let per_writer = 256usize;
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = p.clone();
            let batch = batch.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_writer {
                    p.append(batch.clone(), 0, Durability::Durable).await?;
                }
                Ok::<_, sluice_broker::log::LogError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let durable_secs = t.elapsed().as_secs_f64();
    let durable_bytes = (batch.len() * per_writer * 4) as u64;
    let durable_gbps = gbps(durable_bytes, durable_secs);

    println!(
        "Sluice storage benchmark ({} MiB log, {} segments, batch {} bytes)",
        total / MIB as u64,
        segments,
        batch.len()
    );
    println!("| figure | result | target |");
    println!("|---|---|---|");
    println!(
        "| append 1 MiB batches, no fsync | {:.2} GB/s | >= 1.5 GB/s |",
        gbps(total, append_secs)
    );
    match fio_gbps {
        Some(f) => {
            println!("| fio psync bs=1M fdatasync=1 (same disk, just before) | {f:.3} GB/s | reference |");
            println!("| append, 4 writers, group-commit fdatasync | {durable_gbps:.3} GB/s ({:.0}% of fio) | >= 80% of fio |", 100.0 * durable_gbps / f);
        }
        None => println!("| append, 4 writers, group-commit fdatasync | {durable_gbps:.3} GB/s (fio not available) | >= 80% of fio |"),
    }
    println!(
        "| sequential read, page cache, 1 MiB reads, CRC-checked | {:.2} GB/s | >= 3 GB/s |",
        gbps(read_bytes, read_secs)
    );
    println!(
        "| recovery of a {} MiB log after unclean shutdown | {:.3} s | < 1 s |",
        total / MIB as u64,
        recovery_secs
    );
    Ok(())
}
