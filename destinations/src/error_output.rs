//! Error-output documents: what Hydrant writes, one JSON object per line, under a stream's
//! `ErrorOutputPrefix` (or a destination's `S3Configuration`) for every record it could not
//! process, convert or deliver (FIREHOSE.md 3.4, 6.4, 7).
//!
//! One builder serves every type, so the shared fields are spelled and ordered the same
//! everywhere: Firehose's documented order, `attemptsMade`, `arrivalTimestamp`, `errorCode`,
//! `errorMessage`, `attemptEndingTimestamp`, `rawData`, then the fields of the type
//! ([`Extra`]). Both Hydrant's delivery layer and the destinations of this crate build them,
//! which is why the builder lives here, the one place both can use.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// One document.
#[derive(Debug, Clone, Copy)]
pub struct ErrorDocument<'a> {
    /// Attempts made, the first included.
    pub attempts_made: u32,
    /// When the record arrived (epoch milliseconds); for a whole object, its oldest record.
    pub arrival_ms: i64,
    /// Why, as an error code: `Lambda.ProcessingFailedStatus`, `OS.MapperParsingException`...
    pub code: &'a str,
    /// Why, in words.
    pub message: &'a str,
    /// When the last attempt ended (epoch milliseconds).
    pub attempt_ending_ms: i64,
    /// The record (or object) as it was, base64-encoded in the document.
    pub raw_data: &'a [u8],
    pub extra: Extra<'a>,
}

/// The fields of one type of document, after the shared ones.
#[derive(Debug, Clone, Copy)]
pub enum Extra<'a> {
    /// `processing-failed`, `partitioning-failed`, `redshift-failed`: nothing more.
    None,
    /// `processing-failed` of a stream with a transform: `lambdaArn`.
    Lambda { lambda_arn: &'a str },
    /// `format-conversion-failed`: the code and message are `lastErrorCode` /
    /// `lastErrorMessage`, then `sequenceNumber`, `subSequenceNumber`, `dataCatalogTable`.
    Conversion {
        sequence_number: &'a str,
        sub_sequence_number: u32,
        catalog: &'a serde_json::Value,
    },
    /// `http-endpoint-failed`: `subsequenceNumber`, `dataId`.
    Http { subsequence_number: u64, data_id: &'a str },
    /// `AmazonOpenSearchService-failed` / `elasticsearch-failed`: `esDocumentId`,
    /// `esIndexName`, `esTypeName`, and `rawData` last, as Firehose writes them.
    Search { document_id: &'a str, index_name: &'a str, type_name: &'a str },
    /// A whole object the store refused: `objectKey` (null when it could not be named),
    /// `recordCount`.
    Object { key: Option<&'a str>, records: u64 },
}

impl ErrorDocument<'_> {
    /// Appends the document to `out` as one line: compact JSON, then `\n`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("serializing plain fields to memory");
        out.push(b'\n');
    }

    /// The document as one line, ending in `\n`.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json_line(&mut out);
        out
    }
}

impl Serialize for ErrorDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let (code, message) = match self.extra {
            Extra::Conversion { .. } => ("lastErrorCode", "lastErrorMessage"),
            _ => ("errorCode", "errorMessage"),
        };
        map.serialize_entry("attemptsMade", &self.attempts_made)?;
        map.serialize_entry("arrivalTimestamp", &self.arrival_ms)?;
        map.serialize_entry(code, self.code)?;
        map.serialize_entry(message, self.message)?;
        map.serialize_entry("attemptEndingTimestamp", &self.attempt_ending_ms)?;
        let raw_data = BASE64.encode(self.raw_data);
        if !matches!(self.extra, Extra::Search { .. }) {
            map.serialize_entry("rawData", &raw_data)?;
        }
        match self.extra {
            Extra::None => {}
            Extra::Lambda { lambda_arn } => map.serialize_entry("lambdaArn", lambda_arn)?,
            Extra::Conversion { sequence_number, sub_sequence_number, catalog } => {
                map.serialize_entry("sequenceNumber", sequence_number)?;
                map.serialize_entry("subSequenceNumber", &sub_sequence_number)?;
                map.serialize_entry("dataCatalogTable", catalog)?;
            }
            Extra::Http { subsequence_number, data_id } => {
                map.serialize_entry("subsequenceNumber", &subsequence_number)?;
                map.serialize_entry("dataId", data_id)?;
            }
            Extra::Search { document_id, index_name, type_name } => {
                map.serialize_entry("esDocumentId", document_id)?;
                map.serialize_entry("esIndexName", index_name)?;
                map.serialize_entry("esTypeName", type_name)?;
                map.serialize_entry("rawData", &raw_data)?;
            }
            Extra::Object { key, records } => {
                map.serialize_entry("objectKey", &key)?;
                map.serialize_entry("recordCount", &records)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(extra: Extra<'_>) -> String {
        let doc = ErrorDocument {
            attempts_made: 4,
            arrival_ms: 1_594_265_943_615,
            code: "Lambda.ProcessingFailedStatus",
            message: "ProcessingFailed status set for record",
            attempt_ending_ms: 1_594_266_081_318,
            raw_data: b"sample raw data",
            extra,
        };
        String::from_utf8(doc.to_json_line()).unwrap()
    }

    #[test]
    fn a_processing_failure_has_firehoses_fields_in_firehoses_order() {
        let lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        assert_eq!(
            document(Extra::Lambda { lambda_arn }),
            concat!(
                r#"{"attemptsMade":4,"arrivalTimestamp":1594265943615,"#,
                r#""errorCode":"Lambda.ProcessingFailedStatus","#,
                r#""errorMessage":"ProcessingFailed status set for record","#,
                r#""attemptEndingTimestamp":1594266081318,"rawData":"c2FtcGxlIHJhdyBkYXRh","#,
                r#""lambdaArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_conversion_failure_names_its_error_last_and_ends_with_the_catalog() {
        let catalog = json!({"tableName": "t"});
        let line = document(Extra::Conversion {
            sequence_number: "1-7",
            sub_sequence_number: 2,
            catalog: &catalog,
        });
        assert!(line
            .starts_with(r#"{"attemptsMade":4,"arrivalTimestamp":1594265943615,"lastErrorCode":"#));
        assert!(line.ends_with(
            r#""rawData":"c2FtcGxlIHJhdyBkYXRh","sequenceNumber":"1-7","subSequenceNumber":2,"dataCatalogTable":{"tableName":"t"}}
"#
        ));
    }

    #[test]
    fn a_refused_object_ends_with_its_key_and_record_count() {
        let none = document(Extra::Object { key: None, records: 3 });
        assert!(none.ends_with(
            r#""objectKey":null,"recordCount":3}
"#
        ));
        let some = document(Extra::Object { key: Some("p/k"), records: 3 });
        assert!(some.ends_with(
            r#""objectKey":"p/k","recordCount":3}
"#
        ));
    }

    #[test]
    fn binary_data_and_control_characters_stay_on_one_line() {
        let doc = ErrorDocument {
            attempts_made: 1,
            arrival_ms: 0,
            code: "c",
            message: "line\nbreak",
            attempt_ending_ms: 0,
            raw_data: &[0, 10, 255],
            extra: Extra::None,
        };
        let line = String::from_utf8(doc.to_json_line()).unwrap();
        assert!(line.contains(r#""errorMessage":"line\nbreak""#), "{line}");
        assert!(line.contains(r#""rawData":"AAr/""#), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }
}
