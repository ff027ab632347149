//! `RecordDeAggregation`: split one record into several (multi-record de-aggregation).
//!
//! * `SubRecordType: JSON` splits concatenated JSON objects: `{"a":1}{"a":2}`, one object per
//!   line (JSONL), or any JSON whitespace (space, tab, CR, LF) between objects. Each
//!   sub-record is the exact bytes of one object, without the whitespace around it. Braces and
//!   escaped quotes inside strings are handled by a real JSON parser (`serde_json`), which also
//!   validates each object. Firehose documents that only objects are valid (an array of
//!   objects is not split), so any other JSON value, any text that is not JSON, and a record
//!   with no object at all (empty or whitespace only) fail the whole record; nothing of it is
//!   delivered and the error names the byte offset. Objects nested deeper than 128 levels are
//!   rejected (serde_json's limit).
//! * `SubRecordType: DELIMITED` splits at every occurrence of the delimiter (given in the
//!   config as base64: `IyMjIw==` is `####`). The delimiters are dropped. Empty pieces
//!   (a leading, trailing or doubled delimiter, or an empty record) are dropped too: they carry
//!   no data. The pieces are not otherwise checked.
//!
//! Firehose caps de-aggregation at [`MAX_SUB_RECORDS`] sub-records per record; a record that
//! would give more fails as a whole (`RecordDeAggregation.TooManySubRecords`) instead of being
//! truncated.
//!
//! Sub-records are zero-copy slices of the input [`Bytes`].

use bytes::Bytes;
use serde::de::IgnoredAny;

/// Firehose's cap on sub-records per record ("capped at 500 per record").
pub const MAX_SUB_RECORDS: usize = 500;

/// `SubRecordType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubRecordType {
    Json,
    Delimited,
}

impl SubRecordType {
    /// Parse the `SubRecordType` parameter value (exact spelling, as Firehose).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "JSON" => Ok(Self::Json),
            "DELIMITED" => Ok(Self::Delimited),
            other => Err(format!("must be JSON or DELIMITED, got {other:?}")),
        }
    }
}

/// Splits records into sub-records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeAggregator {
    mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Json,
    Delimited(Vec<u8>),
}

/// Why a record could not be de-aggregated. The whole record goes to the error output with
/// [`DeAggregationError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeAggregationError {
    #[error("record is not concatenated JSON objects: sub-record {index} starting at byte {offset} is invalid: {detail}")]
    InvalidJson { index: usize, offset: usize, detail: String },
    #[error("record is not concatenated JSON objects: sub-record {index} starting at byte {offset} is {found}; only JSON objects such as {{\"a\":1}}{{\"a\":2}} can be de-aggregated")]
    NotAnObject { index: usize, offset: usize, found: &'static str },
    #[error("record holds no JSON object (it is empty or only whitespace)")]
    NoJsonObject,
    #[error("record has more than {limit} sub-records; Firehose caps de-aggregation at {limit} per record")]
    TooManySubRecords { limit: usize },
}

impl DeAggregationError {
    /// Error code for the error output (Hydrant's own names; Firehose's are not documented).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } | Self::NoJsonObject => "RecordDeAggregation.MalformedJson",
            Self::NotAnObject { .. } => "RecordDeAggregation.NotAJsonObject",
            Self::TooManySubRecords { .. } => "RecordDeAggregation.TooManySubRecords",
        }
    }
}

impl DeAggregator {
    /// `SubRecordType: JSON`.
    pub fn json() -> Self {
        Self { mode: Mode::Json }
    }

    /// `SubRecordType: DELIMITED` with the delimiter bytes. It must not be empty.
    pub fn delimited(delimiter: Vec<u8>) -> Result<Self, String> {
        if delimiter.is_empty() {
            return Err("the delimiter is empty".into());
        }
        Ok(Self { mode: Mode::Delimited(delimiter) })
    }

