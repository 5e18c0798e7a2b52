//! Metadata Raft (placeholder while it is written).
