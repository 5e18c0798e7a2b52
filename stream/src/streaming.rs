//! `StreamingContext`: runs a DStream graph over topics in micro-batches, exactly once.
//!
//! ```text
//! let ssc = StreamingContext::new(StreamConfig::new("127.0.0.1:9092", "wordcount"), Duration::from_millis(500))?;
//! let lines = ssc.topic_stream(&["lines"])?;
//! lines.flat_map(..).map(..).update_state_by_key(..).to_topic("counts", ..)?;
//! ssc.start()?;
//! ssc.await_termination()?;
//! ```
//!
//! The driver thread runs one batch per interval: it asks the log for the input partitions' offsets,
//! lets the [`Planner`] choose the ranges, records them in the offset log, runs the graph (the
//! source RDD reads each range with the client's bounded reader), saves the state snapshots, then
//! writes the commit log entry; see [`crate::progress`] for the recovery rules and
//! [`crate::sink`] for exactly-once output. The core ([`Driver::step`]) takes the batch time and a
//! clock, so tests drive it with fake time and an in-memory log.

use crate::context::{Context, ContextConfig};
use crate::dstream::{lock, Batch, DStream, StreamGraph};
use crate::error::{StreamError, TaskError};
use crate::listener::{BatchReport, StreamingListener, Summary};
use crate::log::{Log, OutRecord, PendingRead, Record};
use crate::planner::{
    OffsetRange, PartitionOffsets, Planner, PlannerConfig, StartingOffsets, TopicPartition,
};
use crate::progress::{
    recover, CommitLogEntry, OffsetLogEntry, Recovery, StateEntryRecord, PROGRESS_VERSION,
};
use crate::rate::PidConfig;
use crate::topic_sink::SinkEnv;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of a streaming job.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The job's id: names its progress topics, so a restarted job with the same id resumes.
    pub job_id: String,
    /// Worker threads (`None`: one per core).
    pub workers: Option<usize>,
    /// Most records one partition contributes to one batch.
    pub max_records_per_partition: Option<u64>,
    /// PID backpressure on or off.
    pub backpressure: bool,
    /// Rate (records/s) before the estimator has an estimate.
    pub initial_rate: Option<f64>,
    /// The estimator's lower bound (records/s).
    pub min_rate: f64,
    /// Where partitions with no recorded progress start.
    pub starting_offsets: StartingOffsets,
    /// In-process attempts of a failing batch before the context stops with the error.
    pub batch_attempts: u32,
    /// Stop gracefully once no input arrived for this long (closing event-time windows).
    pub stop_when_idle: Option<Duration>,
}

