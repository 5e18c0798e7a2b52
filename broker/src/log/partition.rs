//! `Partition`: the async-safe handle on one partition log that connections share.
//!
//! ```text
//! append(&Arc<Self>, batches: Bytes, leader_epoch, Durability) -> LogResult<AppendInfo>  (async)
//! append_as_follower(&Arc<Self>, batches: Bytes) -> LogResult<AppendInfo>
//! read(offset, max_bytes, max_offset_exclusive) -> LogResult<ReadResult>
//! read_for_send(offset, max_bytes, max_offset_exclusive) -> LogResult<ReadResult<SendChunk>>
//! offset_for_timestamp(ts), log_start_offset(), log_end_offset(), durable_offset()
//! subscribe() -> watch::Receiver<i64>   (log end offset; changes on every append)
//! truncate_to(offset).await, leader_epoch_cache(), end_offset_for_epoch(epoch)
//! tick(), close(), offline()
//! ```
//!
//! The log core sits behind a `std::sync::Mutex` held only for bookkeeping and page-cache writes;
//! reads copy out of the file after releasing it, fsyncs run on the blocking pool through
//! [`GroupCommit`]. Every [`WRITEBACK_CHUNK_BYTES`] appended, the active segment's writeback is
//! started in the background, so a seal's fdatasync is not a gigabyte burst that starves the
//! disk (and the appends behind it). A partition whose data turned out corrupt (or whose fsync failed) is offline:
//! every call returns the `Offline` error naming the file and position.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;
use tracing::error;

use crate::log::clock::Clock;
use crate::log::config::{FlushPolicy, LogConfig};
use crate::log::error::{LogError, LogResult};
use crate::log::group_commit::{GroupCommit, Wait};
use crate::log::leader_epoch::LeaderEpochCache;
use crate::log::limits::WRITEBACK_CHUNK_BYTES;
use crate::log::partition_log::{AppendInfo, PartitionLog};
use crate::log::read::{ReadOutcome, ReadPlan, ReadResult, SendChunk};
use crate::log::recycle::PageRecycler;
use crate::log::segment::IndexFiles;
use crate::log::storage::{Directory, Storage};

/// The active segment's file when it has gathered [`WRITEBACK_CHUNK_BYTES`] of dirty data.
fn dirty_active(log: &PartitionLog) -> Option<Arc<dyn Storage>> {
    let file = log.active().file();
    (file.dirty_bytes() >= WRITEBACK_CHUNK_BYTES).then(|| Arc::clone(file))
}

/// How durable an append must be before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the page cache (acks=0/1): survives a process crash, not a power loss.
    PageCache,
    /// On disk (acks=all): resolves after the group-commit fdatasync covering it, unless the topic
    /// relaxed this with `flush.messages` / `flush.ms`.
    Durable,
}