    /// `SubRecordType: DELIMITED` with the delimiter as Firehose takes it: standard base64
    /// with padding (`IyMjIw==` for `####`).
    pub fn delimited_base64(value: &str) -> Result<Self, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|e| {
            format!(
                "must be the delimiter in base64 (for example IyMjIw== for ####), got {value:?}: {e}"
            )
        })?;
        Self::delimited(bytes).map_err(|_| format!("{value:?} decodes to an empty delimiter"))
    }

    /// Which kind of de-aggregation this is.
    pub fn sub_record_type(&self) -> SubRecordType {
        match self.mode {
            Mode::Json => SubRecordType::Json,
            Mode::Delimited(_) => SubRecordType::Delimited,
        }
    }

    /// The delimiter of `DELIMITED` de-aggregation.
    pub fn delimiter(&self) -> Option<&[u8]> {
        match &self.mode {
            Mode::Json => None,
            Mode::Delimited(d) => Some(d),
        }
    }

    /// Split one record into its sub-records (slices of `record`), all or nothing.
    pub fn split(&self, record: &Bytes) -> Result<Vec<Bytes>, DeAggregationError> {
        match &self.mode {
            Mode::Json => split_json(record),
            Mode::Delimited(d) => split_delimited(record, d),
        }
    }
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn split_json(record: &Bytes) -> Result<Vec<Bytes>, DeAggregationError> {
    let data: &[u8] = record;
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<IgnoredAny>();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while pos < data.len() && is_json_ws(data[pos]) {
            pos += 1;
        }
        if pos == data.len() {
            break;
        }
        let index = out.len();
        let found = match data[pos] {
            b'{' => None,
            b'[' => Some("an array"),
            b'"' => Some("a string"),
            b'-' | b'0'..=b'9' => Some("a number"),
            b't' | b'f' => Some("a boolean or invalid text"),
            b'n' => Some("null or invalid text"),
            _ => Some("not JSON"),
        };
        if let Some(found) = found {
            return Err(DeAggregationError::NotAnObject { index, offset: pos, found });
        }
        if index == MAX_SUB_RECORDS {
            return Err(DeAggregationError::TooManySubRecords { limit: MAX_SUB_RECORDS });
        }
        match stream.next() {
            Some(Ok(IgnoredAny)) => {}
            Some(Err(e)) => {
                return Err(DeAggregationError::InvalidJson {
                    index,
                    offset: pos,
                    detail: e.to_string(),
                })
            }
            None => {
                return Err(DeAggregationError::InvalidJson {
                    index,
                    offset: pos,
                    detail: "unexpected end of record".into(),
                })
            }
        }
        let end = stream.byte_offset();
        out.push(record.slice(pos..end));
        pos = end;
    }
    if out.is_empty() {
        return Err(DeAggregationError::NoJsonObject);
    }
    Ok(out)
}

fn split_delimited(record: &Bytes, delimiter: &[u8]) -> Result<Vec<Bytes>, DeAggregationError> {
    let data: &[u8] = record;
    let mut out = Vec::new();
    let mut start = 0;
    let push = |from: usize, to: usize, out: &mut Vec<Bytes>| {
        if from == to {
            return Ok(());
        }
        if out.len() == MAX_SUB_RECORDS {
            return Err(DeAggregationError::TooManySubRecords { limit: MAX_SUB_RECORDS });
        }
        out.push(record.slice(from..to));
        Ok(())
    };
    while let Some(at) = find(&data[start..], delimiter) {
        push(start, start + at, &mut out)?;
        start += at + delimiter.len();
    }
    push(start, data.len(), &mut out)?;
    Ok(out)
}

