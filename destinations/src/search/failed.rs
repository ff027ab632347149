//! The failed-document JSON written to the error output (FIREHOSE.md 6.4): one object per line
//! under `<S3Configuration prefix>AmazonOpenSearchService-failed/` (`elasticsearch-failed/`
//! for an Elasticsearch destination), so every document that could not be indexed can be
//! found and replayed.

use bytes::Bytes;

use super::config::SearchSettings;
use super::request_builder::Document;
use crate::error_output::{ErrorDocument, Extra};
use crate::{DestinationError, Rejected};

/// One failed document; [`FailedDocument::to_json_line`] writes Firehose's field names in
/// Firehose's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDocument {
    /// Delivery attempts made, the first included.
    pub attempts_made: u32,
    /// When the record arrived (Unix epoch milliseconds).
    pub arrival_timestamp: i64,
    /// Hydrant's code, e.g. `OS.MapperParsingException` (see below).
    pub error_code: String,
    /// What the cluster said, e.g. `mapper_parsing_exception: failed to parse field [n] ...
    /// (status 400)`.
    pub error_message: String,
    /// When the last attempt ended (Unix epoch milliseconds).
    pub attempt_ending_timestamp: i64,
    /// The `_id` sent; empty with `NO_DOCUMENT_ID`.
    pub es_document_id: String,
    /// The index after rotation.
    pub es_index_name: String,
    /// `TypeName`; empty when none is configured.
    pub es_type_name: String,
    /// The record exactly as received (base64 in the document).
    pub raw_data: Bytes,
}

/// Why and when a document finally failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub attempts_made: u32,
    pub attempt_ending_ms: i64,
}

impl<'a> Failure<'a> {
    /// A document the cluster (or the request builder) rejected for good.
    pub fn rejected(rejected: &'a Rejected, attempts_made: u32, attempt_ending_ms: i64) -> Self {
        Failure {
            code: &rejected.code,
            message: &rejected.message,
            attempts_made,
            attempt_ending_ms,
        }
    }

    /// A document still undelivered when the retry duration ran out (`GaveUp::remaining`), or
    /// when the whole request failed for good.
    pub fn gave_up(
        error: &'a DestinationError,
        attempts_made: u32,
        attempt_ending_ms: i64,
    ) -> Self {
        Failure { code: &error.code, message: &error.message, attempts_made, attempt_ending_ms }
    }
}

impl FailedDocument {
    /// The error-output document for `doc`, which arrived at `arrival_ms`.
    ///
    /// `errorCode` differs from Firehose on purpose: Firehose puts the HTTP status there
    /// (`"400"`); Hydrant puts its error code (`OS.MapperParsingException`, `OS.Timeout`),
    /// which also covers failures that have no status, and keeps the status at the end of
    /// `errorMessage`.
    pub fn new(
        doc: &Document,
        settings: &SearchSettings,
        arrival_ms: i64,
        failure: &Failure<'_>,
    ) -> Self {
        FailedDocument {
            attempts_made: failure.attempts_made,
            arrival_timestamp: arrival_ms,
            error_code: failure.code.to_string(),
            error_message: failure.message.to_string(),
            attempt_ending_timestamp: failure.attempt_ending_ms,
            es_document_id: doc.id.clone().unwrap_or_default(),
            es_index_name: doc.index_name.clone(),
            es_type_name: settings.type_name.clone().unwrap_or_default(),
            raw_data: doc.source.clone(),
        }
    }

    /// The document as one line of the error object: compact JSON, fields in Firehose's
    /// order, ending in `\n`.
    pub fn to_json_line(&self) -> Vec<u8> {
        ErrorDocument {
            attempts_made: self.attempts_made,
            arrival_ms: self.arrival_timestamp,
            code: &self.error_code,
            message: &self.error_message,
            attempt_ending_ms: self.attempt_ending_timestamp,
            raw_data: &self.raw_data,
            extra: Extra::Search {
                document_id: &self.es_document_id,
                index_name: &self.es_index_name,
                type_name: &self.es_type_name,
            },
        }
        .to_json_line()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::search::config::SearchSettingsInput;

    fn settings(type_name: Option<&str>) -> SearchSettings {
        SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: Some("http://127.0.0.1:9200".into()),
            index_name: "myindex".into(),
            type_name: type_name.map(Into::into),
            ..SearchSettingsInput::default()
        })
        .unwrap()
    }

    #[test]
    fn a_rejected_document_has_firehose_fields_in_firehose_order() {
        let doc = Document {
            index: 4,
            id: Some("clicks-0-7-0".into()),
            index_name: "myindex-2016-02-25".into(),
            source: Bytes::from_static(b"{\"n\":\"abc\"}"),
        };
        let rejected = Rejected {
            index: 4,
            code: "OS.MapperParsingException".into(),
            message: "mapper_parsing_exception: failed to parse field [n] (status 400)".into(),
        };
        let failed = FailedDocument::new(
            &doc,
            &settings(None),
            1_594_265_943_615,
            &Failure::rejected(&rejected, 3, 1_594_266_081_318),
        );
        assert_eq!(
            String::from_utf8(failed.to_json_line()).unwrap(),
            concat!(
                r#"{"attemptsMade":3,"arrivalTimestamp":1594265943615,"#,
                r#""errorCode":"OS.MapperParsingException","#,
                r#""errorMessage":"mapper_parsing_exception: failed to parse field [n] (status 400)","#,
                r#""attemptEndingTimestamp":1594266081318,"esDocumentId":"clicks-0-7-0","#,
                r#""esIndexName":"myindex-2016-02-25","esTypeName":"","#,
                r#""rawData":"eyJuIjoiYWJjIn0="}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_document_that_outlived_the_retry_duration_names_the_last_error_and_type() {
        let doc = Document {
            index: 0,
            id: None,
            index_name: "myindex".into(),
            source: Bytes::from_static(b"{}"),
        };
        let error = DestinationError::transient("ES.ServerError", "HTTP 503");
        let failed =
            FailedDocument::new(&doc, &settings(Some("doc")), 1, &Failure::gave_up(&error, 9, 2));
        let value: serde_json::Value = serde_json::from_slice(&failed.to_json_line()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "attemptsMade": 9, "arrivalTimestamp": 1, "errorCode": "ES.ServerError",
                "errorMessage": "HTTP 503", "attemptEndingTimestamp": 2, "esDocumentId": "",
                "esIndexName": "myindex", "esTypeName": "doc", "rawData": "e30="
            })
        );
    }
}
