//! Client, producer and consumer settings, with Kafka's names and defaults, validated in one place.

use std::time::Duration;

use crate::limits::{
    BATCH_BYTES_MAX, BUFFER_MEMORY_BYTES_MAX, FETCH_WAIT_MS_MAX, IN_FLIGHT_PER_PARTITION_MAX,
    PARTITION_FETCH_BYTES_MAX,
};

/// An invalid setting: which one and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    /// The setting's name (Kafka's spelling).
    pub name: &'static str,
    /// What is wrong and what is accepted.
    pub reason: String,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        reason: reason.into(),
    }
}

/// Settings shared by every client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` of one or more brokers to learn the cluster from.
    pub bootstrap: Vec<String>,
    /// `client.id`, sent with every request and shown in broker logs.
    pub client_id: String,
    /// `request.timeout.ms`: how long to wait for any response.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: how long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// `metadata.max.age.ms`: metadata older than this is refreshed before use.
    pub metadata_max_age: Duration,
    /// `retry.backoff.ms`: the first pause before retrying; doubles up to a limit.
    pub retry_backoff: Duration,
    /// `allow.auto.create.topics`: metadata requests let a broker that has auto-creation on
    /// create a missing topic (on for producers, off otherwise, as in the Java client).
    pub allow_auto_topic_creation: bool,
}