/// Position of the first occurrence of `needle` (non-empty) in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while from + needle.len() <= haystack.len() {
        let at = from
            + haystack[from..=haystack.len() - needle.len()].iter().position(|&b| b == first)?;
        if haystack[at + 1..at + needle.len()] == *rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(input: &str) -> Result<Vec<String>, DeAggregationError> {
        DeAggregator::json()
            .split(&Bytes::copy_from_slice(input.as_bytes()))
            .map(|v| v.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect())
    }

    fn delimited(delim: &str, input: &str) -> Vec<String> {
        DeAggregator::delimited(delim.as_bytes().to_vec())
            .unwrap()
            .split(&Bytes::copy_from_slice(input.as_bytes()))
            .unwrap()
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn concatenated_json_objects_become_one_record_each() {
        assert_eq!(json(r#"{"a":1}{"a":2}"#).unwrap(), [r#"{"a":1}"#, r#"{"a":2}"#]);
    }

    #[test]
    fn whitespace_and_newlines_between_objects_are_dropped() {
        assert_eq!(
            json("  {\"a\":1}\n{\"a\":2}\r\n\t {\"a\":3}\n").unwrap(),
            [r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#]
        );
    }

    #[test]
    fn whitespace_inside_an_object_is_kept_byte_for_byte() {
        assert_eq!(json("{ \"a\" :\n 1 }{\"b\":2}").unwrap(), ["{ \"a\" :\n 1 }", r#"{"b":2}"#]);
    }

    #[test]
    fn braces_inside_strings_do_not_split_an_object() {
        let input = r#"{"s":"}{","t":"{{"}{"u":"}"}"#;
        assert_eq!(json(input).unwrap(), [r#"{"s":"}{","t":"{{"}"#, r#"{"u":"}"}"#]);
    }

    #[test]
    fn escaped_quotes_and_backslashes_inside_strings_are_handled() {
        let input = r#"{"q":"say \"}{\" now","b":"\\"}{"n":{"deep":[1,{"x":"\""}]}}"#;
        assert_eq!(
            json(input).unwrap(),
            [r#"{"q":"say \"}{\" now","b":"\\"}"#, r#"{"n":{"deep":[1,{"x":"\""}]}}"#]
        );
    }

    #[test]
    fn a_single_object_is_one_sub_record() {
        assert_eq!(json(r#"{"a":1}"#).unwrap(), [r#"{"a":1}"#]);
    }

    #[test]
    fn trailing_garbage_fails_the_whole_record_naming_the_offset() {
        let err = json(r#"{"a":1}{"a":2}xyz"#).unwrap_err();
        assert_eq!(
            err,
            DeAggregationError::NotAnObject { index: 2, offset: 14, found: "not JSON" }
        );
        assert_eq!(err.code(), "RecordDeAggregation.NotAJsonObject");
    }

    #[test]
    fn a_truncated_object_fails_the_whole_record_as_malformed_json() {
        let err = json(r#"{"a":1}{"a":"#).unwrap_err();
        let DeAggregationError::InvalidJson { index, offset, detail } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((*index, *offset), (1, 7));
        assert!(detail.contains("EOF"), "{detail}");
        assert_eq!(err.code(), "RecordDeAggregation.MalformedJson");
    }

    #[test]
    fn invalid_json_inside_an_object_is_an_error_not_a_panic() {
        let err = json(r#"{"a":1}{"a":tru}"#).unwrap_err();
        assert!(matches!(err, DeAggregationError::InvalidJson { index: 1, .. }), "{err:?}");
        let err = json(r#"{"a" 1}"#).unwrap_err();
        assert!(matches!(err, DeAggregationError::InvalidJson { index: 0, offset: 0, .. }));
        assert!(err.to_string().contains("starting at byte 0"), "{err}");
    }

    #[test]
    fn an_array_of_objects_is_not_split_but_rejected() {
        let err = json(r#"[{"a":1},{"a":2}]"#).unwrap_err();
        assert_eq!(err, DeAggregationError::NotAnObject { index: 0, offset: 0, found: "an array" });
    }

    #[test]
    fn scalars_between_objects_are_rejected() {
        let err = json(r#"{"a":1} 42 {"a":2}"#).unwrap_err();
        assert_eq!(err, DeAggregationError::NotAnObject { index: 1, offset: 8, found: "a number" });
    }

    #[test]
    fn an_empty_or_blank_record_holds_no_json_object() {
        assert_eq!(json("").unwrap_err(), DeAggregationError::NoJsonObject);
        assert_eq!(json(" \n ").unwrap_err(), DeAggregationError::NoJsonObject);
    }

    #[test]
    fn five_hundred_objects_are_fine_and_five_hundred_and_one_are_too_many() {
        let ok = "{}".repeat(MAX_SUB_RECORDS);
        assert_eq!(json(&ok).unwrap().len(), MAX_SUB_RECORDS);
        let err = json(&format!("{ok}{{}}")).unwrap_err();
        assert_eq!(err, DeAggregationError::TooManySubRecords { limit: 500 });
        assert_eq!(err.code(), "RecordDeAggregation.TooManySubRecords");
    }

    #[test]
    fn sub_records_share_the_input_buffer() {
        let input = Bytes::from_static(br#"{"a":1}{"a":2}"#);
        let parts = DeAggregator::json().split(&input).unwrap();
        assert_eq!(parts[1].as_ptr(), input[7..].as_ptr());
    }

    #[test]
    fn delimited_records_split_at_the_delimiter_and_drop_it() {
        assert_eq!(delimited("####", "a####b####c"), ["a", "b", "c"]);
    }

    #[test]
    fn delimited_empty_pieces_are_dropped() {
        assert_eq!(delimited("####", "####a########b####"), ["a", "b"]);
        assert!(delimited("####", "").is_empty());
        assert!(delimited("####", "########").is_empty());
    }

    #[test]
    fn delimited_without_a_delimiter_is_one_record_byte_for_byte() {
        assert_eq!(delimited("####", "a\nb###"), ["a\nb###"]);
    }

    #[test]
    fn delimited_handles_overlapping_partial_matches() {
        assert_eq!(delimited("##", "a###b"), ["a", "#b"]);
        assert_eq!(delimited("ab", "aab"), ["a"]);
        assert_eq!(delimited("\n", "x\ny\n"), ["x", "y"]);
    }

    #[test]
    fn delimited_also_caps_at_five_hundred_sub_records() {
        let d = DeAggregator::delimited(b",".to_vec()).unwrap();
        let ok = Bytes::from("x,".repeat(500));
        assert_eq!(d.split(&ok).unwrap().len(), 500);
        let err = d.split(&Bytes::from("x,".repeat(501))).unwrap_err();
        assert_eq!(err, DeAggregationError::TooManySubRecords { limit: 500 });
    }

    #[test]
    fn the_delimiter_is_given_in_base64() {
        let d = DeAggregator::delimited_base64("IyMjIw==").unwrap();
        assert_eq!(d.delimiter(), Some(&b"####"[..]));
        assert_eq!(d.sub_record_type(), SubRecordType::Delimited);
    }

    #[test]
    fn bad_base64_is_rejected_with_an_example() {
        let err = DeAggregator::delimited_base64("####").unwrap_err();
        assert!(err.contains("base64") && err.contains("IyMjIw=="), "{err}");
    }

    #[test]
    fn sub_record_type_accepts_only_json_and_delimited() {
        assert_eq!(SubRecordType::parse("JSON").unwrap(), SubRecordType::Json);
        assert_eq!(SubRecordType::parse("DELIMITED").unwrap(), SubRecordType::Delimited);
        assert!(SubRecordType::parse("json").unwrap_err().contains("JSON or DELIMITED"));
    }
}
