//! `sluice topic create|list|describe|delete`.

use anyhow::Context;
use clap::Subcommand;

use super::args::KeyValue;
use super::Global;
use crate::admin::{Admin, NewTopic, TopicDescription};

/// Topic administration.
#[derive(Debug, Subcommand)]
#[command(
    after_help = "Example:\n  sluice topic create orders --partitions 3 --config retention.ms=86400000"
)]
pub enum TopicCommand {
    /// Create a topic
    #[command(
        after_help = "Example:\n  sluice topic create orders --partitions 3 --replicas 1 --config cleanup.policy=compact"
    )]
    Create {
        /// The topic's name
        name: String,
        /// Number of partitions
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        /// Replication factor
        #[arg(long, short = 'r', default_value_t = 1)]
        replicas: i16,
        /// A topic config, key=value (repeatable), e.g. retention.ms=3600000
        #[arg(long, short = 'c', value_name = "KEY=VALUE")]
        config: Vec<KeyValue>,
    },
    /// List topics
    #[command(
        after_help = "Examples:\n  sluice topic list --json\n  sluice topic list --internal   # with __consumer_offsets"
    )]
    List {
        /// One JSON object per topic instead of names
        #[arg(long)]
        json: bool,
        /// Include internal topics (`__consumer_offsets`), as rpk's `-i`
        #[arg(short = 'i', long)]
        internal: bool,
    },
    /// Describe a topic: partitions, leader, replicas, ISR, start and end offsets, configs
    #[command(after_help = "Example:\n  sluice topic describe orders")]
    Describe {
        /// The topic's name
        name: String,
        /// A JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Set or remove topic configs, keeping the others
    #[command(
        after_help = "Example:\n  sluice topic alter orders --config retention.ms=3600000 --delete-config cleanup.policy"
    )]
    Alter {
        /// The topic's name
        name: String,
        /// A config to set, key=value (repeatable)
        #[arg(long, short = 'c', value_name = "KEY=VALUE")]
        config: Vec<KeyValue>,
        /// A config to return to its default (repeatable)
        #[arg(long, value_name = "KEY")]
        delete_config: Vec<String>,
    },
    /// Delete a topic and its data
    #[command(after_help = "Example:\n  sluice topic delete orders")]
    Delete {
        /// The topic's name
        name: String,
    },
    /// Delete the records before an offset (Kafka's DeleteRecords): moves the log start up
    #[command(
        visible_alias = "delete-records",
        after_help = "Examples:\n  sluice topic trim-prefix orders --offset 1000 --partitions 0,2\n  sluice topic trim-prefix orders --offset end   # every record of every partition"
    )]
    TrimPrefix {
        /// The topic's name
        name: String,
        /// The new first offset: records before it are deleted (`end`: all of them)
        #[arg(long, short = 'o', value_parser = parse_trim_offset)]
        offset: i64,
        /// The partitions, comma-separated (default: all)
        #[arg(long, short = 'p', value_delimiter = ',')]
        partitions: Vec<i32>,
    },
}

/// `--offset` of trim-prefix: a non-negative offset, or `end` (-1, the high watermark).
fn parse_trim_offset(s: &str) -> Result<i64, String> {
    match s {
        "end" => Ok(-1),
        _ => s
            .parse::<i64>()
            .ok()
            .filter(|&o| o >= 0)
            .ok_or_else(|| format!("{s:?} is not an offset (a number >= 0, or `end`)")),
    }
}

