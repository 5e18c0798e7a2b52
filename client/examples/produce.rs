//! Produce records and wait for their acknowledgements.
//!
//! ```sh
//! sluice topic create greetings --partitions 3
//! cargo run -p sluice-client --example produce -- 127.0.0.1:9092 greetings 1000
//! ```

use sluice_client::{Producer, ProducerConfig, ProducerRecord};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "greetings".into());
    let count: usize = args.next().map_or(Ok(1000), |n| n.parse())?;

    let producer = Producer::new(ProducerConfig::new(&brokers)).await?;
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("user-{}", i % 10);
        let value = format!("hello #{i}");
        let headers = [("source", Some(&b"example"[..]))];
        let record = ProducerRecord::new(&topic, value.as_bytes())
            .with_key(key.as_bytes())
            .with_headers(&headers);
        // `send` returns as soon as the record is in a batch; the delivery resolves on the ack.
        deliveries.push(producer.send(record).await?);
    }
    let last = deliveries.pop();
    producer.close().await?; // sends what is buffered and waits for every acknowledgement
    if let Some(d) = last {
        let m = d.await?;
        println!("last record: partition {} offset {}", m.partition, m.offset);
    }
    Ok(())
}
