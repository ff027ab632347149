//! What goes into a transform and what comes out, and Firehose's rules for turning a
//! function's response into exactly one outcome per input record (FIREHOSE.md §4.3).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// Firehose error codes used by the transform (`errorCode` of `processing-failed` records).
pub mod codes {
    /// The function returned `ProcessingFailed` for the record.
    pub const PROCESSING_FAILED_STATUS: &str = "Lambda.ProcessingFailedStatus";
    /// The response did not contain the record's id.
    pub const MISSING_RECORD_ID: &str = "Lambda.MissingRecordId";
    /// The response contained the record's id more than once.
    pub const DUPLICATED_RECORD_ID: &str = "Lambda.DuplicatedRecordId";
    /// The response entry for the record is malformed (unknown result, `Ok` without data, ...).
    pub const INVALID_RETURN_FORMAT: &str = "Lambda.InvalidReturnFormat";
    /// The invocation failed (trap, timeout, memory limit).
    pub const FUNCTION_ERROR: &str = "Lambda.FunctionError";
    /// The response could not be parsed.
    pub const JSON_PROCESSING_EXCEPTION: &str = "Lambda.JsonProcessingException";
}

/// Firehose's message for a record the function marked `ProcessingFailed`.
pub const PROCESSING_FAILED_MESSAGE: &str = "ProcessingFailed status set for record";
/// Firehose's message for a record whose id was not returned.
pub const MISSING_RECORD_ID_MESSAGE: &str = "One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids.";
/// Firehose's message for a record whose id was returned more than once.
pub const DUPLICATED_RECORD_ID_MESSAGE: &str = "Multiple records were returned with the same record Id. Ensure that the Lambda function returns unique record Ids for each record.";

/// One record handed to the transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Opaque id, unique within the batch (Firehose's `recordId`).
    pub record_id: String,
    /// Epoch milliseconds (Firehose's `approximateArrivalTimestamp`).
    pub approximate_arrival_timestamp: i64,
    /// The record's bytes.
    pub data: Bytes,
}

/// The transform's verdict on one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The input record's id.
    pub record_id: String,
    /// What to do with it.
    pub result: RecordResult,
}

/// What to do with one record after the transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    /// Deliver `data` instead of the original bytes.
    Ok {
        /// The transformed bytes.
        data: Bytes,
        /// Keys for `!{partitionKeyFromLambda:key}`.
        partition_keys: BTreeMap<String, String>,
    },
    /// Discarded on purpose; counts as success and leaves no trace.
    Dropped,
    /// Send the original record to the `processing-failed` error output.
    ProcessingFailed {
        /// One of [`codes`], e.g. `Lambda.ProcessingFailedStatus`.
        error_code: String,
        /// Human-readable reason.
        error_message: String,
    },
}

impl RecordResult {
    pub(crate) fn failed(code: &str, message: impl Into<String>) -> Self {
        RecordResult::ProcessingFailed {
            error_code: code.to_string(),
            error_message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        RecordResult::failed(codes::INVALID_RETURN_FORMAT, message)
    }
}

/// One decoded response entry, before Firehose's rules are applied.
#[derive(Debug)]
pub(crate) enum Verdict {
    Ok {
        data: Bytes,
        partition_keys: BTreeMap<String, String>,
    },
    Dropped,
    Failed {
        message: Option<String>,
    },
    /// A well-addressed entry that is malformed: InvalidReturnFormat with this message.
    Invalid(String),
}

enum Slot {
    Missing,
    Seen(Verdict),
    Duplicated,
}

/// Collects response entries addressed by input position and applies the rules: one
/// outcome per input, in input order; a position never answered is MissingRecordId, one
/// answered twice is DuplicatedRecordId; entries for positions outside the batch are ignored.
pub(crate) struct Assembler {
    slots: Vec<Slot>,
}

impl Assembler {
    pub(crate) fn new(len: usize) -> Self {
        Assembler { slots: (0..len).map(|_| Slot::Missing).collect() }
    }

    pub(crate) fn add(&mut self, index: usize, verdict: Verdict) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        *slot = match slot {
            Slot::Missing => Slot::Seen(verdict),
            Slot::Seen(_) | Slot::Duplicated => Slot::Duplicated,
        };
    }

    pub(crate) fn finish(self, records: &[InputRecord]) -> Vec<RecordOutcome> {
        self.slots
            .into_iter()
            .zip(records)
            .map(|(slot, record)| {
                let result = match slot {
                    Slot::Missing => {
                        RecordResult::failed(codes::MISSING_RECORD_ID, MISSING_RECORD_ID_MESSAGE)
                    }
                    Slot::Duplicated => RecordResult::failed(
                        codes::DUPLICATED_RECORD_ID,
                        DUPLICATED_RECORD_ID_MESSAGE,
                    ),
                    Slot::Seen(Verdict::Ok { data, partition_keys }) => {
                        RecordResult::Ok { data, partition_keys }
                    }
                    Slot::Seen(Verdict::Dropped) => RecordResult::Dropped,
                    Slot::Seen(Verdict::Failed { message }) => RecordResult::failed(
                        codes::PROCESSING_FAILED_STATUS,
                        message
                            .filter(|m| !m.is_empty())
                            .unwrap_or_else(|| PROCESSING_FAILED_MESSAGE.to_string()),
                    ),
                    Slot::Seen(Verdict::Invalid(message)) => RecordResult::invalid(message),
                };
                RecordOutcome { record_id: record.record_id.clone(), result }
            })
            .collect()
    }
}

/// Maps record ids to input positions (for the JSON ABI, which addresses records by id).
/// If the caller passed the same id twice, the first position wins.
pub(crate) fn id_index(records: &[InputRecord]) -> HashMap<&str, usize> {
    let mut map = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        map.entry(r.record_id.as_str()).or_insert(i);
    }
    map
}
