//! The result of sending one batch, shared by the deliveries of all its records.
//!
//! One [`BatchOutcome`] per batch (not per record): each record's [`Delivery`] holds an `Arc` to it
//! and its index, so accepting a record allocates nothing. The sender resolves the outcome once;
//! every delivery then computes its own offset as `base_offset + index`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::error::ProduceError;
use crate::message::RecordMetadata;

/// What the broker said about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// Offset of the batch's first record (-1 with acks=0).
    pub base_offset: i64,
    /// The append time when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// The shared, write-once result of one batch, and where the batch goes.
#[derive(Debug)]
pub struct BatchOutcome {
    result: OnceLock<Result<BatchAck, ProduceError>>,
    done: Notify,
    topic: Arc<str>,
    partition: i32,
}

impl BatchOutcome {
    /// An unresolved outcome of a batch for `topic`/`partition`.
    pub fn new(topic: Arc<str>, partition: i32) -> Self {
        BatchOutcome {
            result: OnceLock::new(),
            done: Notify::new(),
            topic,
            partition,
        }
    }

    /// Resolves it as acknowledged (the first resolution wins).
    pub fn succeed(&self, ack: BatchAck) {
        let _ = self.result.set(Ok(ack));
        self.done.notify_waiters();
    }

    /// Resolves it as failed (the first resolution wins).
    pub fn fail(&self, error: ProduceError) {
        let _ = self.result.set(Err(error));
        self.done.notify_waiters();
    }

    /// The result, if resolved.
    pub fn get(&self) -> Option<&Result<BatchAck, ProduceError>> {
        self.result.get()
    }

    /// Waits until resolved.
    pub async fn wait(&self) -> &Result<BatchAck, ProduceError> {
        // Most deliveries are awaited after their batch resolved: skip the notifier then.
        if let Some(r) = self.result.get() {
            return r;
        }
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.result.get() {
                return r;
            }
            notified.await;
        }
    }
}

/// The pending acknowledgement of one sent record: `.await` it for its [`RecordMetadata`].
/// Dropping it does not cancel the send. One `Arc` per record, shared with its batch: accepting a
/// record allocates nothing.
#[derive(Debug)]
pub struct Delivery {
    pub(crate) outcome: Arc<BatchOutcome>,
    pub(crate) index: i32,
    pub(crate) timestamp_ms: i64,
}

impl Delivery {
    /// The partition the record was assigned to.
    pub fn partition(&self) -> i32 {
        self.outcome.partition
    }

    /// The result, if the batch was already resolved.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, ProduceError>> {
        self.outcome.get().map(|r| self.metadata(r))
    }

    /// Waits for the acknowledgement.
    pub async fn wait(self) -> Result<RecordMetadata, ProduceError> {
        let r = self.outcome.wait().await;
        self.metadata(r)
    }

    fn metadata(&self, r: &Result<BatchAck, ProduceError>) -> Result<RecordMetadata, ProduceError> {
        match r {
            Ok(ack) => Ok(RecordMetadata {
                topic: self.outcome.topic.clone(),
                partition: self.outcome.partition,
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(self.index)
                },
                timestamp_ms: if ack.log_append_time_ms >= 0 {
                    ack.log_append_time_ms
                } else {
                    self.timestamp_ms
                },
            }),
            Err(e) => Err(e.clone()),
        }
    }
}

impl IntoFuture for Delivery {
    type Output = Result<RecordMetadata, ProduceError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_delivery_of_a_batch_gets_its_own_offset() {
        let outcome = Arc::new(BatchOutcome::new("t".into(), 2));
        let d = |index| Delivery {
            outcome: outcome.clone(),
            index,
            timestamp_ms: 5,
        };
        let (a, b) = (d(0), d(3));
        assert!(a.try_result().is_none());
        let waiter = tokio::spawn(b.wait());
        tokio::task::yield_now().await;
        outcome.succeed(BatchAck {
            base_offset: 100,
            log_append_time_ms: -1,
        });
        let m = waiter.await.unwrap().unwrap();
        assert_eq!((m.partition, m.offset, m.timestamp_ms), (2, 103, 5));
        assert_eq!(a.await.unwrap().offset, 100);
        outcome.fail(ProduceError::Closed);
        assert!(
            d(1).try_result().unwrap().is_ok(),
            "the first resolution wins"
        );
    }

    #[tokio::test]
    async fn failures_reach_every_record() {
        let outcome = Arc::new(BatchOutcome::new("t".into(), 0));
        outcome.fail(ProduceError::Closed);
        let d = Delivery {
            outcome,
            index: 0,
            timestamp_ms: 0,
        };
        assert!(matches!(d.await, Err(ProduceError::Closed)));
    }
}
