//! The host side of the transform ABI: encoding requests into guest memory and decoding
//! responses, in the binary form and the Firehose JSON form. `docs/transforms.md` is the
//! normative description; keep the two in step.

use std::collections::BTreeMap;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::error::InvocationError;
use super::outcome::{id_index, Assembler, InputRecord, RecordOutcome, Verdict};

/// ABI version this host speaks (`hydrant_abi_version`).
pub const ABI_VERSION: i32 = 1;

/// Result byte of a binary response entry: deliver the data.
pub const RESULT_OK: u8 = 0;
/// Result byte: dropped.
pub const RESULT_DROPPED: u8 = 1;
/// Result byte: processing failed.
pub const RESULT_PROCESSING_FAILED: u8 = 2;
/// `data_len` meaning "no data".
pub const NO_DATA: u32 = u32::MAX;

/// Longest guest-supplied error message kept for a `ProcessingFailed` record.
const MAX_ERROR_MESSAGE: usize = 4096;

/// Batch-level context that Firehose puts in its event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestContext<'a> {
    pub invocation_id: &'a str,
    pub delivery_stream_arn: &'a str,
    pub region: &'a str,
}

/// Exact size of the binary request for these records.
pub(crate) fn binary_request_len(ctx: &RequestContext<'_>, records: &[InputRecord]) -> usize {
    let header =
        4 + 12 + ctx.invocation_id.len() + ctx.delivery_stream_arn.len() + ctx.region.len();
    records.iter().fold(header, |n, r| n + 4 + r.record_id.len() + 8 + 4 + r.data.len())
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    fn blob(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.bytes(b);
    }
}

/// Writes the binary request into `buf`, which is exactly [`binary_request_len`] long.
/// Lengths fit in `u32` because the caller checked the total does.
pub(crate) fn encode_binary_request(
    buf: &mut [u8],
    ctx: &RequestContext<'_>,
    records: &[InputRecord],
) {
    let mut w = Writer { buf, pos: 0 };
    w.u32(records.len() as u32);
    w.blob(ctx.invocation_id.as_bytes());
    w.blob(ctx.delivery_stream_arn.as_bytes());
    w.blob(ctx.region.as_bytes());
    for r in records {
        w.blob(r.record_id.as_bytes());
        w.bytes(&r.approximate_arrival_timestamp.to_le_bytes());
        w.blob(&r.data);
    }
    debug_assert_eq!(w.pos, w.buf.len());
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize, what: &str) -> Result<Bytes, InvocationError> {
        match self.pos.checked_add(n).filter(|&end| end <= self.buf.len()) {
            Some(end) => {
                let b = self.buf.slice(self.pos..end);
                self.pos = end;
                Ok(b)
            }
            None => Err(InvocationError::ResponseUnparseable {
                message: format!(
                    "binary response ends at byte {} inside {what} (needs {n} more bytes)",
                    self.buf.len()
                ),
            }),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, InvocationError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u8(&mut self, what: &str) -> Result<u8, InvocationError> {
        Ok(self.take(1, what)?[0])
    }
}

/// Decodes a binary response and applies Firehose's rules.
pub(crate) fn decode_binary_response(
    response: Bytes,
    records: &[InputRecord],
) -> Result<Vec<RecordOutcome>, InvocationError> {
    let mut r = Reader { buf: response, pos: 0 };
    let count = r.u32("the record count")?;
    let mut assembler = Assembler::new(records.len());
    for _ in 0..count {
        let index = r.u32("a record index")? as usize;
        let result = r.u8("a result byte")?;
        let data_len = r.u32("a data length")?;
        let data =
            if data_len == NO_DATA { None } else { Some(r.take(data_len as usize, "data")?) };
        let key_count = r.u32("a partition key count")?;
        let mut keys = Ok(BTreeMap::new());
        for _ in 0..key_count {
            let k = r.u32("a partition key length").and_then(|n| r.take(n as usize, "a key"))?;
            let v =
                r.u32("a partition value length").and_then(|n| r.take(n as usize, "a value"))?;
            if let Ok(map) = &mut keys {
                match (std::str::from_utf8(&k), std::str::from_utf8(&v)) {
                    (Ok(k), Ok(v)) => {
                        map.insert(k.to_string(), v.to_string());
                    }
                    _ => keys = Err("partition key or value is not UTF-8".to_string()),
                }
            }
        }
        let verdict = match (result, data) {
            (RESULT_OK, None) => Verdict::Invalid(
                "the data field cannot be null when the processing result is Ok".into(),
            ),
            (RESULT_OK, Some(data)) => match keys {
                Ok(partition_keys) => Verdict::Ok { data, partition_keys },
                Err(e) => Verdict::Invalid(e),
            },
            (RESULT_DROPPED, _) => Verdict::Dropped,
            (RESULT_PROCESSING_FAILED, message) => Verdict::Failed {
                message: message
                    .map(|m| truncate_message(String::from_utf8_lossy(&m).into_owned())),
            },
            (other, _) => Verdict::Invalid(format!("unknown result byte {other}")),
        };
        assembler.add(index, verdict);
    }
    if r.pos != r.buf.len() {
        return Err(InvocationError::ResponseUnparseable {
            message: format!(
                "binary response has {} trailing bytes after its {count} records",
                r.buf.len() - r.pos
            ),
        });
    }
    Ok(assembler.finish(records))
}

fn truncate_message(mut m: String) -> String {
    if m.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        m.truncate(end);
    }
    m
}