/// One partition of a topic, shared by every connection.
#[derive(Debug)]
pub struct Partition {
    topic: String,
    partition: i32,
    log: Mutex<Result<PartitionLog, LogError>>,
    commit: GroupCommit,
    end: watch::Sender<i64>,
    clock: Arc<dyn Clock>,
    /// A background writeback of the active segment is running.
    writing_back: Arc<AtomicBool>,
    /// Where removed segments' log files go, and whose pages appends reuse.
    recycler: Arc<PageRecycler>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        topic: &str,
        partition: i32,
        mut log: PartitionLog,
        clock: Arc<dyn Clock>,
        recycler: Arc<PageRecycler>,
    ) -> Arc<Partition> {
        log.enable_spares(Arc::clone(recycler.spare_budget()));
        let end = log.log_end_offset();
        let durable = log.durable_offset();
        Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            log: Mutex::new(Ok(log)),
            commit: GroupCommit::new(durable),
            end: watch::Sender::new(end),
            clock,
            writing_back: Arc::new(AtomicBool::new(false)),
            recycler,
        })
    }

    /// A partition that could not be opened (corrupt data): every call returns `error`.
    pub fn offline_with(
        topic: &str,
        partition: i32,
        error: LogError,
        clock: Arc<dyn Clock>,
        recycler: Arc<PageRecycler>,
    ) -> Arc<Partition> {
        let commit = GroupCommit::new(0);
        commit.finish(Err(error.clone()));
        Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            log: Mutex::new(Err(error)),
            commit,
            end: watch::Sender::new(0),
            clock,
            writing_back: Arc::new(AtomicBool::new(false)),
            recycler,
        })
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    fn lock(&self) -> MutexGuard<'_, Result<PartitionLog, LogError>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the log, or returns the offline error.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> LogResult<R>) -> LogResult<R> {
        let mut g = self.lock();
        let (result, retired) = match &mut *g {
            Ok(log) => {
                let result = f(log);
                (result, std::mem::take(&mut log.retired))
            }
            Err(e) => return Err(e.clone()),
        };
        drop(g);
        if !retired.is_empty() {
            let now = self.clock.now_ms();
            let mut to_close = Vec::new();
            for r in &retired {
                if let Some(file) = r.log_file() {
                    to_close.extend(self.recycler.hold(file, now));
                }
            }
            close_in_background((retired, to_close));
        }
        result
    }

    /// Takes the partition offline (corruption found, fsync failed).
    fn go_offline(&self, e: LogError) {
        error!(topic = %self.topic, partition = self.partition, error = %e, "partition offline");
        *self.lock() = Err(e.clone());
        self.commit.finish(Err(e));
    }

    /// The offline error, if the partition is offline.
    pub fn offline(&self) -> Option<LogError> {
        self.lock().as_ref().err().cloned()
    }

    /// Appends a producer's batches (already CRC-validated by the caller). See
    /// [`PartitionLog::append_leader`]; `durability` decides whether this waits for fsync.
    pub async fn append(
        self: &Arc<Self>,
        batches: Bytes,
        leader_epoch: i32,
        durability: Durability,
    ) -> LogResult<AppendInfo> {
        self.append_with(batches.len(), durability, |log, now| {
            log.append_leader(&batches, leader_epoch, now)
        })
        .await
    }

    /// Appends batches replicated from the leader, keeping their offsets.
    pub async fn append_as_follower(self: &Arc<Self>, batches: Bytes) -> LogResult<AppendInfo> {
        self.append_with(batches.len(), Durability::PageCache, |log, now| {
            log.append_follower(&batches, now)
        })
        .await
    }

    /// Runs `append` (of `bytes`) under the log's lock, then what follows every append off it:
    /// the active segment's writeback, the next segment's preparation, the wait `durability` and
    /// the flush policy ask for.
    async fn append_with(
        self: &Arc<Self>,
        bytes: usize,
        durability: Durability,
        append: impl FnOnce(&mut PartitionLog, i64) -> LogResult<AppendInfo>,
    ) -> LogResult<AppendInfo> {
        self.make_room(bytes);
        let now = self.clock.now_ms();
        let (info, policy, flush_due, dirty, next, index_files) = self.with_log(|log| {
            let info = append(log, now)?;
            let dirty = dirty_active(log);
            let next = log
                .plan_next_segment(now)
                .map(|(name, bytes)| (log.dir.clone(), name, bytes));
            let index_files = log.plan_index_files().map(|base| (log.dir.clone(), base));
            Ok((
                info,
                log.config().flush_policy(),
                log.flush_due(now),
                dirty,
                next,
                index_files,
            ))
        })?;
        self.write_back(dirty);
        self.prepare_next_segment(next);
        self.prepare_index_files(index_files);
        self.after_append(&info, policy, flush_due, durability)
            .await?;
        Ok(info)
    }

    async fn after_append(
        self: &Arc<Self>,
        info: &AppendInfo,
        policy: FlushPolicy,
        flush_due: bool,
        durability: Durability,
    ) -> LogResult<()> {
        let wait = match policy {
            FlushPolicy::Durable => durability == Durability::Durable,
            FlushPolicy::EveryAppend => true,
            FlushPolicy::Interval { .. } => false,
        };
        if info.duplicate {
            // The original append may still be waiting for its fsync: the retry waits the same way.
            return if wait {
                self.wait_durable(info.last_offset + 1).await
            } else {
                Ok(())
            };
        }
        // Concurrent appenders finish in any order: the published end only moves forward.
        let end = info.last_offset + 1;
        self.end.send_if_modified(|e| {
            let newer = end > *e;
            if newer {
                *e = end;
            }
            newer
        });
        if wait {
            self.wait_durable(info.last_offset + 1).await
        } else {
            if flush_due || info.rolled {
                self.kick_sync();
            }
            Ok(())
        }
    }

    /// Before appending `bytes`: lets the recycler drop as many bytes of deleted segments' page
    /// cache, for the append to reuse (see [`PageRecycler`]).
    fn make_room(&self, bytes: usize) {
        let spent = self.recycler.make_room(bytes as u64);
        if !spent.is_empty() {
            close_in_background(spent);
        }
    }

    /// Starts the active segment's writeback on the blocking pool (one at a time per partition),
    /// off the append path: it only queues pages for writing, but can wait for room in the device's
    /// queue.
    fn write_back(&self, dirty: Option<Arc<dyn Storage>>) {
        let Some(file) = dirty else { return };
        if self.writing_back.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = Arc::clone(&self.writing_back);
        let (topic, partition) = (self.topic.clone(), self.partition);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = file.start_writeback() {
                // Only an early start of writeback failed; the next fdatasync reports real errors.
                tracing::debug!(topic, partition, error = %e, "starting writeback failed");
            }
            running.store(false, Ordering::Release);
        });
    }

    /// Prepares the file planned for the next segment on the blocking pool: creates it and
    /// reserves its blocks, then hands it to the log as a spare for the next roll (see
    /// [`crate::log::spare`]). Reserving blocks can wait hundreds of milliseconds for the file
    /// system to read its block bitmaps behind the disk's writeback; in the active segment that
    /// wait was on the append path, holding the file's lock that appends need.
    fn prepare_next_segment(self: &Arc<Self>, planned: Option<(Arc<dyn Directory>, String, u64)>) {
        let Some((dir, name, reserve_bytes)) = planned else {
            return;
        };
        let partition = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let prepared = dir.open(&name, true).and_then(|file| {
                file.preallocate(reserve_bytes)?;
                Ok(file)
            });
            let prepared = match prepared {
                Ok(file) => Some((name.clone(), file, reserve_bytes)),
                Err(e) => {
                    // Without it the next segment reserves its blocks on the append path, as before.
                    tracing::debug!(topic = %partition.topic, partition = partition.partition, error = %e, "cannot prepare the next segment file");
                    None
                }
            };
            let now = partition.clock.now_ms();
            let kept = partition
                .with_log(|log| Ok(log.add_prepared(prepared, now)))
                .unwrap_or(false);
            if !kept {
                let _ = dir.remove(&name);
            }
        });
    }

    /// Creates the active segment's index files on the blocking pool, for its seal to write
    /// into without a directory operation on the append path (see [`IndexFiles`]).
    fn prepare_index_files(self: &Arc<Self>, planned: Option<(Arc<dyn Directory>, i64)>) {
        let Some((dir, base)) = planned else { return };
        let partition = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let files = match IndexFiles::create(&*dir, base) {
                Ok(files) => Some(files),
                Err(e) => {
                    // The seal then writes its index files itself, as before.
                    tracing::debug!(topic = %partition.topic, partition = partition.partition, error = %e, "cannot create the next seal's index files");
                    None
                }
            };
            let orphans = partition.with_log(|log| Ok(log.add_index_files(files)));
            if let Ok(Some(orphans)) = orphans {
                orphans.remove(&*dir);
            }
        });
    }

    /// Waits until everything below `target` is on disk, starting group commits as needed.
    pub async fn wait_durable(self: &Arc<Self>, target: i64) -> LogResult<()> {
        let mut rx = self.commit.subscribe();
        loop {
            match self.commit.poll(&mut rx, target)? {
                Wait::Done => return Ok(()),
                Wait::StartSync if *self.end.borrow() < target => {
                    // Give the sync flag back untouched: there is nothing to sync for us.
                    self.commit.finish(Ok(self.commit.durable_offset()));
                    return Err(LogError::Truncated {
                        target,
                        log_end: *self.end.borrow(),
                    });
                }
                Wait::Pending if *self.end.borrow() < target => {
                    return Err(LogError::Truncated {
                        target,
                        log_end: *self.end.borrow(),
                    });
                }
                Wait::StartSync => {
                    tokio::spawn(self.clone().run_sync());
                }
                Wait::Pending => {}
            }
            if rx.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }

    /// Starts a background sync, or, if one is running, another as soon as it ends (the running
    /// one may have planned before the data this call is for).
    pub fn kick_sync(self: &Arc<Self>) {
        if self.commit.begin_or_request() {
            tokio::spawn(self.clone().run_sync());
        }
    }

    /// Starts a sync if the log holds records no sync has covered yet: a log recovered after an
    /// unclean stop is durable only up to its recovery point, and on an idle partition no append
    /// would ever sync the rest. Replicas call this when they take a role and whenever a fetch
    /// brings nothing, so their durable offset (which the high watermark and the ISR wait for)
    /// catches up with their log end.
    pub fn sync_unsynced_tail(self: &Arc<Self>) {
        let unsynced = self
            .log_end_offset()
            .is_ok_and(|end| self.durable_offset() < end);
        if unsynced {
            self.kick_sync();
        }
    }

    /// One group commit; the caller holds the sync flag.
    async fn run_sync(self: Arc<Self>) {
        let now = self.clock.now_ms();
        let plan = self.with_log(|log| Ok(log.needs_sync().then(|| log.begin_sync(now))));
        let outcome = match plan {
            Err(e) => Err(e),
            Ok(None) => Ok(self.with_log(|log| Ok(log.durable_offset())).unwrap_or(0)),
            Ok(Some(plan)) => {
                match tokio::task::spawn_blocking(move || {
                    let mut plan = plan;
                    plan.execute().map(|_| plan)
                })
                .await
                {
                    Ok(Ok(plan)) => self.with_log(|log| {
                        log.complete_sync(&plan);
                        Ok(log.durable_offset())
                    }),
                    Ok(Err(e)) => {
                        let e = LogError::from(e);
                        self.go_offline(e.clone());
                        Err(e)
                    }
                    Err(join) => Err(LogError::from(std::io::Error::other(join.to_string()))),
                }
            }
        };
        self.commit.finish(outcome);
        // A sync asked for while this one ran (it may have planned before that data), or segments
        // sealed meanwhile (they found the sync flag taken): the next sync starts now.
        let now = self.clock.now_ms();
        if self.commit.take_request()
            || self.with_log(|log| Ok(log.flush_due(now))).unwrap_or(false)
        {
            self.kick_sync();
        }
    }

    /// Reads whole stored batches from `offset` (see [`PartitionLog::read`]); the file read runs
    /// without the log's lock.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
    ) -> LogResult<ReadResult> {
        self.read_with(
            offset,
            max_bytes,
            max_offset_exclusive,
            ReadPlan::execute,
            Bytes::len,
        )
    }

    /// Like [`Self::read`], for sending the batches to a socket: large reads come back as
    /// [`SendChunk::File`] ranges of the segment files (to `sendfile`), not copied into memory.
    pub fn read_for_send(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
    ) -> LogResult<ReadResult<SendChunk>> {
        self.read_with(
            offset,
            max_bytes,
            max_offset_exclusive,
            ReadPlan::execute_for_send,
            SendChunk::len,
        )
    }

    fn read_with<C>(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
        execute: impl Fn(&ReadPlan, usize, i64) -> LogResult<ReadOutcome<C>>,
        len: impl Fn(&C) -> usize,
    ) -> LogResult<ReadResult<C>> {
        let (start, end) =
            self.with_log(|log| Ok((log.log_start_offset(), log.log_end_offset())))?;
        let mut result = ReadResult {
            chunks: Vec::new(),
            next_offset: offset,
            bytes: 0,
            log_start_offset: start,
            log_end_offset: end,
        };
        let mut retries = 0;
        loop {
            let plan = self.with_log(|log| log.plan_read(result.next_offset));
            let plan = match plan {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) if result.chunks.is_empty() => return Err(e),
                Err(_) => break,
            };
            let budget = max_bytes.saturating_sub(result.bytes);
            if !result.chunks.is_empty() && budget < plan.first_batch_bytes() {
                break;
            }
            match execute(&plan, budget, max_offset_exclusive)? {
                ReadOutcome::Batches(chunk, next) => {
                    result.bytes += len(&chunk);
                    result.chunks.push(chunk);
                    result.next_offset = next;
                    if !plan.at_segment_end(next) {
                        break;
                    }
                }
                ReadOutcome::Nothing => break,
                ReadOutcome::Truncated if retries < 3 => retries += 1,
                ReadOutcome::Truncated => break,
                ReadOutcome::Corrupt(e) => {
                    self.go_offline(e.clone());
                    return Err(e);
                }
            }
        }
        Ok(result)
    }

    /// First (offset, timestamp) whose batch reaches timestamp `ts`; `None` past the end.
    pub fn offset_for_timestamp(&self, ts: i64) -> LogResult<Option<(i64, i64)>> {
        self.with_log(|log| log.offset_for_timestamp(ts))
    }

    /// Log start offset.
    pub fn log_start_offset(&self) -> LogResult<i64> {
        self.with_log(|log| Ok(log.log_start_offset()))
    }

    /// Log end offset.
    pub fn log_end_offset(&self) -> LogResult<i64> {
        self.with_log(|log| Ok(log.log_end_offset()))
    }

    /// Everything below this offset is on disk.
    pub fn durable_offset(&self) -> i64 {
        self.commit.durable_offset()
    }

    /// The durable offset (and a sync failure), updated after every group commit.
    pub fn durable_watch(&self) -> watch::Receiver<crate::log::group_commit::DurableState> {
        self.commit.subscribe()
    }

    /// The log end offset, updated on every append (and truncation): fetches long-poll on it.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end.subscribe()
    }

    /// Cuts the log to `offset` (replication). Waits for an in-flight group commit first, so a
    /// sync planned before the truncation cannot record a recovery point past the new end.
    pub async fn truncate_to(&self, offset: i64) -> LogResult<()> {
        self.rewrite_tail(|log| log.truncate_to(offset)).await
    }

    /// Runs `cut` (a truncation or a reset) with the group commit held, then publishes the new
    /// log end and durable offset.
    async fn rewrite_tail(
        &self,
        cut: impl FnOnce(&mut PartitionLog) -> LogResult<()>,
    ) -> LogResult<()> {
        let mut rx = self.commit.subscribe();
        while !self.commit.try_begin() {
            if rx.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
        let result = self.with_log(|log| {
            cut(log)?;
            Ok((log.log_end_offset(), log.durable_offset()))
        });
        match result {
            Ok((end, durable)) => {
                // The end first: waiters woken by `finish` must see that their offsets are gone.
                self.end.send_replace(end);
                self.commit.truncated(durable);
                self.commit.finish(Ok(durable));
                Ok(())
            }
            Err(e) => {
                let durable = self.commit.durable_offset();
                self.commit.finish(Ok(durable));
                Err(e)
            }
        }
    }

    /// Empties the log and restarts it at `offset` (replication: a follower whose log ends below
    /// the leader's log start; see `PartitionLog::reset_to`). Waits for an in-flight group commit
    /// first, as truncation does.
    pub async fn reset_to(&self, offset: i64) -> LogResult<()> {
        self.rewrite_tail(|log| log.reset_to(offset)).await
    }

    /// Moves the log start up to `offset`, or to the log end if that is lower (replication: a
    /// follower takes its leader's log start, moved by retention or DeleteRecords). The removal
    /// of the segments below it runs on the blocking pool.
    pub async fn follow_log_start(&self, offset: i64) -> LogResult<()> {
        let now = self.clock.now_ms();
        self.move_log_start(|log| offset.min(log.log_end_offset()), Some(now))
            .await
            .map(drop)
    }

    async fn run_log_start_files(
        files: Option<crate::log::retention::LogStartFiles>,
    ) -> LogResult<()> {
        let Some(files) = files else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || files.execute())
            .await
            .map_err(|e| LogError::from(std::io::Error::other(e.to_string())))?
    }

    /// A copy of the leader epoch cache.
    pub fn leader_epoch_cache(&self) -> LogResult<LeaderEpochCache> {
        self.with_log(|log| Ok(log.leader_epochs().clone()))
    }

    /// OffsetsForLeaderEpoch: (largest epoch <= `epoch`, where it ends).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> LogResult<Option<(i32, i64)>> {
        self.with_log(|log| {
            Ok(log
                .leader_epochs()
                .end_offset_for(epoch, log.log_end_offset()))
        })
    }

    /// The topic configuration.
    pub fn config(&self) -> LogResult<LogConfig> {
        self.with_log(|log| Ok(log.config().clone()))
    }

    /// Changes the topic configuration.
    pub fn set_config(&self, config: LogConfig) -> LogResult<()> {
        self.with_log(|log| {
            log.set_config(config);
            Ok(())
        })
    }

    /// DeleteRecords: moves the log start offset up to `offset` (OFFSET_OUT_OF_RANGE past the
    /// log end) and returns it. The checkpoint and the removal of the segments below it run on
    /// the blocking pool, as retention's do, not under the partition's lock.
    pub async fn delete_records_before(&self, offset: i64) -> LogResult<i64> {
        self.move_log_start(|_| offset, None).await
    }

    /// Moves the log start up to `target(log)` under the lock (keeping the oldest removed
    /// segment's file as a spare when `spare_at` is the clock's time), then does the file work
    /// off it; returns the new log start.
    async fn move_log_start(
        &self,
        target: impl FnOnce(&PartitionLog) -> i64,
        spare_at: Option<i64>,
    ) -> LogResult<i64> {
        let (files, start) = self.with_log(|log| {
            let files = log.move_log_start(target(log), spare_at)?;
            Ok((files, log.log_start_offset()))
        })?;
        Self::run_log_start_files(files).await?;
        Ok(start)
    }

    /// Periodic maintenance with the clock's time: retention, producer expiry, compaction,
    /// `flush.ms` / pending seals.
    pub async fn tick(self: &Arc<Self>) -> LogResult<()> {
        let now = self.clock.now_ms();
        let (deleted, flush) = self.with_log(|log| {
            let deleted = log.plan_retention(now)?;
            log.expire_producers(now);
            Ok((deleted, log.flush_due(now) || log.needs_checkpoint(now)))
        })?;
        // The checkpoint's fsyncs and the removals, off the lock and off the async workers.
        Self::run_log_start_files(deleted).await?;
        self.compact(now).await?;
        if flush {
            self.kick_sync();
        }
        Ok(())
    }

    /// One compaction pass (heavy work off the lock and on the blocking pool).
    pub async fn compact(self: &Arc<Self>, now_ms: i64) -> LogResult<usize> {
        let Some(plan) = self.with_log(|log| Ok(log.plan_compaction(now_ms)))? else {
            return Ok(0);
        };
        let cleaned = tokio::task::spawn_blocking(move || plan.run())
            .await
            .map_err(|e| LogError::from(std::io::Error::other(e.to_string())))??;
        self.with_log(|log| log.finish_compaction(cleaned))
    }

    /// Flushes and closes cleanly (writes the clean-shutdown marker); the partition is closed after.
    pub fn close(&self) -> LogResult<()> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        let r = match &mut *g {
            Ok(log) => log.close(now),
            Err(e) => return Err(e.clone()),
        };
        *g = Err(LogError::Closed);
        drop(g);
        self.commit.finish(Err(LogError::Closed));
        r
    }
}

