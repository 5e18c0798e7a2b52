//! Storage benchmark: `cargo bench -p sluice-broker --bench log`.
//!
//! Prints the four figures of the storage issue as a table:
//! 1. append throughput of 1 MiB batches without fsync (in-process, page cache), once into fresh
//!    memory and once into recycled page-cache memory;
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

/// CPU seconds (user + system) used by this process so far.
fn cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete `rusage` into the pointer it is given; on failure the
    // zeroed value is read, which is a valid `rusage`.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, f64)> {
    let (t, c) = (Instant::now(), cpu_secs());
    let r = f()?;
    Ok((r, t.elapsed().as_secs_f64(), cpu_secs() - c))
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
    let at = text.find("\"write\" : {")?;
    let rest = &text[at..];
    let bw = rest.find("\"bw_bytes\"")?;
    let num: String = rest[bw + 10..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    num.parse::<f64>().ok().map(|b| b / 1e9)
}

fn row(name: &str, bytes: u64, wall: f64, cpu: f64, target: &str) {
    println!(
        "| {name} | {:.2} GB/s | {:.2} GB/s | {target} |",
        gbps(bytes, wall),
        gbps(bytes, cpu)
    );
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
    let append_all = |dir: &Path| -> anyhow::Result<usize> {
        let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(dir)?);
        let mut log = recovery::open(d, config(), 0)?;
        for _ in 0..n {
            log.append_leader(&batch, 0, 0)?;
        }
        Ok(log.segments().count())
        // dropped without close: an unclean shutdown, for the recovery figure
    };

    // 1. Append without fsync, on the data disk and (when present) on tmpfs, which shows the log's
    // own cost without the kernel's writeback throttling.
    // The first pass writes into memory the VM has never touched (or has handed back to the
    // host), and each new page-cache page then costs a host page fault: `dd` shows the same
    // (about 1 GB/s the first time, 5 GB/s right after). The second pass, started as soon as the
    // first log is deleted, reuses those pages, as a long-running broker's page cache does.
    let cold_dir = tmp.path().join("append-cold");
    let (_, cold_wall, cold_cpu) = timed(|| append_all(&cold_dir))?;
    std::fs::remove_dir_all(&cold_dir)?;
    let dir_a = tmp.path().join("append-0");
    let (segments, append_wall, append_cpu) = timed(|| append_all(&dir_a))?;
    let shm = Path::new("/dev/shm");
    let tmpfs = if shm.is_dir() {
        let t_dir = tempfile::tempdir_in(shm)?;
        let (_, wall, cpu) = timed(|| append_all(&t_dir.path().join("append-0")))?;
        Some((wall, cpu))
    } else {
        None
    };

    // 4. Recovery of that log after the unclean shutdown (full CRC scan: no recovery point yet).
    let (log, recovery_wall, recovery_cpu) = timed(|| {
        let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(&dir_a)?);
        Ok(recovery::open(d, config(), 0)?)
    })?;

    // 3. Sequential read from the page cache through the partition handle, 1 MiB per read.
    let end = log.log_end_offset();
    let p = Partition::new("bench", 0, log, clock.clone(), Arc::default());
    let (read_bytes, read_wall, read_cpu) = timed(|| {
        let mut bytes = 0u64;
        for _ in 0..3 {
            let mut offset = 0;
            while offset < end {
                let r = p.read(offset, MIB, i64::MAX)?;
                bytes += r.bytes as u64;
                offset = r.next_offset;
            }
        }
        Ok(bytes)
    })?;
    drop(p);

    // 2. fio just before, then 4 writers with group commit (acks=all durability).
    let fio_gbps = fio(tmp.path());
    let dir_b = tmp.path().join("durable-0");
    let d: Arc<dyn Directory> = Arc::new(FileDirectory::create(&dir_b)?);
    let p = Partition::new(
        "bench",
        1,
        recovery::open(d, config(), 0)?,
        clock.clone(),
        Arc::default(),
    );
    let per_writer = 256usize;
    let (_, durable_wall, durable_cpu) = timed(|| {
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
            Ok(())
        })
    })?;
    let durable_bytes = (batch.len() * per_writer * 4) as u64;
    let durable_gbps = gbps(durable_bytes, durable_wall);

    println!(
        "Sluice storage benchmark: {} MiB log ({segments} segment(s)), 1 MiB batches ({} bytes)",
        total / MIB as u64,
        batch.len()
    );
    println!("| figure | wall-clock rate | per CPU-second | target |");
    println!("|---|---|---|---|");
    row(
        "append 1 MiB batches, no fsync (data disk, first touch of VM memory)",
        total,
        cold_wall,
        cold_cpu,
        "(host page faults)",
    );
    row(
        "append 1 MiB batches, no fsync (data disk)",
        total,
        append_wall,
        append_cpu,
        ">= 1.5 GB/s",
    );
    if let Some((wall, cpu)) = tmpfs {
        row(
            "append 1 MiB batches, no fsync (tmpfs, fresh memory)",
            total,
            wall,
            cpu,
            "(host page faults too)",
        );
    }
    match fio_gbps {
        Some(f) => {
            println!("| fio psync bs=1M fdatasync=1, same disk, just before | {f:.3} GB/s | | reference |");
            println!(
                "| append, 4 writers, group-commit fdatasync | {durable_gbps:.3} GB/s = {:.0}% of fio | {:.2} GB/s | >= 80% of fio |",
                100.0 * durable_gbps / f,
                gbps(durable_bytes, durable_cpu)
            );
        }
        None => row(
            "append, 4 writers, group-commit fdatasync (fio missing)",
            durable_bytes,
            durable_wall,
            durable_cpu,
            ">= 80% of fio",
        ),
    }
    row(
        "sequential read, page cache, 1 MiB reads, CRC-checked",
        read_bytes,
        read_wall,
        read_cpu,
        ">= 3 GB/s",
    );
    println!("| recovery of the {} MiB log, unclean shutdown | {recovery_wall:.3} s | {recovery_cpu:.3} CPU-s | < 1 s |", total / MIB as u64);
    Ok(())
}
