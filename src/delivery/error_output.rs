//! The error output: records that could not be processed or converted are written, one JSON
//! document per line, under the stream's `ErrorOutputPrefix` with the Firehose shapes of
//! FIREHOSE.md 3.4, so nothing that fails is silently dropped.
//!
//! Error documents collect in one buffer per error-output type, cut and named like data
//! buffers, so a replay rewrites the same error objects.

use base64::Engine;
use serde_json::{json, Value};

use super::buffers::Pos;
use crate::clock::now_ms;
use crate::codec::RecordError;

/// `!{firehose:error-output-type}` values.
pub mod output_type {
    pub const FORMAT_CONVERSION_FAILED: &str = "format-conversion-failed";
    pub const PROCESSING_FAILED: &str = "processing-failed";
}

/// One `format-conversion-failed` document (Firehose's DG shape). Hydrant takes the schema
/// from its own configuration rather than AWS Glue, so `dataCatalogTable` names the stream's
/// schema source instead of a Glue table.
pub fn format_conversion_failed(
    raw: &[u8],
    error: &RecordError,
    pos: Pos,
    arrival_ms: i64,
    shard: u32,
    catalog: &Value,
) -> Value {
    json!({
        "attemptsMade": 1,
        "arrivalTimestamp": arrival_ms,
        "lastErrorCode": error.code,
        "lastErrorMessage": error.message,
        "attemptEndingTimestamp": now_ms(),
        "rawData": base64::engine::general_purpose::STANDARD.encode(raw),
        "sequenceNumber": format!("{shard}-{}", pos.seq),
        "subSequenceNumber": pos.sub,
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

    #[test]
    fn a_conversion_failure_document_has_the_firehose_fields() {
        let error = RecordError {
            code: "DataFormatConversion.MalformedData".into(),
            message: "eof".into(),
        };
        let pos = Pos { seq: 7, sub: 2 };
        let doc = format_conversion_failed(
            b"{bad",
            &error,
            pos,
            1_594_265_943_615,
            1,
            &json!({"tableName": "t"}),
        );
        assert_eq!(doc["sequenceNumber"], "1-7");
        assert_eq!(doc["subSequenceNumber"], 2);
        assert_eq!(doc["rawData"], "e2JhZA==");
        assert_eq!(doc["arrivalTimestamp"], 1_594_265_943_615i64);
        assert_eq!(doc["lastErrorCode"], "DataFormatConversion.MalformedData");
        assert_eq!(doc["attemptsMade"], 1);
        let lines = json_lines([doc.clone(), doc]);
        assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 2);
    }
}
