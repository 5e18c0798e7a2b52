//! A batch job over a stored range: the most frequent keys (or values, for records without keys)
//! of a topic.
//!
//! ```text
//! top_keys --brokers 127.0.0.1:9092 --topic word-counts --n 10
//! top_keys --brokers 127.0.0.1:9092 --topic ad-events --from-ms 1700000000000 --until-ms 1700000060000
//! ```

use anyhow::Result;
use clap::Parser;
use sluice_stream::batch_job::{BatchContext, Bound};

#[derive(Parser)]
#[command(about = "The most frequent keys of a topic's stored range")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long)]
    topic: String,
    /// How many keys to show.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Start at this timestamp (epoch ms) instead of the earliest offset.
    #[arg(long)]
    from_ms: Option<i64>,
    /// End at this timestamp (epoch ms) instead of the latest offset.
    #[arg(long)]
    until_ms: Option<i64>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let bc = BatchContext::new(&args.brokers, None)?;
    let from = args.from_ms.map_or(Bound::Earliest, Bound::Timestamp);
    let until = args.until_ms.map_or(Bound::Latest, Bound::Timestamp);
    let records = bc.read_topic(&args.topic, from, until)?;
    let top = records
        .map(|r| {
            let k = r.key.or(r.value).unwrap_or_default();
            (String::from_utf8_lossy(&k).into_owned(), 1u64)
        })
        .reduce_by_key(|a, b| a + b)
        .sort_by(|(k, n)| (std::cmp::Reverse(*n), k.clone()), true, 1)?
        .take(args.n)?;
    for (k, n) in top {
        println!("{n}\t{k}");
    }
    Ok(())
}