/// Closes removed segments' files on the blocking pool (inline outside a runtime): the last close
/// of an unlinked segment frees its page cache and blocks, which must not hold up appends or an
/// async worker. (A removed segment's log file lives on in the [`PageRecycler`].)
pub(crate) fn close_in_background(files: impl Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(files));
        }
        Err(_) => drop(files),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::clock::SystemClock;
    use crate::log::manager::LogManager;
    use crate::log::segment::{file_name, LOG_SUFFIX};

    /// Open descriptors of this process whose file was unlinked under `dir`.
    fn deleted_handles_under(dir: &std::path::Path) -> usize {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| {
                target.starts_with(dir) && target.to_string_lossy().ends_with(" (deleted)")
            })
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seal_writes_into_index_files_created_in_the_background() {
        use std::os::unix::fs::MetadataExt;

        use crate::log::segment::{INDEX_SUFFIX, TIME_INDEX_SUFFIX};
        let tmp = tempfile::tempdir().unwrap();
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let props: BTreeMap<String, String> = [("segment.bytes", (16 << 20).to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let partition = logs
            .create_partition("t", 0, LogConfig::from_props(&props).unwrap())
            .unwrap();
        let payload = vec![7u8; 900_000];
        let mut i = 0;
        let mut append = || {
            i += 1;
            let b = Bytes::from(batch(0, 1, 1_000 + i, None, &payload));
            let partition = Arc::clone(&partition);
            async move { partition.append(b, 0, Durability::PageCache).await.unwrap() }
        };
        // Half full: the index files of the segment at 0 are created off the append path.
        while partition.with_log(|log| Ok(log.active().size())).unwrap() < 8 << 20 {
            append().await;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while partition
            .with_log(|log| Ok(log.index_files.is_none()))
            .unwrap()
        {
            assert!(Instant::now() < deadline, "no index files were created");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seg_dir = tmp.path().join("t-0");
        let inode = |suffix: &str| std::fs::metadata(seg_dir.join(file_name(0, suffix))).unwrap();
        let created = [inode(INDEX_SUFFIX), inode(TIME_INDEX_SUFFIX)];
        assert!(created.iter().all(|m| m.len() == 0));
        while partition
            .with_log(|log| Ok(log.segments().count()))
            .unwrap()
            < 2
        {
            append().await;
        }
        // The seal wrote into those same files: no new file, no directory operation.
        for (before, suffix) in created.iter().zip([INDEX_SUFFIX, TIME_INDEX_SUFFIX]) {
            let after = inode(suffix);
            assert_eq!(after.ino(), before.ino(), "{suffix} was created anew");
            assert!(after.len() > 0, "{suffix} is empty");
        }
        assert!(partition
            .with_log(|log| Ok(log.index_files.is_none()))
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_closes_deleted_segments_off_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let props: BTreeMap<String, String> =
            [("segment.bytes", "4096"), ("retention.bytes", "8192")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let partition = logs
            .create_partition("t", 0, LogConfig::from_props(&props).unwrap())
            .unwrap();
        let payload = [7u8; 900];
        for i in 0..40 {
            let b = Bytes::from(batch(0, 1, 1_000 + i, None, &payload));
            partition.append(b, 0, Durability::PageCache).await.unwrap();
        }
        partition.tick().await.unwrap();
        let start = partition
            .with_log(|log| Ok(log.log_start_offset()))
            .unwrap();
        assert!(start > 0, "retention deleted nothing");
        let retired_left = partition.with_log(|log| Ok(log.retired.len())).unwrap();
        assert_eq!(retired_left, 0, "retired segments left in the log");
        // The removed segments' files are closed in the background, soon, but for their log
        // files: the recycler holds those for their pages.
        let held = logs.recycler().held_files();
        assert!(held > 0, "no removed log file went to the recycler");
        let deadline = Instant::now() + Duration::from_secs(10);
        while deleted_handles_under(tmp.path()) > held {
            assert!(
                Instant::now() < deadline,
                "deleted segments still open after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(deleted_handles_under(tmp.path()), held);
        // Past the hold, the maintenance tick lets them go too.
        drop(logs.recycler().expire(i64::MAX));
        assert_eq!(deleted_handles_under(tmp.path()), 0);
        // The log goes on from where it was.
        let b = Bytes::from(batch(0, 1, 2_000, None, &payload));
        let info = partition.append(b, 0, Durability::PageCache).await.unwrap();
        assert_eq!(info.base_offset, 40);
    }

    /// Files under `dir` (recursively) whose name ends with `suffix`, with their inode numbers.
    fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<(std::path::PathBuf, u64)> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                out.extend(files_ending(&path, suffix));
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push((path, meta.ino()));
            }
        }
        out
    }

    /// Reserving a new segment file's blocks on the append path waited 0.3-1 s at a time for
    /// ext4 to read block bitmaps behind the disk's writeback, holding the file's lock that
    /// appends need (a quarter to a third of the tokio workers' time while a topic grew). The
    /// next segment's file is now prepared in the background once the active one is half full,
    /// and the roll writes into it; its unused reservation is given back at the seal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_segment_file_is_prepared_in_the_background_and_the_roll_uses_it() {
        use std::os::unix::fs::MetadataExt;
        const SEGMENT_BYTES: u64 = 16 << 20;
        let tmp = tempfile::tempdir().unwrap();
        let props: BTreeMap<String, String> = [("segment.bytes", SEGMENT_BYTES.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let config = LogConfig::from_props(&props).unwrap();
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let partition = logs.create_partition("t", 0, config).unwrap();
        // Segments then end about 290 KB short of `segment.bytes`: a reservation kept past the
        // data would show.
        let payload = vec![3u8; 300_000];
        let mut appended = 0u64;
        let mut base = 0i64;
        // Half a segment.
        while appended * 2 < SEGMENT_BYTES {
            let b = Bytes::from(batch(0, 1, 1_000 + base, None, &payload));
            appended += b.len() as u64;
            partition.append(b, 0, Durability::PageCache).await.unwrap();
            base += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let prepared = loop {
            if let Some(p) = partition
                .with_log(|log| Ok(log.spares.front().map(|s| (s.prepared, s.name.clone()))))
                .unwrap()
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "no next segment prepared in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(prepared.0, "the spare is not a prepared file");
        let files = files_ending(tmp.path(), ".next.spare");
        assert_eq!(files.len(), 1, "{files:?}");
        let (path, inode) = files[0].clone();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 0, "a prepared file holds no data");
        assert!(
            meta.blocks() * 512 >= SEGMENT_BYTES,
            "only {} bytes reserved",
            meta.blocks() * 512
        );
        // Fill the segment: the roll writes the next one into the prepared file.
        while partition.with_log(|log| Ok(log.segments.len())).unwrap() < 2 {
            let b = Bytes::from(batch(0, 1, 1_000 + base, None, &payload));
            partition.append(b, 0, Durability::PageCache).await.unwrap();
            base += 1;
        }
        let active_base = partition
            .with_log(|log| Ok(log.active().base_offset()))
            .unwrap();
        let active_path = path.with_file_name(file_name(active_base, LOG_SUFFIX));
        assert_eq!(std::fs::metadata(&active_path).unwrap().ino(), inode);
        assert!(files_ending(tmp.path(), ".next.spare").is_empty());
        // The sealed segment holds its data and no reservation once its sync ran.
        partition.wait_durable(base).await.unwrap();
        let sealed = path.with_file_name(file_name(0, LOG_SUFFIX));
        let meta = std::fs::metadata(&sealed).unwrap();
        assert!(
            meta.blocks() * 512 <= meta.len().next_multiple_of(1 << 20),
            "reservation kept"
        );
        // So does the segment written into the prepared file, once it is sealed in turn.
        while partition.with_log(|log| Ok(log.segments.len())).unwrap() < 3 {
            let b = Bytes::from(batch(0, 1, 1_000 + base, None, &payload));
            partition.append(b, 0, Durability::PageCache).await.unwrap();
            base += 1;
        }
        partition.wait_durable(base).await.unwrap();
        let meta = std::fs::metadata(&active_path).unwrap();
        assert_eq!(meta.ino(), inode);
        assert!(
            meta.blocks() * 512 < meta.len() + 64 * 1024,
            "the prepared file kept its reservation: {} bytes of blocks for {} of data",
            meta.blocks() * 512,
            meta.len()
        );
        // Everything reads back after a reopen.
        drop(partition);
        logs.shutdown().unwrap();
        drop(logs);
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let partition = logs.partition("t", 0).unwrap();
        assert_eq!(
            partition.with_log(|log| Ok(log.log_end_offset())).unwrap(),
            base
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_keeps_a_spare_file_that_the_next_segment_reuses_and_recovery_cuts() {
        use crate::log::crash_tests::all_batches;
        let tmp = tempfile::tempdir().unwrap();
        let props: BTreeMap<String, String> =
            [("segment.bytes", "4096"), ("retention.bytes", "8192")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let config = LogConfig::from_props(&props).unwrap();
        // Distinct bodies, so a stale batch served or kept would show.
        let body = |i: i64| vec![(i % 251) as u8; 900];
        let (end, bodies) = {
            let logs =
                LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
            let partition = logs.create_partition("t", 0, config.clone()).unwrap();
            for i in 0..40 {
                let b = Bytes::from(batch(0, 1, 1_000 + i, None, &body(i)));
                partition.append(b, 0, Durability::PageCache).await.unwrap();
            }
            partition.tick().await.unwrap();
            let spares = files_ending(tmp.path(), ".log.spare");
            assert_eq!(spares.len(), 1, "retention kept no spare: {spares:?}");
            let spare_inode = spares[0].1;
            assert!(logs.recycler().spare_budget().held_bytes() > 0);
            // A sync still running may hold the file a moment (a file anyone holds is not reused).
            let deadline = Instant::now() + Duration::from_secs(10);
            while !partition
                .with_log(|log| Ok(log.spares.iter().all(|s| s.unshared())))
                .unwrap()
            {
                assert!(
                    Instant::now() < deadline,
                    "the spare stayed shared for 10 s"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Appending on rolls a new segment into the spare: same file, new name.
            for i in 40..46 {
                let b = Bytes::from(batch(0, 1, 1_000 + i, None, &body(i)));
                partition.append(b, 0, Durability::PageCache).await.unwrap();
            }
            assert!(files_ending(tmp.path(), ".log.spare").is_empty());
            assert_eq!(logs.recycler().spare_budget().held_bytes(), 0);
            let reused: Vec<_> = files_ending(tmp.path(), ".log")
                .into_iter()
                .filter(|(_, ino)| *ino == spare_inode)
                .collect();
            assert_eq!(reused.len(), 1, "the spare's file is not a segment now");
            // The reused file still holds its old bytes past the new data.
            let physical = std::fs::metadata(&reused[0].0).unwrap().len();
            let (end, logical) = partition
                .with_log(|log| Ok((log.log_end_offset(), log.active().size())))
                .unwrap();
            assert!(physical > logical, "{physical} <= {logical}");
            // Reads serve only the new segment's batches.
            let bodies = partition
                .with_log(|log| Ok(all_batches(log)))
                .unwrap()
                .iter()
                .map(|b| {
                    let h = crate::log::batch::validate(b).unwrap();
                    (h.base_offset, b[crate::log::batch::HEADER_BYTES..].to_vec())
                })
                .collect::<Vec<_>>();
            let start = partition
                .with_log(|log| Ok(log.log_start_offset()))
                .unwrap();
            let offsets: Vec<i64> = bodies.iter().map(|(o, _)| *o).collect();
            assert_eq!(offsets, (start..end).collect::<Vec<_>>());
            // No clean shutdown: the process dies here (handles dropped, nothing flushed).
            (end, bodies)
        };
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let partition = logs.partition("t", 0).unwrap();
        let got = partition
            .with_log(|log| {
                assert_eq!(log.log_end_offset(), end);
                let active = log.active();
                let path = log.segment_path(active.base_offset());
                assert_eq!(std::fs::metadata(path).unwrap().len(), active.size());
                Ok(all_batches(log))
            })
            .unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|b| {
                let h = crate::log::batch::validate(b).unwrap();
                (h.base_offset, b[crate::log::batch::HEADER_BYTES..].to_vec())
            })
            .collect();
        assert_eq!(got, bodies, "recovery kept a stale batch or lost one");
        assert!(files_ending(tmp.path(), ".log.spare").is_empty());
    }
}
