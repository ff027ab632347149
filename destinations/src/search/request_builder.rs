//! From records to one `_bulk` request: index names (rotation), document ids, and the NDJSON
//! body.
//!
//! The body is a pair of lines per document (FIREHOSE.md 6.1):
//!
//! ```text
//! {"index":{"_index":"logs-2016-02-25","_id":"clicks-0-17-0"}}
//! {"field":"value"}
//! ```
//!
//! `_id` is left out with `NO_DOCUMENT_ID`, and `"_type":"<TypeName>"` follows `_id` only when a
//! TypeName is configured. The action is `index`, not `create`: with stable ids, sending a
//! document again replaces it with the same content, so a retry or a crash replay is harmless.
//!
//! A record must be one JSON object. Records that are not (invalid JSON, an array, several
//! concatenated objects, invalid UTF-8) are rejected before sending, with the code OpenSearch
//! itself gives such a document (`mapper_parsing_exception`): sent as they are, a record with a
//! newline in it would break the NDJSON framing and could even be read as an action line.
//! Line breaks *between* JSON tokens (pretty-printed JSON, a trailing newline) are legal JSON
//! whitespace, so they are sent as spaces instead of being rejected; raw line breaks cannot
//! occur inside JSON strings, so this never changes a value.

use bytes::Bytes;
use chrono::{DateTime, Datelike, Days, NaiveDate, Timelike, Utc};
use serde::de::IgnoredAny;

use super::config::{DefaultDocumentIdFormat, IndexRotationPeriod, SearchSettings};
use crate::Rejected;

/// One document of a `_bulk` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Position of the record in the request the delivery layer first built. Partial retries
    /// keep it, so rejections always point at the original record.
    pub index: usize,
    /// `_id`, or `None` to let the cluster choose (`NO_DOCUMENT_ID`).
    pub id: Option<String>,
    /// The index after rotation, see [`index_name`].
    pub index_name: String,
    /// The record: one JSON object.
    pub source: Bytes,
}

/// What one delivery attempt sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkRequest {
    pub docs: Vec<Document>,
}

/// Where a record sits in Hydrant's log; it names the record for good, so the document id
/// derived from it is the same on every attempt and after every restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPosition<'a> {
    /// The stream's identity (see [`document_id`] about recreated streams).
    pub stream: &'a str,
    pub shard: u32,
    pub sequence: u64,
    /// Which of the documents made from one log record this is (0 when a record gives one
    /// document; more when a transform or de-aggregation splits it).
    pub sub_index: u32,
}

impl SearchSettings {
    /// Builds the document for one record: rotated index name from its arrival time, id by
    /// `DocumentIdOptions`. `index` is the record's position in the request being built.
    pub fn document(
        &self,
        index: usize,
        position: RecordPosition<'_>,
        arrival_ms: i64,
        source: Bytes,
    ) -> Document {
        let id = match self.document_ids {
            DefaultDocumentIdFormat::FirehoseDefault => Some(document_id(
                position.stream,
                position.shard,
                position.sequence,
                position.sub_index,
            )),
            DefaultDocumentIdFormat::NoDocumentId => None,
        };
        Document {
            index,
            id,
            index_name: index_name(&self.index_name, self.rotation, arrival_ms),
            source,
        }
    }
}

