//! Measure one producer task and one consumer against a broker: N records of S bytes with acks=1,
//! then read them all back. A quick check of the library's speed, not the `sluice bench` suite.
//!
//! ```sh
//! sluice topic create perf --partitions 2
//! cargo run --release -p sluice-client --example throughput -- 127.0.0.1:9092 perf 1000000 1000
//! ```

use std::time::{Duration, Instant};

use sluice_client::{
    Acks, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, SeekTo,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let brokers = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.get(1).cloned().unwrap_or_else(|| "perf".into());
    let count: u64 = args.get(2).map_or(Ok(1_000_000), |a| a.parse())?;
    let size: usize = args.get(3).map_or(Ok(1000), |a| a.parse())?;

    let mut config = ProducerConfig::new(&brokers);
    config.acks = Acks::Leader;
    config.batch_size = 1024 * 1024;
    config.buffer_memory = 256 * 1024 * 1024;
    let producer = Producer::new(config).await?;
    let value = vec![b'x'; size];
    let start = Instant::now();
    for _ in 0..count {
        // Deliveries are dropped: close() below waits for every acknowledgement.
        drop(producer.send(ProducerRecord::new(&topic, &value)).await?);
    }
    producer.close().await?;
    let secs = start.elapsed().as_secs_f64();
    let mb = (count as f64 * size as f64) / 1e6;
    println!(
        "produce: {count} records in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        count as f64 / secs,
        mb / secs
    );

    let mut consumer = Consumer::new(ConsumerConfig::new(&brokers)).await?;
    let partitions = consumer.partitions_for(&topic).await?;
    let assignment: Vec<(String, i32)> = partitions.iter().map(|&p| (topic.clone(), p)).collect();
    consumer.assign(&assignment).await?;
    for &p in &partitions {
        consumer.seek(&topic, p, SeekTo::Beginning).await?;
    }
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    while !consumer.at_end() {
        for r in consumer.poll(Duration::from_millis(500)).await? {
            n += 1;
            bytes += r.value.map_or(0, |v| v.len() as u64);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "consume: {n} records in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        n as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
