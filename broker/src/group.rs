//! The group coordinator: Kafka classic group protocol and committed offsets.
