//! The error output: records that could not be processed or converted are written, one JSON
//! document per line, under the stream's `ErrorOutputPrefix` with the Firehose shapes of
//! FIREHOSE.md 3.4, so nothing that fails is silently dropped.
//!
//! Error objects are named from the same batch identity as the batch they came from (plus the
//! error-output type), so a re-delivered batch overwrites its error object too.

use base64::Engine;
use serde_json::{json, Value};

use super::batch::Rejected;
use crate::clock::now_ms;

/// `!{firehose:error-output-type}` values.
pub mod output_type {
    pub const FORMAT_CONVERSION_FAILED: &str = "format-conversion-failed";
    pub const PROCESSING_FAILED: &str = "processing-failed";
}

/// One `format-conversion-failed` document (Firehose's DG shape). Hydrant takes the schema
/// from its own configuration rather than AWS Glue, so `dataCatalogTable` names the stream's
/// schema source instead of a Glue table.
pub fn format_conversion_failed(rejected: &Rejected, shard: u32, catalog: &Value) -> Value {
    json!({
        "attemptsMade": 1,
        "arrivalTimestamp": rejected.record.arrival_ms,
        "lastErrorCode": rejected.error.code,
        "lastErrorMessage": rejected.error.message,
        "attemptEndingTimestamp": now_ms(),
        "rawData": base64::engine::general_purpose::STANDARD.encode(&rejected.record.data),
        "sequenceNumber": format!("{shard}-{}", rejected.record.seq),
        "subSequenceNumber": 0,
        "dataCatalogTable": catalog,
    })
}

/// Newline-separated JSON documents, as Firehose writes error objects.
pub fn json_lines(documents: impl IntoIterator<Item = Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for doc in documents {
        serde_json::to_writer(&mut out, &doc).expect("serializing a JSON value to memory");
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::RecordError;
    use crate::core::Record;

    #[test]
    fn a_conversion_failure_document_has_the_firehose_fields() {
        let rejected = Rejected {
            record: Record {
                seq: 7,
                arrival_ms: 1_594_265_943_615,
                data: bytes::Bytes::from_static(b"{bad"),
            },
            error: RecordError {
                code: "DataFormatConversion.MalformedData".into(),
                message: "eof".into(),
            },
        };
        let doc = format_conversion_failed(&rejected, 1, &json!({"tableName": "t"}));
        assert_eq!(doc["rawData"], "e2JhZA==");
        assert_eq!(doc["arrivalTimestamp"], 1_594_265_943_615i64);
        assert_eq!(doc["lastErrorCode"], "DataFormatConversion.MalformedData");
        assert_eq!(doc["attemptsMade"], 1);
        let lines = json_lines([doc.clone(), doc]);
        assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 2);
    }
}
