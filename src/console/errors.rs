//! The last error-output objects of a stream as the console shows them: each document's error
//! code and message and the failed record (decoded from `rawData` when it is text).

use base64::Engine;
use serde::Serialize;

use crate::telemetry::recent::ErrorObject;

/// Documents shown per error object.
const DOCUMENTS_SHOWN: usize = 5;
/// Characters shown of a failed record.
const RECORD_CHARS: usize = 2000;

/// One error-output object.
#[derive(Debug, Serialize)]
pub struct ErrorObjectView {
    pub at: f64,
    pub shard: u32,
    pub key: String,
    pub output_type: String,
    pub records: u64,
    pub documents: Vec<ErrorDocumentView>,
    /// Why no document could be read (an encrypted stream's objects).
    pub unreadable: Option<String>,
}

/// One document of it.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct ErrorDocumentView {
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts_made: Option<u64>,
    /// The failed record as text (UTF-8, cut), when `rawData` decodes.
    pub record: Option<String>,
    /// `rawData` as written (base64), cut.
    pub raw_data: Option<String>,
}

/// `object` with its first documents read.
pub fn view(object: ErrorObject) -> ErrorObjectView {
    let mut documents = Vec::new();
    let mut unreadable = None;
    for line in object.sample.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if documents.len() == DOCUMENTS_SHOWN {
            break;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(doc) => documents.push(document(&doc)),
            Err(_) => {
                unreadable = Some(
                    "the object is not JSON lines (an encrypted stream encrypts its error output)"
                        .to_string(),
                );
                break;
            }
        }
    }
    ErrorObjectView {
        at: object.at_ms as f64 / 1000.0,
        shard: object.shard,
        key: object.key,
        output_type: object.output_type,
        records: object.records,
        documents,
        unreadable,
    }
}

fn document(doc: &serde_json::Value) -> ErrorDocumentView {
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let raw = text("rawData");
    let record = raw.as_deref().and_then(|raw| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        Some(text.chars().take(RECORD_CHARS).collect())
    });
    ErrorDocumentView {
        error_code: text("errorCode"),
        error_message: text("errorMessage"),
        attempts_made: doc.get("attemptsMade").and_then(|v| v.as_u64()),
        record,
        raw_data: raw.map(|r| r.chars().take(RECORD_CHARS).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(sample: &[u8]) -> ErrorObject {
        ErrorObject {
            at_ms: 1500,
            shard: 1,
            key: "err/k".into(),
            output_type: "processing-failed".into(),
            records: 7,
            sample: sample.to_vec(),
        }
    }

    #[test]
    fn documents_show_their_code_and_the_failed_record() {
        let line = br#"{"attemptsMade":1,"errorCode":"Lambda.FunctionError","errorMessage":"record 1 asked to fail","rawData":"ZmFpbCBtZQ=="}"#;
        let mut sample = Vec::new();
        for _ in 0..7 {
            sample.extend_from_slice(line);
            sample.push(b'\n');
        }
        let view = view(object(&sample));
        assert_eq!(view.documents.len(), DOCUMENTS_SHOWN);
        let doc = &view.documents[0];
        assert_eq!(doc.error_code.as_deref(), Some("Lambda.FunctionError"));
        assert_eq!(doc.record.as_deref(), Some("fail me"));
        assert_eq!(doc.attempts_made, Some(1));
        assert_eq!(view.at, 1.5);
        assert!(view.unreadable.is_none());
    }

    #[test]
    fn an_encrypted_object_is_said_to_be_unreadable() {
        let view = view(object(b"\x00\x01binary\xff"));
        assert!(view.documents.is_empty());
        assert!(view.unreadable.is_some());
    }
}