/// The index a record arriving at `arrival_ms` (Unix epoch milliseconds) goes to: `base` plus
/// `-` and the UTC arrival time in the period's format (FIREHOSE.md 6.2).
///
/// | period | suffix | 2016-02-25T13:00:00Z |
/// |---|---|---|
/// | NoRotation | none | `base` |
/// | OneHour | `-yyyy-MM-dd-HH` | `base-2016-02-25-13` |
/// | OneDay | `-yyyy-MM-dd` | `base-2016-02-25` |
/// | OneWeek | `-<week year>-w<week>` | `base-2016-w09` (the DG's table says `w08`, which is ISO numbering and contradicts its own rule) |
/// | OneMonth | `-yyyy-MM` | `base-2016-02` |
///
/// Weeks follow the US rule: they start on Sunday and week 1 is the week that holds
/// January 1. The last days of December therefore often belong to week 1 of the next year
/// (2019-12-31 is in `2020-w01`), and the year printed is the year of that week, so one week
/// never ends up in two indexes. Times outside chrono's range (±262,000 years) are taken as
/// the Unix epoch.
pub fn index_name(base: &str, period: IndexRotationPeriod, arrival_ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(arrival_ms).unwrap_or(DateTime::UNIX_EPOCH);
    let (y, m, d) = (t.year(), t.month(), t.day());
    match period {
        IndexRotationPeriod::NoRotation => base.to_string(),
        IndexRotationPeriod::OneHour => format!("{base}-{y:04}-{m:02}-{d:02}-{:02}", t.hour()),
        IndexRotationPeriod::OneDay => format!("{base}-{y:04}-{m:02}-{d:02}"),
        IndexRotationPeriod::OneMonth => format!("{base}-{y:04}-{m:02}"),
        IndexRotationPeriod::OneWeek => {
            let (week_year, week) = us_week(t.date_naive());
            format!("{base}-{week_year:04}-w{week:02}")
        }
    }
}

/// US week numbering: `(week year, week 1..=53)`. A week (Sunday to Saturday) belongs to the
/// year its Saturday falls in, because the week holding January 1 has its Saturday in January.
fn us_week(date: NaiveDate) -> (i32, u32) {
    let sunday = date - Days::new(date.weekday().num_days_from_sunday().into());
    let week_year = (sunday + Days::new(6)).year();
    let jan1 = NaiveDate::from_ymd_opt(week_year, 1, 1).expect("January 1 exists");
    let first_sunday = jan1 - Days::new(jan1.weekday().num_days_from_sunday().into());
    let week = (sunday - first_sunday).num_days() / 7 + 1;
    (week_year, week as u32)
}

/// The `_id` of a record's document with `FIREHOSE_DEFAULT`: `<stream>-<shard>-<sequence>-<sub>`,
/// e.g. `clicks-0-1234-0`.
///
/// Why this form: it is derived only from the record's durable position in Hydrant's log, so
/// it is the same on every attempt and after any restart (Firehose's own id format is not
/// documented, only its stability); it is unambiguous (the last three `-` fields are numbers,
/// everything before them is the stream), so no two records share an id even when several
/// streams write to one index; it is at most ~120 bytes (OpenSearch allows 512); and it is
/// readable: a document found in OpenSearch points straight at its record in the log. Ids that
/// grow with the sequence number are also cheap for Lucene to look up.
///
/// A stream that is deleted and created again under the same name starts its sequence numbers
/// at 0 again; pass an identity that changes then (e.g. `<name>@<creation ms>`) if its new
/// documents could land in the same index as the old ones.
pub fn document_id(stream: &str, shard: u32, sequence: u64, sub_index: u32) -> String {
    format!("{stream}-{shard}-{sequence}-{sub_index}")
}

/// A `_bulk` body ready to send.
#[derive(Debug)]
pub(crate) struct EncodedBulk {
    pub body: Bytes,
    /// Positions (in the request's `docs`) of the documents in the body, in body order; the
    /// response's items follow this order.
    pub sent: Vec<usize>,
    /// Documents that are not one JSON object.
    pub rejected: Vec<Rejected>,
}

