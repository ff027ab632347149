//! From the log's raw records to the objects they become.
//!
//! Firehose's processing order (FIREHOSE.md 3.10): de-aggregation -> transform -> partition
//! keys (jq) -> delimiter -> one buffer per partition -> format -> compression. The transform
//! runs on chunks of records (the Lambda processor's `BufferSizeInMBs` /
//! `BufferIntervalInSeconds`); each processed record then goes to its partition's buffer
//! ([`Buffers`]), which cuts objects deterministically. Everything here is a function of the
//! log (and of the transform, which must then be deterministic too), so a replay becomes the
//! same objects under the same keys.
//!
//! Records that cannot be processed or partitioned become error-output documents. Nothing is
//! dropped without a trace except records a transform marks `Dropped`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use hydrant_destinations::error_output::{ErrorDocument, Extra};
use serde_json::Value;

use super::batch::BatchPolicy;
use super::buffers::{BufferKey, Buffers, Layout, Markers, Pos, Pushed};
pub use super::buffers::{Unit, PARTITIONING_FAILED};
use super::error_output::{self, output_type};
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::log::Record;
use crate::naming::{BatchIdentity, Expression, ObjectNamer, Partition, UnnameableRecord};
use crate::processors::{CloudWatchLogs, ProcessingError, Processors};
use crate::wasm_host::{InputRecord, InvocationError, RecordResult, Transform};

/// How a stream processes and partitions its records, built once per worker.
pub struct Stages {
    pub processors: Option<Arc<Processors>>,
    pub transform: Option<TransformStage>,
    pub partitioning: Option<Partitioning>,
    /// What `format-conversion-failed` documents name as the schema (`dataCatalogTable`).
    pub catalog: Value,
}

impl Stages {
    /// No processing: records go into one buffer as they are.
    pub fn plain() -> Self {
        Self { processors: None, transform: None, partitioning: None, catalog: Value::Null }
    }
}

/// The Lambda processor, run as a WebAssembly module.
pub struct TransformStage {
    /// The stream, for the transform's metrics.
    pub stream: String,
    pub transform: Transform,
    pub lambda_arn: String,
    pub retries: u32,
    /// `BufferSizeInMBs`: records handed to one invocation.
    pub chunk_bytes: u64,
    /// `BufferIntervalInSeconds` in ms: the longest a record waits (by arrival time) for its
    /// chunk to fill.
    pub chunk_interval_ms: i64,
}

/// Which object keys the destination's store takes (its destination knows; delivery does
/// not): why `key` would be refused on every write, if it would.
pub trait StoreKeys: Send + Sync {
    fn check(&self, key: &str) -> Result<(), String>;
}

/// Dynamic partitioning: which keys the prefix uses, how many partitions may be open, and
/// what makes a key the store takes.
pub struct Partitioning {
    pub query_keys: BTreeSet<String>,
    pub lambda_keys: BTreeSet<String>,
    pub max_partitions: usize,
    namer: Arc<ObjectNamer>,
    rules: Arc<dyn StoreKeys>,
    version: u64,
}

impl Partitioning {
    /// `rules` are the store's, `version` the stream version object keys will carry.
    pub fn for_prefix(
        namer: Arc<ObjectNamer>,
        max_partitions: usize,
        rules: Arc<dyn StoreKeys>,
        version: u64,
    ) -> Self {
        let mut query_keys = BTreeSet::new();
        let mut lambda_keys = BTreeSet::new();
        for expression in namer.prefix().expressions() {
            match expression {
                Expression::PartitionKeyFromQuery(k) => {
                    query_keys.insert(k.to_string());
                }
                Expression::PartitionKeyFromLambda(k) => {
                    lambda_keys.insert(k.to_string());
                }
                _ => {}
            }
        }
        Self { query_keys, lambda_keys, max_partitions, namer, rules, version }
    }