impl StreamConfig {
    /// Defaults: backpressure on, earliest offsets, 3 batch attempts.
    pub fn new(brokers: &str, job_id: &str) -> StreamConfig {
        StreamConfig {
            brokers: brokers.to_string(),
            job_id: job_id.to_string(),
            workers: None,
            max_records_per_partition: None,
            backpressure: true,
            initial_rate: None,
            min_rate: 100.0,
            starting_offsets: StartingOffsets::Earliest,
            batch_attempts: 3,
            stop_when_idle: None,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), StreamError> {
        let id_ok = !self.job_id.is_empty()
            && self.job_id.len() <= 200
            && self
                .job_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !id_ok {
            return Err(StreamError::Config(format!(
                "job id {:?} must be 1-200 characters of [a-zA-Z0-9._-] (it names topics)",
                self.job_id
            )));
        }
        if self.batch_attempts == 0 {
            return Err(StreamError::Config(
                "batch_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The internal topic holding the offset log.
    pub fn offsets_topic(&self) -> String {
        format!("__sluice_stream.{}.offsets", self.job_id)
    }

    /// The internal topic holding the commit log.
    pub fn commits_topic(&self) -> String {
        format!("__sluice_stream.{}.commits", self.job_id)
    }

    /// The internal topic holding state snapshots.
    pub fn state_topic(&self) -> String {
        format!("__sluice_stream.{}.state", self.job_id)
    }
}

/// Internal topics are compacted (only the latest entries matter) and flushed per message.
const INTERNAL_TOPIC_CONFIGS: &[(&str, &str)] =
    &[("cleanup.policy", "compact"), ("flush.messages", "1")];

/// Bytes of state per record; larger snapshots are split over several records.
const STATE_CHUNK_BYTES_MAX: usize = 512 * 1024;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Default)]
struct Control {
    stop: Option<bool>,
    finished: Option<Result<Summary, StreamError>>,
    started: bool,
}

pub(crate) struct Shared {
    config: StreamConfig,
    interval_ms: u64,
    log: Arc<dyn Log>,
    graph: StreamGraph,
    env: Arc<SinkEnv>,
    topics: Mutex<Vec<String>>,
    ranges: Mutex<Arc<Vec<OffsetRange>>>,
    listeners: Mutex<Vec<Arc<dyn StreamingListener>>>,
    control: Mutex<Control>,
    wake: Condvar,
}

/// The entry point of a streaming job.
pub struct StreamingContext {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for StreamingContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingContext")
            .field("job_id", &self.shared.config.job_id)
            .finish()
    }
}

impl StreamingContext {
    #[cfg(feature = "client")]
    /// A context reading from and writing to the brokers in `config`, one batch per
    /// `batch_interval`. Must not be called from inside a tokio runtime (it runs its own).
    pub fn new(
        config: StreamConfig,
        batch_interval: Duration,
    ) -> Result<StreamingContext, StreamError> {
        let log = crate::client_log::ClientLog::connect(&config.brokers)?;
        StreamingContext::with_log(config, batch_interval, Arc::new(log))
    }

    /// A context over any [`Log`] (tests use [`crate::log::MemoryLog`]).
    pub fn with_log(
        config: StreamConfig,
        batch_interval: Duration,
        log: Arc<dyn Log>,
    ) -> Result<StreamingContext, StreamError> {
        config.validate()?;
        let interval_ms = u64::try_from(batch_interval.as_millis()).unwrap_or(u64::MAX);
        let ctx = Context::new(ContextConfig {
            workers: config.workers,
            ..ContextConfig::default()
        })?;
        let graph = StreamGraph::new(ctx, interval_ms)?;
        let env = Arc::new(SinkEnv {
            log: log.clone(),
            job_id: config.job_id.clone(),
            sinks: Mutex::new(Vec::new()),
        });
        graph.set_sink_env(env.clone());
        Ok(StreamingContext {
            shared: Arc::new(Shared {
                config,
                interval_ms,
                log,
                graph,
                env,
                topics: Mutex::new(Vec::new()),
                ranges: Mutex::new(Arc::new(Vec::new())),
                listeners: Mutex::new(Vec::new()),
                control: Mutex::new(Control::default()),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        })
    }

    /// The DStream graph (for `queue_stream`, `input_stream` and state inspection).
    pub fn graph(&self) -> &StreamGraph {
        &self.shared.graph
    }

    /// The execution context.
    pub fn context(&self) -> &Context {
        self.shared.graph.context()
    }

    /// The log the job reads and writes.
    pub fn log(&self) -> Arc<dyn Log> {
        self.shared.log.clone()
    }

    /// A DStream of the records of `topics`: each batch is one RDD partition per (topic,
    /// partition) offset range, read with the bounded-range reader.
    pub fn topic_stream(&self, topics: &[&str]) -> Result<DStream<Record>, StreamError> {
        for t in topics {
            self.shared.log.partitions(t)?;
        }
        let mine: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        lock(&self.shared.topics).extend(mine.iter().cloned());
        let shared = self.shared.clone();
        let ctx = self.context().clone();
        Ok(self.shared.graph.input_stream(move |_| {
            let all = lock(&shared.ranges).clone();
            let ranges: Vec<OffsetRange> = all
                .iter()
                .filter(|r| mine.contains(&r.topic))
                .cloned()
                .collect();
            Ok(source_rdd(&ctx, shared.log.clone(), ranges))
        }))
    }

    /// Adds a listener for batch reports.
    pub fn add_listener(&self, l: Arc<dyn StreamingListener>) {
        lock(&self.shared.listeners).push(l);
    }

    /// Starts the driver thread.
    pub fn start(&self) -> Result<(), StreamError> {
        {
            let mut c = lock(&self.shared.control);
            if c.started {
                return Err(StreamError::State("already started"));
            }
            c.started = true;
        }
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("sluice-stream-driver".into())
            .spawn(move || {
                let result = run_driver(&shared);
                if let Err(e) = &result {
                    tracing::error!(error = %e, "streaming job stopped with an error");
                }
                let mut c = lock(&shared.control);
                c.finished = Some(result);
                shared.wake.notify_all();
            })
            .map_err(|e| StreamError::Config(format!("cannot start the driver thread: {e}")))?;
        *lock(&self.thread) = Some(handle);
        Ok(())
    }

    /// Asks the job to stop: `graceful` finishes the available input and closes open event-time
    /// windows first; otherwise it stops after the current batch.
    pub fn stop(&self, graceful: bool) {
        let mut c = lock(&self.shared.control);
        c.stop = Some(c.stop.unwrap_or(true) && graceful);
        self.shared.wake.notify_all();
    }

    /// Waits until the job stops (by `stop`, idleness or an error) and returns its summary.
    pub fn await_termination(&self) -> Result<Summary, StreamError> {
        let mut c = lock(&self.shared.control);
        if !c.started {
            return Err(StreamError::State("not started"));
        }
        while c.finished.is_none() {
            c = self.shared.wake.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        let result = c
            .finished
            .clone()
            .unwrap_or(Err(StreamError::State("stopped")));
        drop(c);
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
        result
    }
}

impl Drop for StreamingContext {
    fn drop(&mut self) {
        self.stop(false);
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }
}

/// The source RDD: one partition per offset range, read when computed.
pub(crate) fn source_rdd(
    ctx: &Context,
    log: Arc<dyn Log>,
    ranges: Vec<OffsetRange>,
) -> crate::Rdd<Record> {
    // Start every range's read now (when the log can), so the fetches of all partitions overlap
    // each other and the processing of the partitions already read. A retried task, or a log
    // that cannot read ahead, reads synchronously.
    let pending: Vec<Mutex<Option<PendingRead>>> = ranges
        .iter()
        .map(|r| {
            Mutex::new(
                (!r.is_empty())
                    .then(|| log.start_read(&r.topic, r.partition, r.from, r.until))
                    .flatten(),
            )
        })
        .collect();
    let ranges = Arc::new(ranges);
    let pending = Arc::new(pending);
    ctx.source("log", ranges.len(), move |p, _| {
        let r = &ranges[p];
        if r.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let started = lock(&pending[p]).take();
        let records = match started {
            Some(wait) => wait(),
            None => log.read_range(&r.topic, r.partition, r.from, r.until),
        }
        .map_err(|e| {
            TaskError::Source(format!(
                "{}-{} [{}, {}): {e}",
                r.topic, r.partition, r.from, r.until
            ))
        })?;
        Ok(Box::new(records.into_iter()))
    })
}

/// What a driver step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// A batch ran.
    Ran(BatchReport),
}

/// The driver's state: planner, batch counter, last saved state. Synchronous; time passed in.
pub struct Driver {
    shared: Arc<Shared>,
    planner: Planner,
    next_batch: u64,
    last_time_ms: Option<i64>,
    pending_rerun: Option<OffsetLogEntry>,
    last_state: Vec<Vec<u8>>,
    summary: Summary,
    late_before: u64,
}

impl Driver {
    /// A driver for the context, recovering progress from the log.
    pub fn new(ssc: &StreamingContext) -> Result<Driver, StreamError> {
        Driver::for_shared(ssc.shared.clone())
    }

    fn for_shared(shared: Arc<Shared>) -> Result<Driver, StreamError> {
        let c = &shared.config;
        let mut pc = PlannerConfig::new(shared.interval_ms);
        pc.max_records_per_partition = c.max_records_per_partition;
        pc.backpressure = c.backpressure;
        pc.initial_rate = c.initial_rate;
        pc.starting_offsets = c.starting_offsets;
        pc.pid = PidConfig {
            min_rate: c.min_rate,
            ..PidConfig::new(shared.interval_ms)
        };
        let planner = Planner::new(pc).map_err(|e| StreamError::Config(e.to_string()))?;
        for t in [c.offsets_topic(), c.commits_topic(), c.state_topic()] {
            shared.log.ensure_topic(&t, 1, INTERNAL_TOPIC_CONFIGS)?;
        }
        let mut d = Driver {
            shared,
            planner,
            next_batch: 0,
            last_time_ms: None,
            pending_rerun: None,
            last_state: Vec::new(),
            summary: Summary::default(),
            late_before: 0,
        };
        d.recover()?;
        Ok(d)
    }

    fn last_record(&self, topic: &str) -> Result<Option<Record>, StreamError> {
        let o = self.shared.log.offsets(topic, 0)?;
        if o.end <= o.start {
            return Ok(None);
        }
        Ok(self
            .shared
            .log
            .read_range(topic, 0, (o.end - 1).max(o.start), o.end)?
            .pop())
    }

    fn recover(&mut self) -> Result<(), StreamError> {
        let c = &self.shared.config;
        let offsets = self
            .last_record(&c.offsets_topic())?
            .map(|r| OffsetLogEntry::decode(r.value.as_deref().unwrap_or_default()))
            .transpose()?;
        let commit = self
            .last_record(&c.commits_topic())?
            .map(|r| CommitLogEntry::decode(r.value.as_deref().unwrap_or_default()))
            .transpose()?;
        self.last_state = self.shared.graph.snapshot_state()?;
        let workers = self.shared.graph.context().workers();
        if let Some(o) = offsets
            .as_ref()
            .filter(|o| o.workers != 0 && o.workers != workers)
        {
            return Err(StreamError::Config(format!(
                "job {} ran with {} workers and now has {workers}: partition counts would change and \
                 break exactly-once output; set StreamConfig::workers = Some({})",
                c.job_id, o.workers, o.workers
            )));
        }
        match recover(offsets, commit)? {
            Recovery::Fresh => {}
            Recovery::Resume { last } => {
                tracing::info!(
                    batch = last.batch,
                    "resuming after the last committed batch"
                );
                self.restore_state(last.batch)?;
                self.planner.resume_after(&last.ranges);
                self.next_batch = last.batch + 1;
                self.last_time_ms = Some(last.time_ms);
            }
            Recovery::Rerun { entry, state_of } => {
                tracing::info!(
                    batch = entry.batch,
                    "re-running the batch interrupted by a crash"
                );
                if let Some(b) = state_of {
                    self.restore_state(b)?;
                }
                self.planner.resume_after(&entry.ranges);
                self.next_batch = entry.batch;
                self.last_time_ms = Some(entry.time_ms - self.shared.interval_ms as i64);
                self.pending_rerun = Some(entry);
            }
        }
        self.late_before = self.shared.graph.late_dropped();
        Ok(())
    }

    /// Restores the state snapshots taken after `batch` from the state topic.
    fn restore_state(&mut self, batch: u64) -> Result<(), StreamError> {
        if self.shared.graph.stateful_nodes().is_empty() {
            return Ok(());
        }
        let topic = self.shared.config.state_topic();
        let o = self.shared.log.offsets(&topic, 0)?;
        // Each batch writes its chunks then commits, so the wanted snapshot is among the last
        // records; scan back in growing windows to its first chunk.
        let mut window = 8i64;
        loop {
            let from = (o.end - window).max(o.start);
            let records = self.shared.log.read_range(&topic, 0, from, o.end)?;
            if let Some(snap) = assemble_state(&records, batch)? {
                self.shared.graph.restore_state(&snap.snapshots)?;
                self.last_state = snap.snapshots;
                return Ok(());
            }
            if from == o.start {
                return Err(StreamError::Progress(format!(
                    "no state snapshot for committed batch {batch}"
                )));
            }
            window *= 4;
        }
    }

    fn write_progress(
        &self,
        topic: &str,
        key: &str,
        value: Vec<u8>,
        headers: Vec<(String, Option<Bytes>)>,
    ) -> Result<(), StreamError> {
        let rec = OutRecord {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::from(value)),
            headers,
            timestamp_ms: None,
        };
        self.shared.log.write(topic, 0, vec![rec])
    }

    fn save_state(&mut self, batch: u64) -> Result<(), StreamError> {
        let snapshots = self.shared.graph.snapshot_state()?;
        if !snapshots.is_empty() {
            let bytes = StateEntryRecord {
                version: PROGRESS_VERSION,
                batch,
                snapshots: snapshots.clone(),
            }
            .encode();
            let chunks: Vec<&[u8]> = bytes.chunks(STATE_CHUNK_BYTES_MAX).collect();
            let n = chunks.len();
            let topic = self.shared.config.state_topic();
            let records = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| OutRecord {
                    // Compaction keeps the last two batches' chunks (parity), enough to restore
                    // the last committed batch while the next one is being written.
                    key: Some(Bytes::from(format!("state/{}/{i}", batch % 2))),
                    value: Some(Bytes::copy_from_slice(c)),
                    headers: vec![
                        ("batch".into(), Some(Bytes::from(batch.to_string()))),
                        ("chunk".into(), Some(Bytes::from(format!("{i}/{n}")))),
                    ],
                    timestamp_ms: None,
                })
                .collect();
            self.shared.log.write(&topic, 0, records)?;
        }
        self.last_state = snapshots;
        Ok(())
    }

    fn offsets_now(&self) -> Result<BTreeMap<TopicPartition, PartitionOffsets>, StreamError> {
        let topics = lock(&self.shared.topics).clone();
        let mut out = BTreeMap::new();
        for t in topics {
            for p in 0..self.shared.log.partitions(&t)? {
                out.insert(
                    TopicPartition::new(t.clone(), p),
                    self.shared.log.offsets(&t, p)?,
                );
            }
        }
        Ok(out)
    }

    /// The time of the next batch: one interval after the last, or the first interval boundary
    /// after `now_ms` for a fresh job.
    pub fn next_batch_time(&self, now_ms: i64) -> i64 {
        let i = self.shared.interval_ms as i64;
        match self.last_time_ms {
            Some(t) => t + i,
            None => (now_ms.div_euclid(i) + 1) * i,
        }
    }

    /// Runs one batch at `batch_time_ms` (or re-runs the batch a crash interrupted, at its recorded
    /// time). `is_final` closes event-time windows (graceful stop). `clock` gives the current time.
    pub fn step(
        &mut self,
        batch_time_ms: i64,
        is_final: bool,
        clock: &dyn Fn() -> i64,
    ) -> Result<StepOutcome, StreamError> {
        let started_ms = clock();
        let (entry, rerun) = match self.pending_rerun.take() {
            Some(e) => (e, true),
            None => {
                let plan = self.planner.plan(&self.offsets_now()?);
                for loss in &plan.data_loss {
                    tracing::warn!(topic = %loss.tp.topic, partition = loss.tp.partition, expected = loss.expected, log_start = loss.log_start, "input deleted by retention before it was read; skipping ahead");
                }
                let entry = OffsetLogEntry {
                    version: PROGRESS_VERSION,
                    batch: self.next_batch,
                    time_ms: batch_time_ms,
                    ranges: plan.ranges,
                    output_starts: self.shared.env.output_starts()?,
                    is_final,
                    workers: self.shared.graph.context().workers(),
                };
                self.write_progress(
                    &self.shared.config.offsets_topic(),
                    "offsets",
                    entry.encode(),
                    Vec::new(),
                )?;
                (entry, false)
            }
        };
        let attempts = self.shared.config.batch_attempts;
        let mut attempt = 0;
        loop {
            let prior = if rerun || attempt > 0 {
                Some(entry.output_starts.as_slice())
            } else {
                None
            };
            let result = self.run_recorded(&entry, prior);
            match result {
                Ok(()) => break,
                Err(e) if attempt + 1 < attempts => {
                    attempt += 1;
                    tracing::warn!(batch = entry.batch, attempt, error = %e, "batch failed; re-running it from the previous state");
                    self.shared.graph.restore_state(&self.last_state)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.save_state(entry.batch)?;
        let commit = CommitLogEntry {
            version: PROGRESS_VERSION,
            batch: entry.batch,
            time_ms: entry.time_ms,
        };
        self.write_progress(
            &self.shared.config.commits_topic(),
            "commit",
            commit.encode(),
            Vec::new(),
        )?;
        let finished_ms = clock();
        let late_now = self.shared.graph.late_dropped();
        let report = BatchReport {
            batch: entry.batch,
            batch_time_ms: entry.time_ms,
            input: entry.ranges.clone(),
            scheduling_delay_ms: (started_ms - entry.time_ms).max(0) as u64,
            processing_time_ms: (finished_ms - started_ms).max(0) as u64,
            total_delay_ms: (finished_ms - entry.time_ms).max(0) as u64,
            late_dropped: late_now.saturating_sub(self.late_before),
            rerun,
        };
        self.late_before = late_now;
        self.next_batch = entry.batch + 1;
        self.last_time_ms = Some(entry.time_ms);
        self.planner.on_batch_completed(
            finished_ms,
            report.n_records(),
            report.processing_time_ms,
            report.scheduling_delay_ms,
        );
        tracing::info!("{report}");
        self.summary.add(&report);
        for l in lock(&self.shared.listeners).iter() {
            l.on_batch_completed(&report);
        }
        Ok(StepOutcome::Ran(report))
    }

    fn run_recorded(
        &self,
        entry: &OffsetLogEntry,
        prior: Option<&[crate::progress::OutputStart]>,
    ) -> Result<(), StreamError> {
        let found = self.shared.env.prepare(entry.batch, prior)?;
        if found > 0 {
            tracing::info!(
                batch = entry.batch,
                records = found,
                "output already written by an earlier attempt will be skipped"
            );
        }
        *lock(&self.shared.ranges) = Arc::new(entry.ranges.clone());
        self.shared.graph.run_batch(&Batch {
            id: entry.batch,
            time_ms: entry.time_ms,
            is_final: entry.is_final,
        })
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Reassembles the state record of `batch` from the tail of the state topic.
fn assemble_state(records: &[Record], batch: u64) -> Result<Option<StateEntryRecord>, StreamError> {
    let header = |r: &Record, k: &str| -> Option<String> {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.as_ref())
            .and_then(|v| std::str::from_utf8(v).ok().map(str::to_string))
    };
    let want = batch.to_string();
    // The last complete run of chunks 0..n of this batch.
    let mut best: Option<Vec<u8>> = None;
    let mut current: Vec<u8> = Vec::new();
    let mut expect = 0usize;
    for r in records {
        if header(r, "batch").as_deref() != Some(want.as_str()) {
            continue;
        }
        let Some((i, n)) = header(r, "chunk").and_then(|c| {
            let (i, n) = c.split_once('/')?;
            Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?))
        }) else {
            continue;
        };
        if i == 0 {
            current.clear();
            expect = 0;
        }
        if i != expect {
            continue;
        }
        current.extend_from_slice(r.value.as_deref().unwrap_or_default());
        expect += 1;
        if expect == n {
            best = Some(std::mem::take(&mut current));
        }
    }
    best.map(|b| StateEntryRecord::decode(&b)).transpose()
}

/// The driver thread: batches at interval boundaries until stopped.
fn run_driver(shared: &Arc<Shared>) -> Result<Summary, StreamError> {
    let mut driver = Driver::for_shared(shared.clone())?;
    let clock = wall_ms;
    let idle_limit = shared.config.stop_when_idle.map(|d| d.as_millis() as i64);
    let mut last_input_ms = clock();
    let mut finishing = false;
    let mut targets: Option<BTreeMap<TopicPartition, PartitionOffsets>> = None;
    loop {
        let t = driver.next_batch_time(clock());
        // Wait for the batch time, waking early on stop requests.
        {
            let mut c = lock(&shared.control);
            loop {
                if c.stop == Some(false) {
                    drop(c);
                    return finish(shared, driver);
                }
                if c.stop == Some(true) {
                    finishing = true;
                }
                let now = clock();
                if now >= t || driver.pending_rerun.is_some() {
                    break;
                }
                let wait = Duration::from_millis((t - now) as u64);
                c = shared
                    .wake
                    .wait_timeout(c, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
        // A graceful stop processes the input that existed when it was requested (as Spark
        // processes what it received), so continuous input cannot hold it off forever.
        if finishing && targets.is_none() {
            targets = Some(driver.offsets_now()?);
        }
        let StepOutcome::Ran(report) = driver.step(t, false, &clock)?;
        if report.n_records() > 0 {
            last_input_ms = clock();
        } else if idle_limit.is_some_and(|l| clock() - last_input_ms >= l) {
            finishing = true;
        }
        let reached = targets.as_ref().is_some_and(|targets| {
            targets.iter().all(|(tp, o)| {
                driver
                    .planner
                    .positions()
                    .get(tp)
                    .is_some_and(|&p| p >= o.end)
            })
        });
        if finishing && (report.n_records() == 0 || reached) {
            // Caught up: one final batch closes the open event-time windows.
            let t = driver.next_batch_time(clock());
            driver.step(t, true, &clock)?;
            return finish(shared, driver);
        }
    }
}

fn finish(shared: &Arc<Shared>, driver: Driver) -> Result<Summary, StreamError> {
    let summary = driver.summary.clone();
    tracing::info!("streaming job {} stopped: {summary}", shared.config.job_id);
    for l in lock(&shared.listeners).iter() {
        l.on_stopped(&summary);
    }
    Ok(summary)
}