/// Runs a topic command.
pub async fn run(global: &Global, cmd: TopicCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(global.client_config())
        .await
        .context("cannot reach the cluster")?;
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replicas,
            config,
        } => {
            let topic = NewTopic {
                name: name.clone(),
                partitions,
                replication_factor: replicas,
                configs: config.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            };
            admin
                .create_topic(&topic)
                .await
                .with_context(|| format!("cannot create topic {name}"))?;
            eprintln!("created topic {name} with {partitions} partition(s)");
        }
        TopicCommand::List { json, internal } => {
            let topics = admin.list_topics().await.context("cannot list topics")?;
            for t in topics.into_iter().filter(|t| internal || !t.internal) {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"name": t.name, "partitions": t.partitions, "internal": t.internal})
                    );
                } else {
                    println!("{}", t.name);
                }
            }
        }
        TopicCommand::Describe { name, json } => {
            let d = admin
                .describe_topic(&name)
                .await
                .with_context(|| format!("cannot describe topic {name}"))?;
            if json {
                println!("{}", describe_json(&d));
            } else {
                print!("{}", describe_table(&d));
            }
        }
        TopicCommand::Alter {
            name,
            config,
            delete_config,
        } => {
            if config.is_empty() && delete_config.is_empty() {
                anyhow::bail!("nothing to change: give --config KEY=VALUE or --delete-config KEY");
            }
            let set: Vec<(String, String)> =
                config.into_iter().map(|kv| (kv.key, kv.value)).collect();
            admin
                .update_topic_configs(&name, &set, &delete_config)
                .await
                .with_context(|| format!("cannot alter topic {name}"))?;
            eprintln!("altered topic {name}");
        }
        TopicCommand::TrimPrefix {
            name,
            offset,
            partitions,
        } => {
            let partitions = if partitions.is_empty() {
                let d = admin
                    .describe_topic(&name)
                    .await
                    .with_context(|| format!("cannot describe topic {name}"))?;
                d.partitions.iter().map(|p| p.partition).collect()
            } else {
                partitions
            };
            let asked: Vec<(i32, i64)> = partitions.iter().map(|&p| (p, offset)).collect();
            let results = admin
                .delete_records(&name, &asked)
                .await
                .with_context(|| format!("cannot delete records of {name}"))?;
            println!("PARTITION  NEW-START  ERROR");
            let mut failed = 0;
            for (partition, result) in results {
                match result {
                    Ok(start) => println!("{partition:<9}  {start:<9}  -"),
                    Err(e) => {
                        failed += 1;
                        println!("{partition:<9}  {:<9}  {e}", "-");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} partition(s) of {name} kept their records");
            }
        }
        TopicCommand::Delete { name } => {
            admin
                .delete_topic(&name)
                .await
                .with_context(|| format!("cannot delete topic {name}"))?;
            eprintln!("deleted topic {name}");
        }
    }
    Ok(())
}

fn list(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The describe table: a header line, one row per partition, then the configs.
pub fn describe_table(d: &TopicDescription) -> String {
    let mut rows = vec![[
        "PARTITION".to_string(),
        "LEADER".to_string(),
        "REPLICAS".to_string(),
        "ISR".to_string(),
        "START".to_string(),
        "END".to_string(),
    ]];
    for p in &d.partitions {
        rows.push([
            p.partition.to_string(),
            p.leader.to_string(),
            list(&p.replicas),
            list(&p.isr),
            p.start_offset.map_or("-".into(), |o| o.to_string()),
            p.end_offset.map_or("-".into(), |o| o.to_string()),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!("topic {} ({} partitions)\n", d.name, d.partitions.len());
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if !d.configs.is_empty() {
        out.push_str("configs:\n");
        for (k, v) in &d.configs {
            out.push_str(&format!("  {k}={v}\n"));
        }
    }
    out
}

fn describe_json(d: &TopicDescription) -> serde_json::Value {
    let partitions: Vec<serde_json::Value> = d
        .partitions
        .iter()
        .map(|p| {
            serde_json::json!({
                "partition": p.partition, "leader": p.leader, "replicas": p.replicas,
                "isr": p.isr, "start_offset": p.start_offset, "end_offset": p.end_offset,
            })
        })
        .collect();
    let configs: serde_json::Map<String, serde_json::Value> = d
        .configs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({"name": d.name, "partitions": partitions, "configs": configs})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PartitionDescription;

    #[test]
    fn describe_renders_an_aligned_table() {
        let d = TopicDescription {
            name: "orders".into(),
            partitions: vec![
                PartitionDescription {
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    start_offset: Some(0),
                    end_offset: Some(1234),
                },
                PartitionDescription {
                    partition: 1,
                    leader: 2,
                    replicas: vec![2, 1],
                    isr: vec![2],
                    start_offset: None,
                    end_offset: None,
                },
            ],
            configs: vec![("retention.ms".into(), "1000".into())],
        };
        let want = "topic orders (2 partitions)\n\
                    PARTITION  LEADER  REPLICAS  ISR  START  END\n\
                    0          1       1,2       1,2  0      1234\n\
                    1          2       2,1       2    -      -\n\
                    configs:\n  retention.ms=1000\n";
        assert_eq!(describe_table(&d), want);
        assert_eq!(describe_json(&d)["partitions"][0]["end_offset"], 1234);
    }
}
