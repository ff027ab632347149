//! From one batch's raw records to the objects it becomes.
//!
//! Firehose's processing order (FIREHOSE.md 3.10): de-aggregation -> transform -> partition
//! keys (jq) -> delimiter -> one buffer per partition -> format -> compression. The batch was
//! cut from the log deterministically, and everything here is a function of its records (and
//! of the transform, which must then be deterministic too), so a replayed batch becomes the
//! same objects under the same keys.
//!
//! With dynamic partitioning, each partition of a batch becomes its own object (split further
//! when it passes `SizeInMBs`); records that cannot be processed or partitioned become
//! error-output documents. Nothing is dropped without a trace except records a transform
//! marks `Dropped`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{json, Value};

use super::error_output::{self, output_type};
use super::naming::{Expression, ObjectNamer, Partition};
use crate::clock::now_ms;
use crate::codec::{ObjectCodec, ObjectEncoder, PushError};
use crate::core::Record;
use crate::processors::{ProcessingError, Processors};
use crate::transform::{InputRecord, InvocationError, RecordResult, Transform};

/// `!{firehose:error-output-type}` of records whose partition could not be determined
/// (extraction failed, a key the prefix needs is missing, or the partition cap was reached).
pub const PARTITIONING_FAILED: &str = "partitioning-failed";

/// How a stream processes and partitions its records, built once per worker.
pub struct Stages {
    pub processors: Option<Arc<Processors>>,
    pub transform: Option<TransformStage>,
    pub partitioning: Option<Partitioning>,
    /// `SizeInMBs`: no object holds more record bytes (after processing) than this.
    pub object_max_bytes: u64,
    /// What `format-conversion-failed` documents name as the schema (`dataCatalogTable`).
    pub catalog: Value,
}

impl Stages {
    /// No processing: records go into one object as they are.
    pub fn plain(object_max_bytes: u64) -> Self {
        Self {
            processors: None,
            transform: None,
            partitioning: None,
            object_max_bytes,
            catalog: Value::Null,
        }
    }
}

/// The Lambda processor, run as a WebAssembly module.
pub struct TransformStage {
    pub transform: Transform,
    pub lambda_arn: String,
    pub retries: u32,
    /// `BufferSizeInMBs`: records handed to one invocation.
    pub chunk_bytes: u64,
}

/// Dynamic partitioning: which keys the prefix uses and how many partitions may be open.
pub struct Partitioning {
    pub query_keys: BTreeSet<String>,
    pub lambda_keys: BTreeSet<String>,
    pub max_partitions: usize,
}

