//! Consume every partition of a topic from the beginning until caught up.
//!
//! ```sh
//! cargo run -p sluice-client --example consume -- 127.0.0.1:9092 greetings
//! ```

use std::time::Duration;

use sluice_client::{Consumer, ConsumerConfig, SeekTo};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "greetings".into());

    let mut consumer = Consumer::new(ConsumerConfig::new(&brokers)).await?;
    let partitions = consumer.partitions_for(&topic).await?;
    let assignment: Vec<(String, i32)> = partitions.iter().map(|&p| (topic.clone(), p)).collect();
    consumer.assign(&assignment).await?;
    for &p in &partitions {
        consumer.seek(&topic, p, SeekTo::Beginning).await?;
    }
    let mut n = 0u64;
    while !consumer.at_end() {
        for record in consumer.poll(Duration::from_millis(500)).await? {
            n += 1;
            let value = record.value.as_deref().unwrap_or_default();
            println!(
                "{}/{} {}",
                record.partition,
                record.offset,
                String::from_utf8_lossy(value)
            );
        }
    }
    for &p in &partitions {
        eprintln!(
            "partition {p}: high watermark {:?}, lag {:?}",
            consumer.high_watermark(&topic, p),
            consumer.lag(&topic, p)
        );
    }
    eprintln!("{n} records");
    Ok(())
}
