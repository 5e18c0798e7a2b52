//! Create a topic, describe it, change a config, and delete it.
//!
//! ```sh
//! cargo run -p sluice-client --example admin -- 127.0.0.1:9092
//! ```

use sluice_client::{Admin, ClientConfig, NewTopic};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let brokers = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let admin = Admin::connect(ClientConfig::new(&brokers)).await?;

    let mut topic = NewTopic::new("admin-example", 3);
    topic
        .configs
        .push(("retention.ms".into(), "3600000".into()));
    admin.create_topic(&topic).await?;

    for t in admin.list_topics().await? {
        println!("topic {} ({} partitions)", t.name, t.partitions);
    }
    let d = admin.describe_topic("admin-example").await?;
    for p in &d.partitions {
        println!(
            "partition {} leader {} replicas {:?} isr {:?} offsets {:?}..{:?}",
            p.partition, p.leader, p.replicas, p.isr, p.start_offset, p.end_offset
        );
    }
    admin
        .alter_topic_configs(
            "admin-example",
            &[("retention.ms".into(), "7200000".into())],
        )
        .await?;
    println!("configs: {:?}", admin.topic_configs("admin-example").await?);
    println!(
        "latest offset of partition 0: {}",
        admin.latest_offset("admin-example", 0).await?
    );
    admin.delete_topic("admin-example").await?;
    Ok(())
}