impl ClientConfig {
    /// Defaults, with the given bootstrap brokers (`"host:port,host:port"` is split on commas).
    pub fn new(bootstrap: &str) -> Self {
        ClientConfig {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            client_id: "sluice".to_string(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            metadata_max_age: Duration::from_secs(300),
            retry_backoff: Duration::from_millis(100),
            allow_auto_topic_creation: false,
        }
    }

    /// `request_timeout` as the `timeout_ms` of a request the broker may hold (Produce,
    /// CreateTopics, DeleteRecords, ...), capped at `i32::MAX`.
    pub fn request_timeout_ms(&self) -> i32 {
        self.request_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap.is_empty() {
            return Err(invalid("bootstrap.servers", "give at least one host:port"));
        }
        for b in &self.bootstrap {
            match b.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return Err(invalid(
                        "bootstrap.servers",
                        format!("{b:?} is not host:port"),
                    ))
                }
            }
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request.timeout.ms", "must be positive"));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid(
                "socket.connection.setup.timeout.ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// `acks`: how many replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no acknowledgement; offsets are unknown and losses unseen.
    None,
    /// `acks=1`: the leader appended it.
    Leader,
    /// `acks=all`: every in-sync replica has it (and, on fsync topics, it is durable).
    All,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// `compression.type` for produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// LZ4 frame format, as Kafka and librdkafka.
    Lz4,
}

impl std::str::FromStr for CompressionType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(CompressionType::None),
            "gzip" => Ok(CompressionType::Gzip),
            "lz4" => Ok(CompressionType::Lz4),
            _ => Err(format!(
                "unsupported compression {s:?}: use none, lz4 or gzip"
            )),
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Connection settings.
    pub client: ClientConfig,
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence`: the broker drops duplicates from retries and refuses reordering.
    /// Requires `acks=all` in Kafka; Sluice also allows it with `acks=1`.
    pub idempotence: bool,
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// `batch.size`: bytes at which a partition's batch is sent without waiting.
    pub batch_size: usize,
    /// `buffer.memory`: bytes of unsent records the producer holds before `send` waits.
    pub buffer_memory: usize,
    /// `max.in.flight.requests.per.connection`, applied per partition (at most 5).
    pub max_in_flight: usize,
    /// `delivery.timeout.ms`: how long a record may take from `send` to acknowledgement, retries
    /// included, before it fails.
    pub delivery_timeout: Duration,
    /// `compression.type`.
    pub compression: CompressionType,
}

impl ProducerConfig {
    /// Kafka's defaults (acks=all, idempotence on, linger 5 ms, batch 1 MiB here since Sluice
    /// targets high throughput, 64 MiB buffer), with the given bootstrap brokers.
    pub fn new(bootstrap: &str) -> Self {
        let mut client = ClientConfig::new(bootstrap);
        client.allow_auto_topic_creation = true;
        ProducerConfig {
            client,
            acks: Acks::All,
            idempotence: true,
            linger: Duration::from_millis(5),
            batch_size: 1024 * 1024,
            buffer_memory: 64 * 1024 * 1024,
            max_in_flight: IN_FLIGHT_PER_PARTITION_MAX,
            delivery_timeout: Duration::from_secs(120),
            compression: CompressionType::None,
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.client.validate()?;
        if self.batch_size == 0 || self.batch_size > BATCH_BYTES_MAX {
            return Err(invalid(
                "batch.size",
                format!("must be between 1 and {BATCH_BYTES_MAX} bytes"),
            ));
        }
        if self.buffer_memory < self.batch_size || self.buffer_memory > BUFFER_MEMORY_BYTES_MAX {
            return Err(invalid(
                "buffer.memory",
                format!("must be between batch.size and {BUFFER_MEMORY_BYTES_MAX} bytes"),
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > IN_FLIGHT_PER_PARTITION_MAX {
            return Err(invalid(
                "max.in.flight.requests.per.connection",
                format!("must be between 1 and {IN_FLIGHT_PER_PARTITION_MAX}"),
            ));
        }
        if self.idempotence && self.acks == Acks::None {
            return Err(invalid(
                "enable.idempotence",
                "needs acks=1 or acks=all (set idempotence off for acks=0)",
            ));
        }
        Ok(())
    }
}

/// `max.partition.fetch.bytes` by default: 1 MiB, as in Kafka. Larger fetches were slower here,
/// not faster: a 1 MiB response is received into a buffer that stays in the CPU's cache for the
/// CRC check and the record walk that follow, while a 16 MiB one goes through memory twice
/// (`sluice bench consume`, 2 consumers: 2.77-2.80 GB/s with 1 MiB against 2.05 GB/s with 16 MiB;
/// the library consumer 1.60-2.07 against 1.47 GB/s). A batch larger than this still comes
/// whole, alone.
pub const MAX_PARTITION_FETCH_BYTES_DEFAULT: i32 = 1024 * 1024;

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Connection settings.
    pub client: ClientConfig,
    /// `fetch.min.bytes`: the broker waits for this much data (or `fetch_max_wait`).
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`: the longest a fetch waits for `fetch_min_bytes`.
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes`: the most one fetch response carries.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: the most one partition contributes to a fetch (default
    /// [`MAX_PARTITION_FETCH_BYTES_DEFAULT`]).
    pub max_partition_fetch_bytes: i32,
    /// `check.crcs`: verify every fetched batch's CRC-32C (Kafka's default; costs a pass over the
    /// data).
    pub check_crcs: bool,
    /// `isolation.level`: read committed (1) or uncommitted (0). Sluice has no transactions, so
    /// both read the same records; control batches are always skipped.
    pub read_committed: bool,
    /// `auto.offset.reset` for a position the partition no longer (or not yet) holds: move to the
    /// earliest or latest offset, or (`None`, Kafka's `none`) report
    /// [`ConsumeError::OffsetOutOfRange`](crate::error::ConsumeError::OffsetOutOfRange). The plain
    /// consumer reports by default, so an application reading exact ranges learns what it missed;
    /// group consumers use their own setting (Kafka's default, latest).
    pub auto_offset_reset: Option<OffsetReset>,
}

/// Where a position goes when it has nothing to read from (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The earliest stored record.
    Earliest,
    /// Only records written from now on (Kafka's default).
    Latest,
}

impl ConsumerConfig {
    /// Kafka's defaults (fetch.min.bytes 1, wait 500 ms, 50 MiB per fetch, 1 MiB per partition;
    /// Sluice raises the per-partition default to 8 MiB for throughput).
    pub fn new(bootstrap: &str) -> Self {
        ConsumerConfig {
            client: ClientConfig::new(bootstrap),
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: MAX_PARTITION_FETCH_BYTES_DEFAULT,
            check_crcs: true,
            read_committed: false,
            auto_offset_reset: None,
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.client.validate()?;
        if self.fetch_min_bytes < 0 {
            return Err(invalid("fetch.min.bytes", "must not be negative"));
        }
        if self.fetch_max_wait.as_millis() > FETCH_WAIT_MS_MAX as u128 {
            return Err(invalid(
                "fetch.max.wait.ms",
                format!("must be at most {FETCH_WAIT_MS_MAX}"),
            ));
        }
        if self.max_partition_fetch_bytes <= 0
            || self.max_partition_fetch_bytes > PARTITION_FETCH_BYTES_MAX
        {
            return Err(invalid(
                "max.partition.fetch.bytes",
                format!("must be between 1 and {PARTITION_FETCH_BYTES_MAX}"),
            ));
        }
        if self.fetch_max_bytes <= 0 {
            return Err(invalid("fetch.max.bytes", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_split_and_checked() {
        let c = ClientConfig::new("a:1, b:2,");
        assert_eq!(c.bootstrap, vec!["a:1", "b:2"]);
        assert!(c.validate().is_ok());
        assert_eq!(
            ClientConfig::new("").validate().unwrap_err().name,
            "bootstrap.servers"
        );
        assert!(ClientConfig::new("nohost").validate().is_err());
        assert!(ClientConfig::new("h:99999").validate().is_err());
    }

    #[test]
    fn producer_settings_are_checked() {
        let mut p = ProducerConfig::new("h:1");
        assert!(p.validate().is_ok());
        p.max_in_flight = 6;
        assert_eq!(
            p.validate().unwrap_err().name,
            "max.in.flight.requests.per.connection"
        );
        p.max_in_flight = 5;
        p.acks = Acks::None;
        assert_eq!(p.validate().unwrap_err().name, "enable.idempotence");
        p.idempotence = false;
        assert!(p.validate().is_ok());
        p.batch_size = 0;
        assert_eq!(p.validate().unwrap_err().name, "batch.size");
    }

    #[test]
    fn consumer_settings_are_checked() {
        let mut c = ConsumerConfig::new("h:1");
        assert!(c.validate().is_ok());
        c.max_partition_fetch_bytes = 0;
        assert_eq!(c.validate().unwrap_err().name, "max.partition.fetch.bytes");
    }
}
