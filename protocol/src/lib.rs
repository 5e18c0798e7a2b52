//! Sluice's codecs: the Kafka wire protocol and the RecordBatch v2 format.
//!
//! This crate is pure: no sockets, no files, no async. Decoders take bytes and return a value or a
//! typed error; encoders write into a caller's buffer. Everything on the wire is big-endian.
//!
//! - [`record`]: RecordBatch v2, the unit stored on disk, sent on the wire and replicated.
//! - [`wire`]: request/response framing and the Kafka message types Sluice speaks.
#![warn(missing_docs)]

pub mod record;
pub mod wire;
