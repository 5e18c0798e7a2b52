//! [`BenchError`]: why a bench run could not start or finish. Failures of individual requests
//! during the run are not errors: they are counted in the report.

use crate::error::{AdminError, ClientError, ConsumeError, ProduceError};

/// A bench run that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A setting is out of range.
    #[error("invalid bench setting {0}")]
    Settings(String),
    /// Talking to the cluster failed before traffic started (connect, metadata, offsets).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Creating the topic failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Starting a library producer failed.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// Starting a library consumer failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// `consume` found nothing to read.
    #[error("topic {0} holds no records: run `sluice bench produce` on it first")]
    NothingToConsume(String),
    /// A task ended abnormally (a bug in the bench).
    #[error("a bench task failed: {0}")]
    Task(String),
}
