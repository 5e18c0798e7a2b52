//! Limits and defaults of the broker's configuration, each with its reason.

/// Kafka's `socket.request.max.bytes` default: 100 MiB, the largest request frame accepted.
pub const REQUEST_BYTES_DEFAULT: usize = 100 * 1024 * 1024;
/// Below this even a Metadata request of a few topics would not fit.
pub const REQUEST_BYTES_MIN: usize = 1024;
/// A request frame is held in memory whole; 1 GiB keeps one connection from exhausting the host.
pub const REQUEST_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Kafka's `max.connections` has no default bound; 1000 fits the default open-files limit.
pub const CONNECTIONS_DEFAULT: usize = 1000;
/// Each connection holds buffers and a task; beyond this the host runs out of descriptors.
pub const CONNECTIONS_MAX: usize = 100_000;
/// Kafka's `connections.max.idle.ms` default: 10 minutes.
pub const CONNECTION_IDLE_MS_DEFAULT: u64 = 600_000;
/// Shorter idle limits would cut clients between their periodic metadata refreshes in tests too.
pub const CONNECTION_IDLE_MS_MIN: u64 = 100;
/// Requests read ahead of their responses per connection; librdkafka keeps up to 5 produce
/// requests in flight per partition leader plus fetches and metadata, so 64 never throttles it.
pub const IN_FLIGHT_REQUESTS_DEFAULT: usize = 64;
/// Each in-flight request may hold a whole frame: bound the memory one connection can pin.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 1024;
/// Graceful shutdown waits this long for in-flight requests (long-polls are cut short at once).
pub const SHUTDOWN_GRACE_MS_DEFAULT: u64 = 10_000;
/// Kafka caps partitions per topic far higher, but every partition is a directory of open files.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// A config file is a few hundred bytes; refuse to slurp a wrong path such as a log file.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

const _: () = assert!(REQUEST_BYTES_MIN <= REQUEST_BYTES_DEFAULT);
const _: () = assert!(REQUEST_BYTES_DEFAULT <= REQUEST_BYTES_MAX);
const _: () = assert!(IN_FLIGHT_REQUESTS_DEFAULT <= IN_FLIGHT_REQUESTS_MAX);
const _: () = assert!(CONNECTIONS_DEFAULT <= CONNECTIONS_MAX);
