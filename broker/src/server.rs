//! The Kafka-protocol server: connections, framing, request dispatch and handlers.
//!
//! The request path: [`listener`] accepts (bounded by `max.connections`) → [`connection`] splits
//! frames ([`frame`], bounded by `socket.request.max.bytes` before allocating) and pipelines them
//! → [`dispatch::Handlers`] decodes with `sluice_protocol::wire`, routes to a handler in
//! `handlers` (one module per API family) or to the [`group_service`] for group APIs, and encodes
//! the response into a `ResponseFrame` whose record chunks are written by reference with one
//! `writev`.
//!
//! - [`daemon::Server`]: start-up order, serving, graceful shutdown (used by `sluiced` and tests).
//! - [`broker::Broker`]: the context handlers share (config, registry, logs, producer ids,
//!   group service); the replication seam (`leader_epoch`, `high_watermark`).
//! - [`data_dir`]: the data-directory lock taken before any data is touched.
//! - [`cluster`]: cluster mode (`--peers`): starting the replication node, controlled shutdown.

pub mod broker;
pub mod cluster;
pub mod connection;
pub mod daemon;
pub mod data_dir;
pub mod dispatch;
pub mod frame;
pub mod group_service;
mod handlers;
pub mod limits;
pub mod listener;

pub use broker::Broker;
pub use connection::{OutFrame, Reply, RequestHandler};
pub use daemon::{Server, ServerError};
pub use data_dir::{DataDirError, DataDirLock};
pub use dispatch::Handlers;
pub use group_service::{GroupService, Unavailable};
