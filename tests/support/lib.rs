//! Harness for Sluice's end-to-end tests: start real `sluiced` processes on ephemeral ports in temp
//! dirs, run the CLI and real Kafka clients against them, and wait on conditions with deadlines.
//!
//! - [`Broker::start`] / [`Broker::builder`]: a `sluiced` on `127.0.0.1:0` with a fresh temp data
//!   dir; waits (with a deadline) for its `sluiced listening on ADDR` line. [`Broker::kill9`],
//!   [`Broker::restart`] (same data dir, same port), [`Broker::shutdown`] (SIGTERM, clean exit).
//!   Dropping a `Broker` kills its process, also when a test panics; its log (stderr) is kept in
//!   the temp dir and its tail printed when a test fails.
//! - [`bin_path`]: a workspace binary (`sluiced`, `sluice`) next to the test executable.
//! - [`kcat`], [`python`]: the real clients; missing ones fail the test with the install command.
//! - [`run`]: a command with stdin, a deadline and captured output; [`ChildGuard`]: a background
//!   process killed on drop.
//! - [`wait_until`]: poll a condition until it holds or a deadline passes.
//! - [`read_acks`], [`consume_all`], [`assert_acked_present_once`]: check what the acknowledging
//!   producer (`tests/python/acked_producer.py`) was told against what the topic holds.
//! - [`Cluster`]: several `sluiced` forming one cluster (`--peers`), optionally with every
//!   broker-to-broker link through a cuttable [`Proxy`] for network-partition tests.
#![warn(missing_docs)]

mod acked;
mod broker;
mod clients;
mod cluster;
mod proxy;
mod wait;

pub use acked::{assert_acked_present_once, consume_all, read_acks, AckedProducer, Acks};
pub use broker::{bin_path, Broker, BrokerBuilder};
pub use clients::{kcat, python, python_script, run, workspace_root, ChildGuard, Output};
pub use cluster::{partition_view, wait_partition, Cluster, ClusterBuilder, PartitionView};
pub use proxy::Proxy;
pub use wait::{wait_until, wait_until_async};
