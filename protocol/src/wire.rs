//! The Kafka wire protocol: framing, request headers and message types.
