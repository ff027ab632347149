//! The binary encoding of Hydrant's transform ABI, version 1 (see `docs/transforms.md` in
//! the host crate for the byte-by-byte description).
//!
//! Everything here is safe code working on byte slices; the raw-memory glue that the
//! exports need lives in `glue`.
//!
//! Request (host → guest), all integers little-endian:
//!
//! ```text
//! u32 record_count
//! str invocation_id
//! str delivery_stream_arn
//! str region
//! record_count × { str record_id, i64 approximate_arrival_timestamp_ms, blob data }
//! ```
//!
//! Response (guest → host):
//!
//! ```text
//! u32 record_count
//! record_count × {
//!     u32 index        (position of the input record, 0-based)
//!     u8  result       (0 Ok, 1 Dropped, 2 ProcessingFailed)
//!     u32 data_len     (0xFFFF_FFFF = no data), then data_len bytes
//!     u32 key_count, then key_count × { str key, str value }
//! }
//! ```
//!
//! `str` and `blob` are a `u32` byte length followed by that many bytes (UTF-8 for `str`).

use std::borrow::Cow;
use std::fmt;

/// Version of the ABI this SDK speaks; exported as `hydrant_abi_version`.
pub const ABI_VERSION: i32 = 1;

/// Result byte: deliver the record's new data.
pub const RESULT_OK: u8 = 0;
/// Result byte: discard the record on purpose (counts as success).
pub const RESULT_DROPPED: u8 = 1;
/// Result byte: send the original record to the `processing-failed` error output.
pub const RESULT_PROCESSING_FAILED: u8 = 2;
/// `data_len` value meaning "no data".
pub const NO_DATA: u32 = u32::MAX;

/// One record handed to the transform. Borrowed from the request buffer: no copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Opaque id of the record in this batch (Firehose's `recordId`).
    pub record_id: &'a str,
    /// When Hydrant accepted the record, epoch milliseconds
    /// (Firehose's `approximateArrivalTimestamp`).
    pub approximate_arrival_timestamp: i64,
    /// The record's bytes.
    pub data: &'a [u8],
}

/// One invocation's worth of records, with the same context Firehose puts in its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<'a> {
    /// Unique id of this invocation (Firehose's `invocationId`).
    pub invocation_id: &'a str,
    /// ARN of the delivery stream the records belong to.
    pub delivery_stream_arn: &'a str,
    /// Region of the delivery stream.
    pub region: &'a str,
    /// The records, in the order they were accepted.
    pub records: Vec<Record<'a>>,
}

/// What the transform decided for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Deliver `data` in place of the record's bytes, with optional partition keys for
    /// `!{partitionKeyFromLambda:key}` prefixes.
    Ok {
        /// The transformed bytes (borrow the input to pass it through without a copy).
        data: Cow<'a, [u8]>,
        /// Dynamic partitioning keys, in order; a repeated key keeps the last value.
        partition_keys: Vec<(String, String)>,
    },
    /// Discard the record on purpose. It counts as successfully processed.
    Dropped,
    /// Send the original record to the error output (`Lambda.ProcessingFailedStatus`).
    ProcessingFailed {
        /// Why; Hydrant puts it in the error record's `errorMessage`. May be empty, in which
        /// case Firehose's own message is used.
        message: Cow<'a, str>,
    },
}

impl<'a> Outcome<'a> {
    /// Deliver `data`.
    pub fn ok(data: impl Into<Cow<'a, [u8]>>) -> Self {
        Outcome::Ok { data: data.into(), partition_keys: Vec::new() }
    }

    /// Deliver the record as it came in (no copy is made).
    pub fn unchanged(record: &Record<'a>) -> Self {
        Outcome::ok(record.data)
    }

    /// Discard the record.
    pub fn dropped() -> Self {
        Outcome::Dropped
    }

    /// Fail the record with a message.
    pub fn failed(message: impl Into<Cow<'a, str>>) -> Self {
        Outcome::ProcessingFailed { message: message.into() }
    }

    /// Adds a partition key (only meaningful on `Ok`; ignored otherwise).
    #[must_use]
    pub fn with_partition_key(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Outcome::Ok { partition_keys, .. } = &mut self {
            partition_keys.push((key.into(), value.into()));
        }
        self
    }
}

