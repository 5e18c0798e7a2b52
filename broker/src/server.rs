//! The Kafka-protocol server: connections, framing, request dispatch and handlers.
