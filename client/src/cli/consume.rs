//! `sluice consume TOPIC`: print records, one per line by default.
//!
//! Assigns every partition of the topic (or `--partition N`), seeks each to the start position
//! (`--from-beginning`, `--offset`, default: the end), then polls and renders each record with the
//! `--format` or as `--json`, writing through one buffered stdout flushed after every poll so a
//! live tail shows records at once. `--count N` stops after N records; `--exit-at-end` stops once
//! every partition has been read up to its high watermark.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use super::args::OffsetSpec;
use super::format::{render_json, Format};
use super::progress::Progress;
use super::Global;
use crate::config::{ConsumerConfig, OffsetReset};
use crate::consumer::{Consumer, SeekTo};

/// Arguments of `sluice consume`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice consume orders --from-beginning --exit-at-end\n  sluice consume orders --offset -10 --format '%p/%o %k=%v\\n'\n  sluice consume orders --partition 0 --offset @1700000000000 --count 5 --json\n\nFormat placeholders: %k key, %v value, %p partition, %o offset, %t topic,\n%T timestamp (ms), %h headers (k=v,...), %K/%S key/value length, %% percent; escapes \\n \\t \\r \\\\."
)]
pub struct ConsumeArgs {
    /// The topic to read
    pub topic: String,
    /// Start at the earliest stored offset (same as --offset start)
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Where to start: start, end, an offset N, -N (N before the end) or @TIMESTAMP_MS
    #[arg(long, short = 'o', allow_hyphen_values = true)]
    pub offset: Option<OffsetSpec>,
    /// Read only this partition
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Stop after N records
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// Output format with kcat-style placeholders (default '%v\n')
    #[arg(long, short = 'f', conflicts_with = "json")]
    pub format: Option<String>,
    /// Print one JSON object per record
    #[arg(long)]
    pub json: bool,
    /// Stop once every partition has been read to its end
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    /// Consume as a member of this group: resume from its committed offsets, commit as you go
    #[arg(long, short = 'g')]
    pub group: Option<String>,
}

/// Runs `sluice consume`.
pub async fn run(global: &Global, args: ConsumeArgs) -> anyhow::Result<()> {
    if let Some(group) = &args.group {
        return crate::group::cli::consume(global, &args, group).await;
    }
    let format = match &args.format {
        Some(f) => Format::parse(f)?,
        None => Format::parse("%v\\n")?,
    };
    let mut config = ConsumerConfig::new(&global.brokers);
    config.client = global.client_config();
    if args.exit_at_end {
        config.fetch_max_wait = Duration::from_millis(100);
    }
    // A position retention removed (or a log cut below it) moves on, as kcat's does: to the
    // oldest record when reading from the beginning, else to the end.
    config.auto_offset_reset = Some(if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    });
    let start = if args.from_beginning {
        OffsetSpec::Beginning
    } else {
        args.offset.unwrap_or(OffsetSpec::End)
    };
    let seek = match start {
        OffsetSpec::Beginning => SeekTo::Beginning,
        OffsetSpec::End => SeekTo::End,
        OffsetSpec::At(o) => SeekTo::Offset(o),
        OffsetSpec::BeforeEnd(n) => SeekTo::BeforeEnd(n),
        OffsetSpec::Timestamp(ts) => SeekTo::Timestamp(ts),
    };
    let mut consumer = Consumer::new(config)
        .await
        .context("cannot start the consumer")?;
    let partitions = match args.partition {
        Some(p) => vec![p],
        None => consumer
            .partitions_for(&args.topic)
            .await
            .with_context(|| format!("cannot read topic {}", args.topic))?,
    };
    let assignment: Vec<(String, i32)> = partitions
        .iter()
        .map(|&p| (args.topic.clone(), p))
        .collect();
    consumer
        .assign(&assignment)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    for &p in &partitions {
        consumer
            .seek(&args.topic, p, seek)
            .await
            .with_context(|| format!("cannot seek {}/{p}", args.topic))?;
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(4096);
    let mut progress = Progress::new("consumed");
    let mut printed = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    while printed < limit {
        if args.exit_at_end && consumer.at_end() {
            break;
        }
        let records = consumer.poll(Duration::from_millis(500)).await?;
        let mut bytes = 0u64;
        for r in records.iter().take((limit - printed) as usize) {
            buf.clear();
            if args.json {
                render_json(r, &mut buf);
                buf.push(b'\n');
            } else {
                format.render(r, &mut buf);
            }
            bytes += buf.len() as u64;
            if let Err(e) = out.write_all(&buf) {
                return broken_pipe_or(e);
            }
            printed += 1;
        }
        if let Err(e) = out.flush() {
            return broken_pipe_or(e);
        }
        progress.add(records.len().min(limit as usize) as u64, bytes);
    }
    progress.finish();
    Ok(())
}

/// A closed pipe (`sluice consume | head`) ends the command quietly; other write errors fail it.
fn broken_pipe_or(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("cannot write to stdout")
    }
}