/// Why a request buffer could not be decoded. Only a host bug causes this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad hydrant request at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for DecodeError {}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError { offset: self.pos, what }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn blob(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.blob(what)?;
        std::str::from_utf8(b).map_err(|_| DecodeError { offset: at, what: "string is not UTF-8" })
    }
}

/// Decodes a binary request.
pub fn decode_request(buf: &[u8]) -> Result<Batch<'_>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let count = r.u32("record count")? as usize;
    let invocation_id = r.str("invocation id")?;
    let delivery_stream_arn = r.str("delivery stream arn")?;
    let region = r.str("region")?;
    // Each record takes at least 16 bytes, so a corrupt count cannot make us reserve a lot.
    let mut records = Vec::with_capacity(count.min(buf.len() / 16));
    for _ in 0..count {
        let record_id = r.str("record id")?;
        let approximate_arrival_timestamp = r.i64("arrival timestamp")?;
        let data = r.blob("record data")?;
        records.push(Record { record_id, approximate_arrival_timestamp, data });
    }
    if r.pos != buf.len() {
        return Err(DecodeError { offset: r.pos, what: "trailing bytes after the last record" });
    }
    Ok(Batch { invocation_id, delivery_stream_arn, region, records })
}

/// Encodes a binary request (the host's side; here for tests and tools).
pub fn encode_request(out: &mut Vec<u8>, batch: &Batch<'_>) {
    put_u32(out, batch.records.len() as u32);
    put_blob(out, batch.invocation_id.as_bytes());
    put_blob(out, batch.delivery_stream_arn.as_bytes());
    put_blob(out, batch.region.as_bytes());
    for r in &batch.records {
        put_blob(out, r.record_id.as_bytes());
        out.extend_from_slice(&r.approximate_arrival_timestamp.to_le_bytes());
        put_blob(out, r.data);
    }
}

/// Writes the response header; `count` is the number of [`encode_outcome`] calls to follow.
pub fn begin_response(out: &mut Vec<u8>, count: u32) {
    out.clear();
    put_u32(out, count);
}

/// Appends one response record for the input record at `index`.
pub fn encode_outcome(out: &mut Vec<u8>, index: u32, outcome: &Outcome<'_>) {
    put_u32(out, index);
    match outcome {
        Outcome::Ok { data, partition_keys } => {
            out.push(RESULT_OK);
            put_blob(out, data);
            put_u32(out, partition_keys.len() as u32);
            for (k, v) in partition_keys {
                put_blob(out, k.as_bytes());
                put_blob(out, v.as_bytes());
            }
        }
        Outcome::Dropped => {
            out.push(RESULT_DROPPED);
            put_u32(out, NO_DATA);
            put_u32(out, 0);
        }
        Outcome::ProcessingFailed { message } => {
            out.push(RESULT_PROCESSING_FAILED);
            put_blob(out, message.as_bytes());
            put_u32(out, 0);
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let batch = Batch {
            invocation_id: "inv",
            delivery_stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s",
            region: "us-east-1",
            records: vec![
                Record { record_id: "1", approximate_arrival_timestamp: 42, data: b"hello" },
                Record { record_id: "2", approximate_arrival_timestamp: -1, data: b"" },
            ],
        };
        let mut buf = Vec::new();
        encode_request(&mut buf, &batch);
        assert_eq!(decode_request(&buf).unwrap(), batch);
        assert!(decode_request(&buf[..buf.len() - 1]).is_err());
        buf.push(0);
        assert!(decode_request(&buf).is_err());
    }

    #[test]
    fn an_ok_outcome_is_encoded_byte_for_byte() {
        let mut out = Vec::new();
        begin_response(&mut out, 1);
        encode_outcome(&mut out, 3, &Outcome::ok(&b"ab"[..]).with_partition_key("k", "v"));
        assert_eq!(
            out,
            [
                1, 0, 0, 0, // count
                3, 0, 0, 0, // index
                0, // Ok
                2, 0, 0, 0, b'a', b'b', // data
                1, 0, 0, 0, // one key
                1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v',
            ]
        );
    }
}
