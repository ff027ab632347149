//! How a Kinesis record is kept in the log: Kinesis gives its partition key back with every
//! record (`GetRecords`), so the log entry carries it before the data:
//!
//! ```text
//! version (1 byte, 1) | key length (u16, big-endian) | partition key (UTF-8) | data
//! ```

use bytes::{BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;
const HEADER: usize = 3;

/// A record as `GetRecords` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// The log entry of a record. The key is at most 256 characters (1,024 bytes), so its length
/// fits the u16.
pub fn encode(partition_key: &str, data: &[u8]) -> Bytes {
    let key = partition_key.as_bytes();
    let mut out = BytesMut::with_capacity(HEADER + key.len() + data.len());
    out.put_u8(VERSION);
    out.put_u16(u16::try_from(key.len()).expect("partition keys are at most 1,024 bytes"));
    out.put_slice(key);
    out.put_slice(data);
    out.freeze()
}

/// The record in a log entry; `Err` says what is wrong with an entry this module did not write.
pub fn decode(entry: &Bytes) -> Result<KinesisRecord, String> {
    if entry.len() < HEADER || entry[0] != VERSION {
        return Err(format!("a log entry of {} bytes is not a Kinesis record", entry.len()));
    }
    let key_len = u16::from_be_bytes([entry[1], entry[2]]) as usize;
    let key_end = HEADER + key_len;
    let key = entry.get(HEADER..key_end).ok_or("a Kinesis record's key is cut short")?;
    let partition_key =
        std::str::from_utf8(key).map_err(|_| "a Kinesis record's key is not UTF-8")?.to_string();
    Ok(KinesisRecord { partition_key, data: entry.slice(key_end..) })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_record_reads_back_as_it_was_put(key in "\\PC{1,256}", data in any::<Vec<u8>>()) {
            let entry = encode(&key, &data);
            prop_assert_eq!(decode(&entry), Ok(KinesisRecord { partition_key: key, data: data.into() }));
        }

        #[test]
        fn any_other_entry_is_an_error_not_a_panic(entry in any::<Vec<u8>>()) {
            let _ = decode(&Bytes::from(entry));
        }
    }
}
