//! Deterministic simulation (placeholder while it is written).
