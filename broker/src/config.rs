//! The broker configuration: one struct, validated in one place at start-up.
