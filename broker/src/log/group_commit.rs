//! Group commit: one fdatasync covers every append that arrived while the previous one ran.
//!
//! The durable offset is published on a `tokio::sync::watch`. An appender that needs durability
//! waits until the published offset passes its last offset; if no sync is running it starts one
//! (a detached task, so a cancelled waiter never strands the others). The sync task plans under
//! the log's lock (which files, up to which offset), runs the fsyncs on the blocking pool without
//! the lock, then publishes the new durable offset. Appends that landed during that fsync are
//! covered by the next one, started by the first of their waiters to wake: many producers share
//! each fsync and nobody holds the append lock during it.
//!
//! A failed fsync is not retried (the kernel may have dropped the dirty pages): the partition goes
//! offline and every waiter gets the error.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::log::error::{LogError, LogResult};

/// What has been made durable.
#[derive(Debug, Clone, Default)]
pub struct DurableState {
    /// Everything below this offset is on disk.
    pub offset: i64,
    /// Set when a sync failed: nothing will become durable any more.
    pub error: Option<LogError>,
}

/// The group commit coordinator of one partition.
#[derive(Debug)]
pub struct GroupCommit {
    syncing: AtomicBool,
    /// A sync was asked for ([`Self::begin_or_request`]) while one ran: the running one may have
    /// planned before the data that asked, so another must follow it.
    requested: AtomicBool,
    durable: watch::Sender<DurableState>,
}

/// Whether a waiter must start a sync.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// The target is durable.
    Done,
    /// No sync is running: the caller now owns the sync flag and must start one.
    StartSync,
    /// A sync is running: wait for it.
    Pending,
}

impl GroupCommit {
    /// A coordinator whose durable offset starts at `offset`.
    pub fn new(offset: i64) -> GroupCommit {
        GroupCommit {
            syncing: AtomicBool::new(false),
            requested: AtomicBool::new(false),
            durable: watch::Sender::new(DurableState {
                offset,
                error: None,
            }),
        }
    }

    /// Subscribes to the durable offset.
    pub fn subscribe(&self) -> watch::Receiver<DurableState> {
        self.durable.subscribe()
    }

    /// The durable offset published last.
    pub fn durable_offset(&self) -> i64 {
        self.durable.borrow().offset
    }

    /// Takes the sync flag if free.
    pub fn try_begin(&self) -> bool {
        self.syncing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes the sync flag if free (true: the caller starts a sync); otherwise records that a
    /// sync is wanted after the running one ([`Self::take_request`]), so an append whose
    /// fire-and-forget sync request found a sync already planned is not left unsynced.
    pub fn begin_or_request(&self) -> bool {
        if self.try_begin() {
            return true;
        }
        self.requested.store(true, Ordering::Release);
        // The running sync may have finished before the request was recorded.
        if self.try_begin() {
            self.requested.store(false, Ordering::Release);
            return true;
        }
        false
    }

    /// Whether a sync was requested while the last one ran (clearing the request).
    pub fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::AcqRel)
    }

    /// Releases the sync flag and publishes the outcome (flag first, so a woken waiter can take it).
    pub fn finish(&self, outcome: LogResult<i64>) {
        self.syncing.store(false, Ordering::Release);
        self.durable.send_modify(|s| match outcome {
            Ok(offset) => s.offset = s.offset.max(offset),
            Err(e) => s.error = Some(e),
        });
    }

    /// Lowers the durable offset after a truncation.
    pub fn truncated(&self, offset: i64) {
        self.durable
            .send_modify(|s| s.offset = s.offset.min(offset));
    }

    /// One step of waiting for `target`: checks the published state (marking it seen) and, if not
    /// durable, tries to take the sync flag.
    pub fn poll(&self, rx: &mut watch::Receiver<DurableState>, target: i64) -> LogResult<Wait> {
        {
            let s = rx.borrow_and_update();
            if let Some(e) = &s.error {
                return Err(e.clone());
            }
            if s.offset >= target {
                return Ok(Wait::Done);
            }
        }
        Ok(if self.try_begin() {
            Wait::StartSync
        } else {
            Wait::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_syncer_at_a_time_and_waiters_see_progress() {
        let gc = GroupCommit::new(0);
        let mut a = gc.subscribe();
        let mut b = gc.subscribe();
        assert_eq!(gc.poll(&mut a, 5).unwrap(), Wait::StartSync);
        assert_eq!(gc.poll(&mut b, 7).unwrap(), Wait::Pending);
        gc.finish(Ok(6));
        assert!(b.has_changed().unwrap());
        assert_eq!(gc.poll(&mut a, 5).unwrap(), Wait::Done);
        assert_eq!(gc.poll(&mut b, 7).unwrap(), Wait::StartSync);
        gc.finish(Err(LogError::Closed));
        assert!(gc.poll(&mut b, 7).is_err());
    }

    #[test]
    fn a_sync_asked_for_while_one_runs_is_remembered_once() {
        let g = GroupCommit::new(0);
        assert!(g.begin_or_request(), "free: the caller starts a sync");
        assert!(!g.begin_or_request(), "busy: recorded for later");
        assert!(!g.begin_or_request());
        g.finish(Ok(5));
        assert!(g.take_request(), "the running sync's end sees the request");
        assert!(!g.take_request(), "once");
        assert!(g.begin_or_request());
        g.finish(Ok(6));
        assert!(!g.take_request(), "nothing was asked while that one ran");
    }
}
