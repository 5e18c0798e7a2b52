//! `sluice produce TOPIC`: one record per stdin line.
//!
//! Lines are read into one reused buffer; the trailing `\n` (and a `\r` before it) is removed; with
//! `--key-separator` the key is the part before the first separator (a line without it has a null
//! key). Records are sent without waiting for each acknowledgement; at the end the producer is
//! flushed and the acknowledged count is reported on stderr. Any failure makes the exit non-zero.

use std::collections::VecDeque;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::args::{AcksArg, KeyValue};
use super::progress::Progress;
use super::Global;
use crate::config::{CompressionType, ProducerConfig};
use crate::message::ProducerRecord;
use crate::producer::{Delivery, Producer};

/// Arguments of `sluice produce`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  printf 'hello\\nworld\\n' | sluice produce greetings\n  printf 'user1:clicked\\n' | sluice produce events --key-separator : --header source=cli --acks all"
)]
pub struct ProduceArgs {
    /// The topic to write to
    pub topic: String,
    /// Split each line into key and value at the first occurrence of SEP
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Write every record to this partition (default: by key hash, sticky when keyless)
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Acknowledgement level: all, 1 or 0
    #[arg(long, default_value = "all")]
    pub acks: AcksArg,
    /// A header added to every record, key=value (repeatable)
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    pub headers: Vec<KeyValue>,
    /// Compression: none, lz4 or gzip
    #[arg(long, default_value = "none")]
    pub compression: CompressionType,
    /// How long a batch waits for more records, in milliseconds
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
}

/// Runs `sluice produce`.
pub async fn run(global: &Global, args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::new(&global.brokers);
    config.client = global.client_config();
    config.client.allow_auto_topic_creation = true;
    config.acks = args.acks.0;
    config.idempotence = args.acks.0 != crate::config::Acks::None;
    config.compression = args.compression;
    config.linger = std::time::Duration::from_millis(args.linger_ms);
    // A CLI user waits for the answer: give up on a record after the request timeout.
    config.delivery_timeout = config.client.request_timeout;
    let producer = Producer::new(config)
        .await
        .context("cannot start the producer")?;

    let header_pairs: Vec<(&str, Option<&[u8]>)> = args
        .headers
        .iter()
        .map(|kv| (kv.key.as_str(), Some(kv.value.as_bytes())))
        .collect();
    let mut outcome = Outcome::default();
    let mut pending: VecDeque<Delivery> = VecDeque::new();
    let mut progress = Progress::new("produced");
    let mut stdin = BufReader::with_capacity(1 << 20, tokio::io::stdin());
    let mut line = Vec::with_capacity(4096);
    let mut send_error = None;
    loop {
        line.clear();
        let n = stdin
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read stdin")?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let (key, value) = split_key(&line, args.key_separator.as_deref());
        let mut record = ProducerRecord::new(&args.topic, value).with_headers(&header_pairs);
        record.key = key;
        record.partition = args.partition;
        match producer.send(record).await {
            Ok(delivery) => {
                outcome.sent += 1;
                pending.push_back(delivery);
                if pending.len() >= PENDING_DELIVERIES_MAX {
                    if let Some(d) = pending.pop_front() {
                        outcome.settle(d.await);
                    }
                }
            }
            Err(e) => {
                send_error = Some(e);
                break;
            }
        }
        progress.add(1, n as u64);
    }
    let close = producer.close().await;
    for d in pending {
        outcome.settle(d.await);
    }
    progress.finish();
    eprintln!(
        "{} of {} record(s) acknowledged by {}",
        outcome.acked, outcome.sent, args.topic
    );
    if let Some(e) = send_error {
        return Err(e).context("cannot send");
    }
    close.context("cannot deliver every record")?;
    if outcome.acked < outcome.sent {
        anyhow::bail!(
            "{} record(s) were not acknowledged: {}",
            outcome.sent - outcome.acked,
            outcome
                .first_error
                .unwrap_or_else(|| "unknown cause".into())
        );
    }
    Ok(())
}

/// Deliveries awaited in order once this many are outstanding, bounding the CLI's memory.
const PENDING_DELIVERIES_MAX: usize = 100_000;

#[derive(Default)]
struct Outcome {
    sent: u64,
    acked: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn settle(&mut self, r: Result<crate::message::RecordMetadata, crate::error::ProduceError>) {
        match r {
            Ok(_) => self.acked += 1,
            Err(e) => {
                self.first_error.get_or_insert(e.to_string());
            }
        }
    }
}

/// Splits a line into key and value at the first `sep`; no separator means a null key.
pub fn split_key<'a>(line: &'a [u8], sep: Option<&str>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = sep.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_key(b"k::v", Some("::")), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_key(b":v", Some(":")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"nokey", Some(":")), (None, &b"nokey"[..]));
        assert_eq!(split_key(b"a:b", None), (None, &b"a:b"[..]));
        assert_eq!(split_key(b"a\tb", Some("\t")), (Some(&b"a"[..]), &b"b"[..]));
    }
}
