//! Running word counts: reads lines from a topic, keeps a count per word with
//! `update_state_by_key`, and writes `word -> count` updates (keyed by word) for the words seen in
//! each batch, exactly once across restarts.
//!
//! ```text
//! wordcount --brokers 127.0.0.1:9092 --input lines --output word-counts --batch-ms 1000
//! ```

use anyhow::Result;
use clap::Parser;
use sluice_stream::log::OutRecord;
use sluice_stream::streaming::{StreamConfig, StreamingContext};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Running word counts over a topic")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long)]
    input: String,
    #[arg(long)]
    output: String,
    #[arg(long, default_value_t = 1000)]
    batch_ms: u64,
    /// Job id (names the progress topics; the same id resumes).
    #[arg(long, default_value = "wordcount")]
    job_id: String,
    /// Stop gracefully after this long without input.
    #[arg(long)]
    stop_when_idle: Option<u64>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut config = StreamConfig::new(&args.brokers, &args.job_id);
    config.stop_when_idle = args.stop_when_idle.map(Duration::from_millis);
    let ssc = StreamingContext::new(config, Duration::from_millis(args.batch_ms))?;
    ssc.log()
        .ensure_topic(&args.output, ssc.log().partitions(&args.input)?, &[])?;
    let words = ssc
        .topic_stream(&[args.input.as_str()])?
        .flat_map(|r| {
            let line = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            line.split_whitespace()
                .map(|w| (w.to_lowercase(), 1u64))
                .collect::<Vec<_>>()
        })
        .reduce_by_key(|a, b| a + b);
    let totals = words.update_state_by_key(
        |new: Vec<u64>, old: Option<u64>| Some(old.unwrap_or(0) + new.iter().sum::<u64>()),
        None,
    );
    // Only the words of this batch: their new totals.
    let updates = totals.join(&words).map(|(w, (total, _))| (w, total));
    updates.to_topic(&args.output, |(w, n)| OutRecord::new(w, n.to_string()))?;
    updates.print(10);
    ssc.start()?;
    let summary = ssc.await_termination()?;
    eprintln!("wordcount: {summary}");
    Ok(())
}