impl Partitioning {
    pub fn for_prefix(namer: &ObjectNamer, max_partitions: usize) -> Self {
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
        Self { query_keys, lambda_keys, max_partitions }
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

/// One object a batch becomes.
pub struct Unit {
    pub kind: UnitKind,
    /// Tells this object's key apart from the batch's other objects (0: the only one).
    pub variant: u64,
    pub body: Bytes,
    /// Records in it (or error documents).
    pub records: u64,
    /// Record bytes in it, before compression.
    pub bytes: u64,
    /// Arrival time of its oldest record: its key's timestamps.
    pub oldest_arrival_ms: i64,
}

pub enum UnitKind {
    Data { partition: Option<Partition> },
    Errors { output_type: &'static str },
}

/// Where a processed record came from.
#[derive(Clone, Copy)]
struct Origin {
    seq: u64,
    arrival_ms: i64,
}

struct Part {
    encoder: Box<dyn ObjectEncoder>,
    index: u32,
    records: u64,
    bytes: u64,
    oldest_arrival_ms: i64,
}

/// Builds the objects of one batch.
pub struct Assembler<'s> {
    stages: &'s mut Stages,
    codec: &'s ObjectCodec,
    shard: u32,
    parts: BTreeMap<Partition, Part>,
    units: Vec<Unit>,
    errors: BTreeMap<&'static str, Vec<(i64, Value)>>,
    chunk: Vec<(Origin, Bytes)>,
    chunk_bytes: u64,
}

impl<'s> Assembler<'s> {
    pub fn new(stages: &'s mut Stages, codec: &'s ObjectCodec, shard: u32) -> Self {
        Self {
            stages,
            codec,
            shard,
            parts: BTreeMap::new(),
            units: Vec::new(),
            errors: BTreeMap::new(),
            chunk: Vec::new(),
            chunk_bytes: 0,
        }
    }

    /// Takes one record from the log.
    pub fn push(&mut self, record: &Record) -> std::io::Result<()> {
        let origin = Origin { seq: record.seq, arrival_ms: record.arrival_ms };
        let subs = match &self.stages.processors {
            None => vec![record.data.clone()],
            Some(p) => match p.deaggregate(record.data.clone()) {
                Ok(subs) => subs,
                Err(e) => {
                    let doc =
                        self.processing_failed(origin, &record.data, e.code(), &e.to_string(), 1);
                    self.error(output_type::PROCESSING_FAILED, origin, doc);
                    return Ok(());
                }
            },
        };
        for sub in subs {
            match &self.stages.transform {
                Some(stage) => {
                    self.chunk_bytes += sub.len() as u64;
                    self.chunk.push((origin, sub));
                    if self.chunk_bytes >= stage.chunk_bytes {
                        self.run_transform()?;
                    }
                }
                None => self.route(origin, sub.clone(), sub, &BTreeMap::new())?,
            }
        }
        Ok(())
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
                record_id: format!("{}.{}.{i}", origin.seq, self.shard),
                approximate_arrival_timestamp: origin.arrival_ms,
                data: data.clone(),
            })
            .collect();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match stage.transform.invoke(&inputs) {
                Ok(outcomes) => break Ok(outcomes),
                Err(e) if e.is_retryable() && attempts <= stage.retries => {
                    tracing::debug!(lambda = %stage.lambda_arn, attempt = attempts, error = %e, "transform failed; retrying");
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(outcomes) => {
                for ((origin, raw), outcome) in chunk.into_iter().zip(outcomes) {
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
                            self.error(output_type::PROCESSING_FAILED, origin, doc);
                        }
                    }
                }
            }
            Err(e) => {
                let e: InvocationError = e;
                tracing::warn!(lambda = %self.lambda_arn(), attempts, error = %e,
                    records = chunk.len(), "transform invocation failed; records go to the error output");
                for (origin, raw) in chunk {
                    let doc =
                        self.processing_failed(origin, &raw, e.code(), &e.to_string(), attempts);
                    self.error(output_type::PROCESSING_FAILED, origin, doc);
                }
            }
        }
        Ok(())
    }

    fn lambda_arn(&self) -> String {
        self.stages.transform.as_ref().map(|t| t.lambda_arn.clone()).unwrap_or_default()
    }

    /// Partition keys, delimiter, then into its partition's object. `raw` is the record as
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
                    self.error(kind, origin, doc);
                    return Ok(());
                }
                Err(e) => {
                    let doc = self.processing_failed(origin, &raw, e.code(), &e.to_string(), 1);
                    self.error(output_type::PROCESSING_FAILED, origin, doc);
                    return Ok(());
                }
            },
        };
        let partition = match &self.stages.partitioning {
            None => Partition::default(),
            Some(p) => match p.partition(query_keys.as_ref(), lambda_keys) {
                Ok(partition) => {
                    if !self.parts.contains_key(&partition) && self.parts.len() >= p.max_partitions
                    {
                        let message = format!(
                            "more than {} active partitions in one buffer; raise hydrant.max_partitions or \
                             use fewer distinct partition keys",
                            p.max_partitions
                        );
                        let doc = self.processing_failed(
                            origin,
                            &raw,
                            "DynamicPartitioning.PartitionCountExceeded",
                            &message,
                            1,
                        );
                        self.error(PARTITIONING_FAILED, origin, doc);
                        return Ok(());
                    }
                    partition
                }
                Err(message) => {
                    let doc = self.processing_failed(
                        origin,
                        &raw,
                        "DynamicPartitioning.MissingPartitionKey",
                        &message,
                        1,
                    );
                    self.error(PARTITIONING_FAILED, origin, doc);
                    return Ok(());
                }
            },
        };
        let max = self.stages.object_max_bytes;
        let full = self
            .parts
            .get(&partition)
            .is_some_and(|p| p.records > 0 && p.bytes + data.len() as u64 > max);
        if full {
            let part = self.parts.remove(&partition).expect("checked");
            let next = part.index + 1;
            self.finish_part(partition.clone(), part)?;
            self.parts.insert(partition.clone(), self.new_part(next, origin.arrival_ms));
        }
        if !self.parts.contains_key(&partition) {
            let part = self.new_part(0, origin.arrival_ms);
            self.parts.insert(partition.clone(), part);
        }
        let part = self.parts.get_mut(&partition).expect("inserted");
        match part.encoder.push(&data) {
            Ok(()) => {
                part.records += 1;
                part.bytes += data.len() as u64;
                part.oldest_arrival_ms = part.oldest_arrival_ms.min(origin.arrival_ms);
            }
            Err(PushError::Rejected(e)) => {
                let rejected = super::batch::Rejected {
                    record: Record { seq: origin.seq, arrival_ms: origin.arrival_ms, data: raw },
                    error: e,
                };
                let doc = error_output::format_conversion_failed(
                    &rejected,
                    self.shard,
                    &self.stages.catalog,
                );
                self.error(output_type::FORMAT_CONVERSION_FAILED, origin, doc);
            }
            Err(PushError::Io(e)) => return Err(e),
        }
        Ok(())
    }

    fn new_part(&self, index: u32, arrival_ms: i64) -> Part {
        Part {
            encoder: self.codec.encoder(),
            index,
            records: 0,
            bytes: 0,
            oldest_arrival_ms: arrival_ms,
        }
    }

    fn finish_part(&mut self, partition: Partition, part: Part) -> std::io::Result<()> {
        if part.records == 0 {
            return Ok(()); // every record was refused by the format: no empty object
        }
        let partitioned = self.stages.partitioning.is_some();
        let variant =
            if !partitioned && part.index == 0 { 0 } else { variant(&partition, part.index) };
        let body = self.codec.seal(part.encoder.finish()?.into())?;
        self.units.push(Unit {
            kind: UnitKind::Data { partition: partitioned.then_some(partition) },
            variant,
            body,
            records: part.records,
            bytes: part.bytes,
            oldest_arrival_ms: part.oldest_arrival_ms,
        });
        Ok(())
    }

    fn processing_failed(
        &self,
        origin: Origin,
        raw: &[u8],
        code: &str,
        message: &str,
        attempts: u32,
    ) -> Value {
        use base64::Engine;
        let mut doc = json!({
            "attemptsMade": attempts,
            "arrivalTimestamp": origin.arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": now_ms(),
            "rawData": base64::engine::general_purpose::STANDARD.encode(raw),
        });
        if let Some(t) = &self.stages.transform {
            doc["lambdaArn"] = json!(t.lambda_arn);
        }
        doc
    }

    fn error(&mut self, kind: &'static str, origin: Origin, doc: Value) {
        self.errors.entry(kind).or_default().push((origin.arrival_ms, doc));
    }

    /// Every object of the batch: data objects, then one error object per error type.
    pub fn finish(mut self) -> std::io::Result<Vec<Unit>> {
        if self.stages.transform.is_some() {
            self.run_transform()?;
        }
        for (partition, part) in std::mem::take(&mut self.parts) {
            self.finish_part(partition, part)?;
        }
        for (kind, docs) in std::mem::take(&mut self.errors) {
            let oldest = docs.iter().map(|(t, _)| *t).min().unwrap_or(0);
            let records = docs.len() as u64;
            let plain = error_output::json_lines(docs.into_iter().map(|(_, d)| d));
            let bytes = plain.len() as u64;
            // Encrypted streams encrypt their error objects too: they carry record data.
            let body = self.codec.seal(plain.into())?;
            self.units.push(Unit {
                kind: UnitKind::Errors { output_type: kind },
                variant: variant_of_type(kind),
                bytes,
                body,
                records,
                oldest_arrival_ms: oldest,
            });
        }
        Ok(self.units)
    }
}

/// Key discriminator of a partition's `index`-th object.
fn variant(partition: &Partition, index: u32) -> u64 {
    let mut md5 = Md5::new();
    for (tag, map) in [(b'q', &partition.query), (b'l', &partition.lambda)] {
        for (k, v) in map {
            md5.update([tag]);
            md5.update((k.len() as u64).to_be_bytes());
            md5.update(k.as_bytes());
            md5.update((v.len() as u64).to_be_bytes());
            md5.update(v.as_bytes());
        }
    }
    md5.update(index.to_be_bytes());
    let digest: [u8; 16] = md5.finalize().into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
}

fn variant_of_type(kind: &str) -> u64 {
    let digest: [u8; 16] = Md5::digest(kind.as_bytes()).into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
}
