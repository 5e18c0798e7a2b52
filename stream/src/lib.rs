//! Sluice's stream engine: RDD-style partitioned datasets, micro-batch streaming over the log, and
//! bounded batch jobs.
#![warn(missing_docs)]
