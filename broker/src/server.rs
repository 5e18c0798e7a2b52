//! The Kafka-protocol server: connections, framing, request dispatch and handlers.
//!
//! - [`frame`]: splits the byte stream into size-prefixed frames, bounded before allocating.
//! - [`connection`]: one connection's read and write halves, pipelining with responses in order.
//! - [`listener`]: the accept loop, `max.connections`, graceful drain on shutdown.
//! - [`data_dir`]: the data-directory lock taken before any data is touched.

pub mod connection;
pub mod data_dir;
pub mod frame;
pub mod limits;
pub mod listener;

pub use connection::{OutFrame, Reply, RequestHandler};
pub use data_dir::{DataDirError, DataDirLock};
