//! Read an exact offset range of one partition, as the stream engine does for each batch.
//!
//! ```sh
//! cargo run -p sluice-client --example read_range -- 127.0.0.1:9092 greetings 0 10 20
//! ```

use sluice_client::{Consumer, ConsumerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let brokers = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.get(1).cloned().unwrap_or_else(|| "greetings".into());
    let partition: i32 = args.get(2).map_or(Ok(0), |a| a.parse())?;
    let from: i64 = args.get(3).map_or(Ok(0), |a| a.parse())?;
    let until: i64 = args.get(4).map_or(Ok(10), |a| a.parse())?;

    let consumer = Consumer::new(ConsumerConfig::new(&brokers)).await?;
    // Exactly the records with offsets in [from, until), waiting for any not written yet.
    for record in consumer.read_range(&topic, partition, from, until).await? {
        let value = record.value.as_deref().unwrap_or_default();
        println!("{} {}", record.offset, String::from_utf8_lossy(value));
    }
    Ok(())
}