    /// Whether a record of `partition` that arrived at `arrival_ms` can be named: its values
    /// and the whole key they make. A record that cannot would block its shard forever (the
    /// store refuses the key on every retry), so it goes to the error output instead.
    fn check_key(&self, partition: &Partition, arrival_ms: i64) -> Result<(), UnnameableRecord> {
        partition.check_values()?;
        // The batch's identity changes only the key's fixed-length id, not its length.
        let identity = BatchIdentity {
            stream: self.namer.stream(),
            shard: 0,
            first_seq: 0,
            last_seq: 0,
            variant: 1,
        };
        let key = self
            .namer
            .object_key(self.version, &identity, arrival_ms, Some(partition))
            .map_err(|e| UnnameableRecord::InvalidKey(e.to_string()))?;
        self.rules.check(&key).map_err(UnnameableRecord::InvalidKey)
    }

    /// The partition of a record: the keys its prefix uses, or why there is none.
    fn partition(
        &self,
        query: Option<&BTreeMap<String, String>>,
        lambda: &BTreeMap<String, String>,
    ) -> Result<Partition, String> {
        let pick =
            |wanted: &BTreeSet<String>, have: Option<&BTreeMap<String, String>>, source: &str| {
                wanted
                    .iter()
                    .map(|k| match have.and_then(|m| m.get(k)) {
                        Some(v) => Ok((k.clone(), v.clone())),
                        None => Err(format!(
                            "partition key {k:?} ({source}) is missing for this record"
                        )),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()
            };
        Ok(Partition {
            query: pick(&self.query_keys, query, "partitionKeyFromQuery")?,
            lambda: pick(&self.lambda_keys, Some(lambda), "partitionKeyFromLambda")?,
        })
    }
}

/// Where a processed record came from.
#[derive(Clone, Copy)]
struct Origin {
    pos: Pos,
    arrival_ms: i64,
}

/// One shard's processing: records in, sealed objects out ([`Assembler::take_sealed`]).
pub struct Assembler<'c> {
    stages: Stages,
    shard: u32,
    buffers: Buffers<'c>,
    chunk: Vec<(Origin, Bytes)>,
    chunk_bytes: u64,
    /// The sequence number after the last record pushed.
    next_seq: u64,
}

impl<'c> Assembler<'c> {
    /// Starts processing a shard at `start_seq`; `markers` say what a replay must skip.
    pub fn new(
        stages: Stages,
        codec: &'c ObjectCodec,
        shard: u32,
        layout: Layout,
        policy: BatchPolicy,
        markers: Markers,
        start_seq: u64,
    ) -> Self {
        let partitioned = stages.partitioning.is_some();
        Self {
            stages,
            shard,
            buffers: Buffers::new(policy, codec, layout, partitioned, markers, start_seq),
            chunk: Vec::new(),
            chunk_bytes: 0,
            next_seq: start_seq,
        }
    }

    /// Takes the next record from the log.
    pub fn push(&mut self, record: &Record) -> std::io::Result<()> {
        self.next_seq = record.seq + 1;
        if let (Some(stage), Some((first, _))) = (&self.stages.transform, self.chunk.first()) {
            if record.arrival_ms >= first.arrival_ms.saturating_add(stage.chunk_interval_ms) {
                self.run_transform()?;
            }
        }
        let first = Origin { pos: Pos { seq: record.seq, sub: 0 }, arrival_ms: record.arrival_ms };
        let subs = match &self.stages.processors {
            None => vec![record.data.clone()],
            Some(p) => match p.deaggregate(record.data.clone()) {
                Ok(subs) => subs,
                Err(e) => {
                    self.buffers.set_floor(record.seq);
                    let doc =
                        self.processing_failed(first, &record.data, e.code(), &e.to_string(), 1);
                    self.error(output_type::PROCESSING_FAILED, first, doc)?;
                    self.settle();
                    return Ok(());
                }
            },
        };
        let cloudwatch = self.stages.processors.as_ref().and_then(|p| p.cloudwatch_logs().copied());
        let subs = match cloudwatch {
            Some(cw) => self.unpack(cw, first, subs)?,
            None => subs,
        };
        for (sub, data) in subs.into_iter().enumerate() {
            let origin = Origin { pos: Pos { seq: record.seq, sub: sub as u32 }, ..first };
            match &self.stages.transform {
                Some(stage) => {
                    self.chunk_bytes += data.len() as u64;
                    let full = self.chunk_bytes >= stage.chunk_bytes;
                    self.chunk.push((origin, data));
                    if full {
                        self.run_transform()?;
                    }
                }
                None => {
                    self.buffers.set_floor(record.seq);
                    self.route(origin, data.clone(), data, &BTreeMap::new())?;
                }
            }
        }
        self.settle();
        Ok(())
    }

