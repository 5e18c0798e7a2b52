//! The producer.

pub mod accumulator;
pub mod outcome;