/// Writes the NDJSON body for `request`. `code_prefix` is `OS` or `ES`.
pub(crate) fn encode_bulk(
    request: &BulkRequest,
    type_name: Option<&str>,
    code_prefix: &str,
) -> EncodedBulk {
    let size: usize = request.docs.iter().map(|d| d.source.len() + d.index_name.len() + 64).sum();
    let mut body = Vec::with_capacity(size);
    let mut sent = Vec::with_capacity(request.docs.len());
    let mut rejected = Vec::new();
    for (position, doc) in request.docs.iter().enumerate() {
        if let Err(why) = check_document(&doc.source) {
            rejected.push(Rejected {
                index: doc.index,
                code: format!("{code_prefix}.MapperParsingException"),
                message: format!(
                    "mapper_parsing_exception: failed to parse: the record is not one JSON \
                     object ({why}); rejected by Hydrant before sending"
                ),
            });
            continue;
        }
        write_action(&mut body, doc, type_name);
        body.extend(doc.source.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
        body.push(b'\n');
        sent.push(position);
    }
    EncodedBulk { body: body.into(), sent, rejected }
}

fn write_action(body: &mut Vec<u8>, doc: &Document, type_name: Option<&str>) {
    let field = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(name.as_bytes());
        serde_json::to_writer(&mut *body, value).expect("writing a JSON string to memory");
    };
    field(body, "{\"index\":{\"_index\":", &doc.index_name);
    if let Some(id) = &doc.id {
        field(body, ",\"_id\":", id);
    }
    if let Some(t) = type_name {
        field(body, ",\"_type\":", t);
    }
    body.extend_from_slice(b"}}\n");
}

