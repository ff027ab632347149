//! The error output: records that could not be processed or converted are written, one JSON
//! document per line, under the stream's `ErrorOutputPrefix` with the Firehose shapes of
//! FIREHOSE.md 3.4, so nothing that fails is silently dropped.
//!
//! Error documents collect in one buffer per error-output type, cut and named like data
//! buffers, so a replay rewrites the same error objects.

use hydrant_destinations::error_output::{ErrorDocument, Extra};
use serde_json::Value;

use super::buffers::Pos;
use crate::clock::now_ms;
use crate::codec::RecordError;

/// `!{firehose:error-output-type}` values.
pub mod output_type {
    pub const FORMAT_CONVERSION_FAILED: &str = "format-conversion-failed";
    pub const PROCESSING_FAILED: &str = "processing-failed";
    /// A CloudWatch Logs record that `Decompression` could not decompress.
    pub const DECOMPRESSION_FAILED: &str = "decompression-failed";
}

/// One `format-conversion-failed` document (Firehose's DG shape, in its field order), as
/// JSON without its newline. Hydrant takes the schema from its own configuration rather than
/// AWS Glue, so `dataCatalogTable` names the stream's schema source instead of a Glue table.
pub fn format_conversion_failed(
    raw: &[u8],
    error: &RecordError,
    pos: Pos,
    arrival_ms: i64,
    shard: u32,
    catalog: &Value,
) -> Vec<u8> {
    let sequence_number = format!("{shard}-{}", pos.seq);
    let document = ErrorDocument {
        attempts_made: 1,
        arrival_ms,
        code: &error.code,
        message: &error.message,
        attempt_ending_ms: now_ms(),
        raw_data: raw,
        extra: Extra::Conversion {
            sequence_number: &sequence_number,
            sub_sequence_number: pos.sub,
            catalog,
        },
    };
    serde_json::to_vec(&document).expect("serializing plain fields to memory")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_conversion_failure_document_has_the_firehose_fields_in_firehoses_order() {
        let error = RecordError {
            code: "DataFormatConversion.MalformedData".into(),
            message: "eof".into(),
        };
        let pos = Pos { seq: 7, sub: 2 };
        let catalog = json!({"tableName": "t"});
        let line = format_conversion_failed(b"{bad", &error, pos, 1_594_265_943_615, 1, &catalog);
        let text = String::from_utf8(line.clone()).unwrap();
        let (start, end) = text.split_once(r#","attemptEndingTimestamp":"#).unwrap();
        assert_eq!(
            start,
            concat!(
                r#"{"attemptsMade":1,"arrivalTimestamp":1594265943615,"#,
                r#""lastErrorCode":"DataFormatConversion.MalformedData","lastErrorMessage":"eof""#
            )
        );
        assert!(
            end.ends_with(concat!(
                r#","rawData":"e2JhZA==","sequenceNumber":"1-7","subSequenceNumber":2,"#,
                r#""dataCatalogTable":{"tableName":"t"}}"#
            )),
            "{text}"
        );
        let doc: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(doc["attemptEndingTimestamp"].as_i64().map(|t| t > 0), Some(true));
    }
}