    /// CloudWatch Logs records (`Decompression`, `CloudWatchLogProcessing`): the records each
    /// of `subs` becomes; one that cannot be unpacked goes to the error output as it came in.
    fn unpack(
        &mut self,
        cloudwatch: CloudWatchLogs,
        first: Origin,
        subs: Vec<Bytes>,
    ) -> std::io::Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(subs.len());
        for data in subs {
            match cloudwatch.unpack(data.clone()) {
                Ok(records) => out.extend(records),
                Err(error) => {
                    self.buffers.set_floor(first.pos.seq);
                    let kind = if error.is_decompression() {
                        output_type::DECOMPRESSION_FAILED
                    } else {
                        output_type::PROCESSING_FAILED
                    };
                    let doc =
                        self.processing_failed(first, &data, error.code(), &error.to_string(), 1);
                    self.error(kind, first, doc)?;
                }
            }
        }
        Ok(out)
    }

    /// The reader passed an entry that is not a record (a seal) at `position`: no record before
    /// `position + 1` waits to be routed any more, so the checkpoint of a buffer sealed from now
    /// on may pass it (a replay then starts after the seal, where nothing is left to cut).
    pub fn passed(&mut self, position: u64) {
        self.next_seq = self.next_seq.max(position.saturating_add(1));
        self.settle();
    }

    /// The log is read to its end and nothing committed later can arrive before `watermark`:
    /// run a transform chunk that is due and seal the buffers whose window has passed.
    pub fn idle(&mut self, watermark: i64) -> std::io::Result<()> {
        if let Some((first, _)) = self.chunk.first() {
            let chunk_due = self
                .stages
                .transform
                .as_ref()
                .map_or(i64::MAX, |t| first.arrival_ms.saturating_add(t.chunk_interval_ms));
            // The chunk's records are older than everything routed since: a buffer cannot be
            // sealed by the watermark while they might still belong to it.
            let buffer_due = self.buffers.next_window_end().unwrap_or(i64::MAX);
            if watermark >= chunk_due.min(buffer_due) {
                self.run_transform()?;
                self.settle();
            }
        }
        if self.chunk.is_empty() {
            self.buffers.advance(watermark)?;
        }
        Ok(())
    }

