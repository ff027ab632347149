//! The `RecordId` PutRecord and PutRecordBatch answer for each stored record.

use base64::Engine;

use crate::log::Appended;

/// The `RecordId` returned for a stored record: opaque to clients (as in Firehose), but
/// derived from where the record lives so support can find it: base64 of
/// `[1, shard u16, seq u64, arrival ms u64]`.
pub fn record_id(location: &Appended) -> String {
    let mut raw = [0u8; 19];
    raw[0] = 1;
    raw[1..3].copy_from_slice(&(location.shard.0 as u16).to_be_bytes());
    raw[3..11].copy_from_slice(&location.seq.to_be_bytes());
    raw[11..19].copy_from_slice(&location.arrival_ms.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}
