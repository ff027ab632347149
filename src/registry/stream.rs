//! One running delivery stream: its log, its definition, its delivery workers, and the gate
//! puts pass through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use super::{Definition, Owner, PutError};
use crate::config::DeliveryStreamConfig;
use crate::delivery::worker::{BACKUP_CONSUMER, CONSUMER};
use crate::delivery::{WorkerStatus, Workers};
use crate::log::{Append, AppendError, Appended, ShardId, ShardProblem, ShardStats, StreamLog};
use crate::telemetry::StreamGauges;

/// One running delivery stream.
pub struct DeliveryStream {
    pub name: String,
    pub arn: String,
    pub owner: Owner,
    pub created_at: f64,
    pub log: Arc<dyn StreamLog>,
    definition: RwLock<Definition>,
    workers: Mutex<Option<Workers>>,
    /// Closed (false) once the stream is being deleted or removed: puts are refused. Puts hold
    /// it for reading while they append, so closing it waits for appends in flight.
    accepting: tokio::sync::RwLock<bool>,
    deleting: AtomicBool,
}

impl DeliveryStream {
    /// A stream that serves from now on: its log, its definition and its running workers.
    pub(crate) fn new(
        name: String,
        arn: String,
        owner: Owner,
        created_at: f64,
        log: Arc<dyn StreamLog>,
        definition: Definition,
        workers: Workers,
    ) -> Self {
        Self {
            name,
            arn,
            owner,
            created_at,
            log,
            definition: RwLock::new(definition),
            workers: Mutex::new(Some(workers)),
            accepting: tokio::sync::RwLock::new(true),
            deleting: AtomicBool::new(false),
        }
    }

    /// Appends records: one result per record, in order. The whole call is refused once the
    /// stream is being deleted.
    pub async fn put(
        &self,
        records: Vec<Bytes>,
    ) -> Result<Vec<Result<Appended, AppendError>>, PutError> {
        if let Some(source) = self.definition().config.kinesis_stream_source_configuration.as_ref()
        {
            return Err(PutError::NotDirectPut {
                stream: self.name.clone(),
                kinesis: source.stream_name().unwrap_or_default().to_string(),
            });
        }
        let accepting = self.accepting.read().await;
        if !*accepting {
            return Err(PutError::Deleting {
                stream: self.name.clone(),
                account: self.account().to_string(),
            });
        }
        let results = self.log.append(records.into_iter().map(Append::implicit).collect()).await;
        drop(accepting);
        Ok(results)
    }

    /// How much each shard of the log holds.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.log.stats()
    }

    /// The shards of the log that refuse appends, and why.
    pub fn log_problems(&self) -> Vec<ShardProblem> {
        self.log.problems()
    }

    /// The stream's current definition.
    pub fn definition(&self) -> Definition {
        self.definition.read().expect("not poisoned").clone()
    }

    /// The stream's current configuration.
    pub fn config(&self) -> Arc<DeliveryStreamConfig> {
        self.definition.read().expect("not poisoned").config.clone()
    }

    /// `VersionId`.
    pub fn version(&self) -> u64 {
        self.definition.read().expect("not poisoned").version
    }

    pub(crate) fn set_definition(&self, definition: Definition) {
        *self.definition.write().expect("not poisoned") = definition;
    }

    /// Whether the stream is being deleted (or removed from the config file).
    pub fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::Acquire)
    }

    /// Marks the stream as being deleted and refuses puts from now on; returns once the puts
    /// in flight have been stored.
    pub(crate) async fn close(&self) {
        self.deleting.store(true, Ordering::Release);
        *self.accepting.write().await = false;
    }

    /// Marks a stream that is not serving yet as being deleted (a deletion accepted before a
    /// restart).
    pub(crate) fn mark_deleting(&self) {
        self.deleting.store(true, Ordering::Release);
        if let Ok(mut accepting) = self.accepting.try_write() {
            *accepting = false;
        }
    }

    /// The delivery workers' progress (for metrics), by shard, while workers run.
    pub fn worker_statuses(&self) -> Vec<(ShardId, Arc<WorkerStatus>)> {
        self.workers
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|w| w.statuses(CONSUMER))
            .unwrap_or_default()
    }

    /// What holds each shard's delivery back, if anything: (consumer, shard, problem), the
    /// delivery workers first, then the source-record backup.
    pub fn delivery_problems(&self) -> Vec<(&'static str, u32, crate::delivery::health::Problem)> {
        let workers = self.workers.lock().expect("not poisoned");
        let Some(workers) = workers.as_ref() else { return Vec::new() };
        [CONSUMER, BACKUP_CONSUMER]
            .into_iter()
            .flat_map(|consumer| {
                workers.statuses(consumer).into_iter().filter_map(move |(shard, status)| {
                    status.health().problem().map(|p| (consumer, shard.0, p))
                })
            })
            .collect()
    }

    /// The stream's scrape-time gauges at `now` (ms since the epoch).
    pub(crate) fn gauges(&self, now: i64) -> StreamGauges {
        let mut oldest: Option<i64> = None;
        let mut backlog_records = 0u64;
        let mut disk_bytes = 0u64;
        let shards = self.shard_stats();
        for (id, status) in self.worker_statuses() {
            let Some(shard) = shards.iter().find(|s| s.shard == id) else { continue };
            backlog_records += shard.next_seq.saturating_sub(status.next_seq());
            disk_bytes += shard.bytes;
            if let Some(arrival) = status.oldest_undelivered_ms() {
                oldest = Some(oldest.map_or(arrival, |o: i64| o.min(arrival)));
            }
        }
        // How long each shard has not moved (0: it moves), the longest of its consumers.
        let mut blocked_seconds: BTreeMap<u32, f64> =
            shards.iter().map(|shard| (shard.shard.0, 0.0)).collect();
        for (_, shard, problem) in self.delivery_problems() {
            let b = blocked_seconds.entry(shard).or_default();
            *b = b.max(problem.blocked_for.as_secs_f64());
        }
        StreamGauges {
            stream: self.name.clone(),
            destination: self.definition().metric,
            freshness_seconds: oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
            backlog_records,
            disk_bytes,
            blocked_seconds,
        }
    }

    /// Takes the running workers out (to stop them).
    pub(crate) fn take_workers(&self) -> Option<Workers> {
        self.workers.lock().expect("not poisoned").take()
    }

    pub(crate) fn put_workers(&self, workers: Workers) {
        let old = self.workers.lock().expect("not poisoned").replace(workers);
        if let Some(old) = old {
            // Never happens: callers take the old workers out first.
            old.abandon();
        }
    }

    /// The account id in the stream's ARN.
    pub(crate) fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("000000000000")
    }
}