/// The Firehose event, serialised straight from the input records (data base64-encoded
/// on the fly).
pub(crate) struct JsonEvent<'a> {
    pub ctx: RequestContext<'a>,
    pub records: &'a [InputRecord],
}

struct JsonRecords<'a>(&'a [InputRecord]);
struct JsonRecord<'a>(&'a InputRecord);

impl Serialize for JsonEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KinesisFirehoseEvent", 4)?;
        st.serialize_field("invocationId", self.ctx.invocation_id)?;
        st.serialize_field("deliveryStreamArn", self.ctx.delivery_stream_arn)?;
        st.serialize_field("region", self.ctx.region)?;
        st.serialize_field("records", &JsonRecords(self.records))?;
        st.end()
    }
}

impl Serialize for JsonRecords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            seq.serialize_element(&JsonRecord(r))?;
        }
        seq.end()
    }
}

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KinesisFirehoseEventRecord", 3)?;
        st.serialize_field("recordId", &self.0.record_id)?;
        st.serialize_field("approximateArrivalTimestamp", &self.0.approximate_arrival_timestamp)?;
        st.serialize_field("data", &Base64Data(&self.0.data))?;
        st.end()
    }
}

struct Base64Data<'a>(&'a [u8]);

impl Serialize for Base64Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// Serialises the Firehose event into `out` (cleared first).
pub(crate) fn encode_json_request(
    out: &mut Vec<u8>,
    ctx: &RequestContext<'_>,
    records: &[InputRecord],
) {
    out.clear();
    serde_json::to_writer(&mut *out, &JsonEvent { ctx: *ctx, records })
        .expect("serialising to a Vec cannot fail");
}

/// Decodes a Firehose JSON response and applies Firehose's rules.
///
/// Invalid JSON is an error for the whole invocation. Valid JSON without a usable `records`
/// array means every record is missing. Entries that are not objects or have no string
/// `recordId` cannot be attributed to a record and are ignored, as are ids not in the batch.
pub(crate) fn decode_json_response(
    response: &[u8],
    records: &[InputRecord],
) -> Result<Vec<RecordOutcome>, InvocationError> {
    let doc: Value = serde_json::from_slice(response).map_err(|e| {
        InvocationError::ResponseUnparseable { message: format!("response is not JSON: {e}") }
    })?;
    let mut assembler = Assembler::new(records.len());
    if let Some(entries) = doc.get("records").and_then(Value::as_array) {
        let index = id_index(records);
        for entry in entries {
            let Some(position) =
                entry.get("recordId").and_then(Value::as_str).and_then(|id| index.get(id))
            else {
                continue;
            };
            assembler.add(*position, json_verdict(entry));
        }
    }
    Ok(assembler.finish(records))
}

fn json_verdict(entry: &Value) -> Verdict {
    match entry.get("result").and_then(Value::as_str) {
        Some("Ok") => {
            let data = match entry.get("data") {
                Some(Value::String(s)) => match STANDARD.decode(s) {
                    Ok(d) => d,
                    Err(e) => return Verdict::Invalid(format!("data is not valid base64: {e}")),
                },
                Some(Value::Null) | None => {
                    return Verdict::Invalid(
                        "the data field cannot be null when the processing result is Ok".into(),
                    )
                }
                Some(_) => return Verdict::Invalid("data is not a base64 string".into()),
            };
            match json_partition_keys(entry) {
                Ok(partition_keys) => Verdict::Ok { data: Bytes::from(data), partition_keys },
                Err(e) => Verdict::Invalid(e),
            }
        }
        Some("Dropped") => Verdict::Dropped,
        Some("ProcessingFailed") => Verdict::Failed {
            message: entry
                .get("errorMessage")
                .and_then(Value::as_str)
                .map(|m| truncate_message(m.to_string())),
        },
        Some(other) => Verdict::Invalid(format!("unknown result {other:?}")),
        None => Verdict::Invalid("result is missing or not a string".into()),
    }
}

fn json_partition_keys(entry: &Value) -> Result<BTreeMap<String, String>, String> {
    let keys = match entry.get("metadata") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => match m.get("partitionKeys") {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(keys)) => keys,
            Some(_) => return Err("metadata.partitionKeys is not an object".into()),
        },
        Some(_) => return Err("metadata is not an object".into()),
    };
    keys.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(format!("partition key {k:?} is not a string")),
        })
        .collect()
}