    /// Arrival time at which [`Assembler::idle`] has work next.
    pub fn next_due(&self) -> Option<i64> {
        let chunk = self
            .chunk
            .first()
            .zip(self.stages.transform.as_ref())
            .map(|((first, _), t)| first.arrival_ms.saturating_add(t.chunk_interval_ms));
        match (chunk, self.buffers.next_window_end()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arrival time of the oldest record not yet in a sealed object.
    pub fn oldest_pending_arrival(&self) -> Option<i64> {
        let chunk = self.chunk.first().map(|(o, _)| o.arrival_ms);
        match (chunk, self.buffers.oldest_open_arrival()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Objects sealed since the last call, in delivery order.
    pub fn take_sealed(&mut self) -> Vec<Unit> {
        self.buffers.take_sealed()
    }

    /// Seals everything still open (the end of a finite input).
    pub fn finish(&mut self) -> std::io::Result<Vec<Unit>> {
        self.run_transform()?;
        self.settle();
        self.buffers.seal_all()?;
        Ok(self.take_sealed())
    }

    /// Every pushed record is routed or waits in the chunk: tell the buffers how far that is.
    fn settle(&mut self) {
        let floor = self.chunk.first().map_or(self.next_seq, |(o, _)| o.pos.seq);
        self.buffers.set_floor(floor);
    }

    /// Invokes the transform on the pending chunk, with retries, and routes what it returns.
    fn run_transform(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.chunk_bytes = 0;
        let stage = self.stages.transform.as_mut().expect("called with a transform");
        let inputs: Vec<InputRecord> = chunk
            .iter()
            .enumerate()
            .map(|(i, (origin, data))| InputRecord {
                record_id: format!("{}.{}.{i}", origin.pos.seq, self.shard),
                approximate_arrival_timestamp: origin.arrival_ms,
                data: data.clone(),
            })
            .collect();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let started = std::time::Instant::now();
            let result = stage.transform.invoke(&inputs);
            let stream = stage.stream.clone();
            metrics::histogram!("hydrant_execute_processing_duration_seconds", "stream" => stream.clone())
                .record(started.elapsed().as_secs_f64());
            let success = if result.is_ok() { "true" } else { "false" };
            metrics::counter!("hydrant_execute_processing_total", "stream" => stream, "success" => success)
                .increment(1);
            match result {
                Ok(outcomes) => break Ok(outcomes),
                Err(e) if e.is_retryable() && attempts <= stage.retries => {
                    tracing::debug!(lambda = %stage.lambda_arn, attempt = attempts, error = %e, "transform failed; retrying");
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(outcomes) => {
                let (mut ok_records, mut ok_bytes, mut dropped, mut failed) = (0u64, 0u64, 0, 0);
                for outcome in &outcomes {
                    match &outcome.result {
                        RecordResult::Ok { data, .. } => {
                            ok_records += 1;
                            ok_bytes += data.len() as u64;
                        }
                        RecordResult::Dropped => dropped += 1,
                        RecordResult::ProcessingFailed { .. } => failed += 1,
                    }
                }
                let stream =
                    self.stages.transform.as_ref().map(|t| t.stream.clone()).unwrap_or_default();
                metrics::counter!("hydrant_succeed_processing_records_total", "stream" => stream.clone())
                    .increment(ok_records);
                metrics::counter!("hydrant_dropped_processing_records_total", "stream" => stream.clone())
                    .increment(dropped);
                metrics::counter!("hydrant_failed_processing_records_total", "stream" => stream.clone())
                    .increment(failed);
                metrics::counter!("hydrant_succeed_processing_bytes_total", "stream" => stream)
                    .increment(ok_bytes);
                for ((origin, raw), outcome) in chunk.into_iter().zip(outcomes) {
                    self.buffers.set_floor(origin.pos.seq);
                    match outcome.result {
                        RecordResult::Ok { data, partition_keys } => {
                            self.route(origin, raw, data, &partition_keys)?
                        }
                        RecordResult::Dropped => {}
                        RecordResult::ProcessingFailed { error_code, error_message } => {
                            let doc = self.processing_failed(
                                origin,
                                &raw,
                                &error_code,
                                &error_message,
                                1,
                            );
                            self.error(output_type::PROCESSING_FAILED, origin, doc)?;
                        }
                    }
                }
            }
            Err(e) => {
                let e: InvocationError = e;
                tracing::warn!(lambda = %self.lambda_arn(), attempts, error = %e,
                    records = chunk.len(), "transform invocation failed; records go to the error output");
                let stream =
                    self.stages.transform.as_ref().map(|t| t.stream.clone()).unwrap_or_default();
                metrics::counter!("hydrant_failed_processing_records_total", "stream" => stream)
                    .increment(chunk.len() as u64);
                for (origin, raw) in chunk {
                    self.buffers.set_floor(origin.pos.seq);
                    let doc =
                        self.processing_failed(origin, &raw, e.code(), &e.to_string(), attempts);
                    self.error(output_type::PROCESSING_FAILED, origin, doc)?;
                }
            }
        }
        Ok(())
    }

    fn lambda_arn(&self) -> String {
        self.stages.transform.as_ref().map(|t| t.lambda_arn.clone()).unwrap_or_default()
    }

    /// Partition keys, delimiter, then into its partition's buffer. `raw` is the record as
    /// the producer sent it (before the transform): what error documents carry as `rawData`.
    fn route(
        &mut self,
        origin: Origin,
        raw: Bytes,
        data: Bytes,
        lambda_keys: &BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        let (data, query_keys) = match &self.stages.processors {
            None => (data, None),
            Some(p) => match p.post_transform(data) {
                Ok(processed) => (processed.data, processed.partition_keys),
                Err(ProcessingError::Extraction { error, .. }) => {
                    let kind = if self.stages.partitioning.is_some() {
                        PARTITIONING_FAILED
                    } else {
                        output_type::PROCESSING_FAILED
                    };
                    let doc =
                        self.processing_failed(origin, &raw, error.code(), &error.to_string(), 1);
                    return self.error(kind, origin, doc);
                }
                Err(e) => {
                    let doc = self.processing_failed(origin, &raw, e.code(), &e.to_string(), 1);
                    return self.error(output_type::PROCESSING_FAILED, origin, doc);
                }
            },
        };
        let partition = match &self.stages.partitioning {
            None => Partition::default(),
            Some(p) => match p.partition(query_keys.as_ref(), lambda_keys) {
                Ok(partition) => partition,
                Err(message) => {
                    let doc = self.processing_failed(
                        origin,
                        &raw,
                        "DynamicPartitioning.MissingPartitionKey",
                        &message,
                        1,
                    );
                    return self.error(PARTITIONING_FAILED, origin, doc);
                }
            },
        };
        if let Some(p) = &self.stages.partitioning {
            // Buffers whose window has passed close before the cap is counted.
            self.buffers.advance(origin.arrival_ms)?;
            let key = BufferKey::Data(partition.clone());
            // The record that starts an object names it (its arrival is the object's
            // oldest), so the key is checked then: once per object, with the right time.
            if self.buffers.opens_object(&key, data.len() as u64) {
                if let Err(problem) = p.check_key(&partition, origin.arrival_ms) {
                    let doc = self.processing_failed(
                        origin,
                        &raw,
                        problem.code(),
                        &problem.to_string(),
                        1,
                    );
                    return self.error(PARTITIONING_FAILED, origin, doc);
                }
            }
            if !self.buffers.is_open(&key)
                && !self.buffers.delivered(&key, origin.pos)
                && self.buffers.open_partitions() >= p.max_partitions
            {
                let message = format!(
                    "more than {} active partitions; raise hydrant.max_partitions or use fewer \
                     distinct partition keys",
                    p.max_partitions
                );
                let doc = self.processing_failed(
                    origin,
                    &raw,
                    "DynamicPartitioning.PartitionCountExceeded",
                    &message,
                    1,
                );
                return self.error(PARTITIONING_FAILED, origin, doc);
            }
        }
        match self.buffers.push_data(partition, origin.pos, origin.arrival_ms, data)? {
            Pushed::Accepted | Pushed::Skipped => Ok(()),
            Pushed::Rejected(e) => {
                let doc = error_output::format_conversion_failed(
                    &raw,
                    &e,
                    origin.pos,
                    origin.arrival_ms,
                    self.shard,
                    &self.stages.catalog,
                );
                self.error(output_type::FORMAT_CONVERSION_FAILED, origin, doc)
            }
        }
    }

    /// A `processing-failed` (or `partitioning-failed`) document for the record `raw`.
    fn processing_failed(
        &self,
        origin: Origin,
        raw: &[u8],
        code: &str,
        message: &str,
        attempts: u32,
    ) -> Vec<u8> {
        let extra = match &self.stages.transform {
            Some(t) => Extra::Lambda { lambda_arn: &t.lambda_arn },
            None => Extra::None,
        };
        let document = ErrorDocument {
            attempts_made: attempts,
            arrival_ms: origin.arrival_ms,
            code,
            message,
            attempt_ending_ms: now_ms(),
            raw_data: raw,
            extra,
        };
        serde_json::to_vec(&document).expect("serializing plain fields to memory")
    }

    fn error(&mut self, kind: &'static str, origin: Origin, doc: Vec<u8>) -> std::io::Result<()> {
        self.buffers.push_error(kind, origin.pos, origin.arrival_ms, doc)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