/// `Ok` when `source` is exactly one JSON object (surrounding whitespace allowed).
pub(crate) fn check_document(source: &[u8]) -> Result<(), String> {
    let first = source.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err("it is empty".into()),
        Some(b'{') => {}
        Some(_) => return Err("it does not start with `{`".into()),
    }
    // serde_json does not check the UTF-8 of strings it skips.
    std::str::from_utf8(source).map_err(|e| format!("invalid UTF-8: {e}"))?;
    serde_json::from_slice::<IgnoredAny>(source).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of `y-m-d hh:00:00Z`.
    fn at(y: i32, m: u32, d: u32, hh: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(hh, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn doc(index: usize, id: Option<&str>, source: &'static str) -> Document {
        Document {
            index,
            id: id.map(Into::into),
            index_name: "logs-2016-02-25".into(),
            source: Bytes::from_static(source.as_bytes()),
        }
    }

    #[test]
    fn rotation_suffixes_match_firehose_example_except_its_iso_week() {
        let t = at(2016, 2, 25, 13);
        let cases = [
            (IndexRotationPeriod::NoRotation, "myindex"),
            (IndexRotationPeriod::OneHour, "myindex-2016-02-25-13"),
            (IndexRotationPeriod::OneDay, "myindex-2016-02-25"),
            // The DG's table says `w08` here, but its own rule (Sunday start, week 1 holds Jan 1)
            // gives week 9: Jan 1 2016 is a Friday, so week 1 is Dec 27 - Jan 2 and Feb 21-27
            // is week 9. `w08` is ISO numbering. Hydrant follows the stated rule.
            (IndexRotationPeriod::OneWeek, "myindex-2016-w09"),
            (IndexRotationPeriod::OneMonth, "myindex-2016-02"),
        ];
        for (period, expected) in cases {
            assert_eq!(index_name("myindex", period, t), expected, "{period:?}");
        }
    }

    #[test]
    fn rotation_uses_utc_and_the_last_millisecond_stays_in_its_hour() {
        let t = at(2024, 3, 10, 23) + 3_599_999; // 23:59:59.999Z
        assert_eq!(index_name("x", IndexRotationPeriod::OneHour, t), "x-2024-03-10-23");
        assert_eq!(index_name("x", IndexRotationPeriod::OneHour, t + 1), "x-2024-03-11-00");
        assert_eq!(index_name("x", IndexRotationPeriod::OneMonth, at(2024, 2, 29, 0)), "x-2024-02");
    }

    /// Week 1 is the Sunday-to-Saturday week that holds January 1; the days of that week that
    /// fall in December belong to it (and to the new year's name).
    #[test]
    fn year_boundary_weeks_follow_the_us_rule() {
        let week = |y, m, d| index_name("w", IndexRotationPeriod::OneWeek, at(y, m, d, 12));
        // 2016-12-31 is a Saturday: the last day of week 53; Sunday 2017-01-01 opens week 1.
        assert_eq!(week(2016, 12, 31), "w-2016-w53");
        assert_eq!(week(2017, 1, 1), "w-2017-w01");
        assert_eq!(week(2017, 1, 7), "w-2017-w01");
        assert_eq!(week(2017, 1, 8), "w-2017-w02");
        // 2020-01-01 is a Wednesday: its week starts Sunday 2019-12-29, so Dec 29-31 are 2020-w01.
        assert_eq!(week(2019, 12, 28), "w-2019-w52");
        assert_eq!(week(2019, 12, 29), "w-2020-w01");
        assert_eq!(week(2019, 12, 31), "w-2020-w01");
        assert_eq!(week(2020, 1, 4), "w-2020-w01");
        assert_eq!(week(2020, 1, 5), "w-2020-w02");
        // 2022-01-01 is a Saturday: week 1 is Dec 26 2021 to Jan 1 2022 (ISO would say 2021-W52).
        assert_eq!(week(2021, 12, 25), "w-2021-w52");
        assert_eq!(week(2021, 12, 31), "w-2022-w01");
        assert_eq!(week(2022, 1, 1), "w-2022-w01");
        assert_eq!(week(2022, 1, 2), "w-2022-w02");
        // 2023-01-01 is a Sunday: Dec 31 2022 (Saturday) closes 2022's week 53.
        assert_eq!(week(2022, 12, 31), "w-2022-w53");
        assert_eq!(week(2023, 1, 1), "w-2023-w01");
        // 2024-12-31 is a Tuesday in the week of 2025-01-01 (Wednesday).
        assert_eq!(week(2024, 12, 28), "w-2024-w52");
        assert_eq!(week(2024, 12, 29), "w-2025-w01");
        assert_eq!(week(2024, 12, 31), "w-2025-w01");
        assert_eq!(week(2025, 1, 1), "w-2025-w01");
        // 2000 is a leap year starting on Saturday: Jan 1 ends week 1, Dec 31 (Sunday) is 2001-w01.
        assert_eq!(week(1999, 12, 26), "w-2000-w01");
        assert_eq!(week(2000, 1, 2), "w-2000-w02");
        assert_eq!(week(2000, 12, 30), "w-2000-w53");
        assert_eq!(week(2000, 12, 31), "w-2001-w01");
    }

    #[test]
    fn every_day_for_sixteen_years_keeps_its_sunday_week_and_week_one_holds_january_first() {
        let mut day = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2031, 1, 1).unwrap();
        let mut previous = us_week(day - Days::new(1));
        while day < end {
            let (year, week) = us_week(day);
            assert!((1..=53).contains(&week), "{day}");
            if day.weekday() != chrono::Weekday::Sun {
                assert_eq!((year, week), previous, "{day} changed week mid-week");
            } else if week == 1 {
                let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
                assert!(jan1 >= day && jan1 < day + Days::new(7), "{day}: week 1 without Jan 1");
            } else {
                assert_eq!((year, week), (previous.0, previous.1 + 1), "{day}");
            }
            previous = (year, week);
            day = day + Days::new(1);
        }
    }

    #[test]
    fn document_ids_are_readable_and_distinct_per_position() {
        assert_eq!(document_id("clicks", 0, 1234, 0), "clicks-0-1234-0");
        // A stream name ending in digits cannot collide: the last three fields are fixed.
        assert_ne!(document_id("a-1", 2, 3, 0), document_id("a", 1, 2, 3));
        let longest = document_id(&"s".repeat(64), u32::MAX, u64::MAX, u32::MAX);
        assert!(longest.len() <= 512, "{}", longest.len());
    }

    #[test]
    fn settings_build_documents_with_rotation_and_the_configured_id_format() {
        use super::super::config::{DocumentIdOptions, SearchSettingsInput};
        let mut input = SearchSettingsInput {
            cluster_endpoint: Some("http://127.0.0.1:9200".into()),
            index_name: "logs".into(),
            ..SearchSettingsInput::default()
        };
        let pos = RecordPosition { stream: "clicks", shard: 1, sequence: 42, sub_index: 0 };
        let src = Bytes::from_static(b"{}");
        let s = SearchSettings::validate(&input).unwrap();
        let d = s.document(3, pos, at(2016, 2, 25, 13), src.clone());
        assert_eq!(d.index, 3);
        assert_eq!(d.id.as_deref(), Some("clicks-1-42-0"));
        assert_eq!(d.index_name, "logs-2016-02-25");
        input.document_id_options = Some(DocumentIdOptions {
            default_document_id_format: DefaultDocumentIdFormat::NoDocumentId,
        });
        let s = SearchSettings::validate(&input).unwrap();
        assert_eq!(s.document(3, pos, 0, src).id, None);
    }

    #[test]
    fn bulk_body_is_exact_ndjson_with_optional_id_and_type() {
        let request = BulkRequest {
            docs: vec![doc(0, Some("s-0-1-0"), r#"{"a":1}"#), doc(1, None, r#"{"b":"x\"y"}"#)],
        };
        let encoded = encode_bulk(&request, None, "OS");
        assert_eq!(
            std::str::from_utf8(&encoded.body).unwrap(),
            concat!(
                "{\"index\":{\"_index\":\"logs-2016-02-25\",\"_id\":\"s-0-1-0\"}}\n",
                "{\"a\":1}\n",
                "{\"index\":{\"_index\":\"logs-2016-02-25\"}}\n",
                "{\"b\":\"x\\\"y\"}\n",
            )
        );
        assert_eq!(encoded.sent, vec![0, 1]);
        assert!(encoded.rejected.is_empty());

        let typed =
            encode_bulk(&BulkRequest { docs: vec![doc(0, Some("i"), "{}")] }, Some("doc"), "ES");
        assert_eq!(
            &typed.body[..],
            b"{\"index\":{\"_index\":\"logs-2016-02-25\",\"_id\":\"i\",\"_type\":\"doc\"}}\n{}\n"
        );
    }

    #[test]
    fn names_and_ids_are_json_escaped_in_the_action_line() {
        let mut d = doc(0, Some("a\"b\\c"), "{}");
        d.index_name = "we\"ird".into();
        let encoded = encode_bulk(&BulkRequest { docs: vec![d] }, None, "OS");
        assert_eq!(
            &encoded.body[..],
            b"{\"index\":{\"_index\":\"we\\\"ird\",\"_id\":\"a\\\"b\\\\c\"}}\n{}\n"
        );
    }

    #[test]
    fn line_breaks_between_json_tokens_become_spaces() {
        let request = BulkRequest { docs: vec![doc(0, Some("i"), "{\r\n  \"a\": 1\n}\n")] };
        let encoded = encode_bulk(&request, None, "OS");
        assert_eq!(
            &encoded.body[..],
            b"{\"index\":{\"_index\":\"logs-2016-02-25\",\"_id\":\"i\"}}\n{    \"a\": 1 } \n"
        );
    }

    #[test]
    fn records_that_are_not_one_json_object_are_rejected_before_sending() {
        let bad = [
            "not json",
            "[1,2]",
            "\"text\"",
            "",
            "{\"a\":1}{\"b\":2}",
            "{\"a\":1}\n{\"index\":{}}",
            "{\"a\":\"line\nbreak\"}",
            "{\"a\":",
        ];
        let mut docs: Vec<Document> =
            bad.iter().enumerate().map(|(i, s)| doc(i + 10, Some("x"), s)).collect();
        docs.insert(3, doc(99, Some("ok"), "{\"ok\":true}"));
        docs.push(Document {
            source: Bytes::from_static(b"{\"a\":\"\xff\"}"),
            ..doc(50, None, "")
        });
        let encoded = encode_bulk(&BulkRequest { docs }, None, "OS");
        assert_eq!(encoded.sent, vec![3]);
        let indexes: Vec<usize> = encoded.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![10, 11, 12, 13, 14, 15, 16, 17, 50]);
        assert!(encoded.rejected.iter().all(|r| r.code == "OS.MapperParsingException"));
        assert!(encoded.rejected[0].message.contains("not one JSON object"));
        assert_eq!(
            &encoded.body[..],
            b"{\"index\":{\"_index\":\"logs-2016-02-25\",\"_id\":\"ok\"}}\n{\"ok\":true}\n"
        );
    }
}
