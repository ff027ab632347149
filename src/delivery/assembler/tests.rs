//! The assembler on its own: records it cannot name go to partitioning-failed, and its error
//! documents come out in Firehose's field order.

use serde_json::json;

use super::*;
use crate::codec::compression_for;
use crate::codec::CompressionFormat;
use crate::processors::MetadataExtractor;

/// A store that takes every key: the records below fail on their values alone.
struct AnyKey;

impl StoreKeys for AnyKey {
    fn check(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

fn stages(prefix: &str, rules: Arc<dyn StoreKeys>) -> Stages {
    let extract = MetadataExtractor::new("{k: .k}").unwrap();
    let namer = ObjectNamer::new(
        "s",
        Some(prefix),
        Some("e/!{firehose:error-output-type}/"),
        "",
        chrono_tz::UTC,
    )
    .unwrap();
    Stages {
        processors: Some(Arc::new(Processors::from_parts(None, Some(extract), None, None))),
        transform: None,
        partitioning: Some(Partitioning::for_prefix(Arc::new(namer), 500, rules, 1)),
        catalog: Value::Null,
    }
}

/// Pushes one record per key value and returns the sealed units as (key, records,
/// error documents).
fn run(
    prefix: &str,
    rules: Arc<dyn StoreKeys>,
    values: &[Value],
) -> Vec<(BufferKey, u64, Vec<Value>)> {
    let timed: Vec<(Value, i64)> = values.iter().map(|v| (v.clone(), 1_000)).collect();
    run_at(prefix, rules, &timed)
}

/// [`run`] with each record's arrival time.
fn run_at(
    prefix: &str,
    rules: Arc<dyn StoreKeys>,
    values: &[(Value, i64)],
) -> Vec<(BufferKey, u64, Vec<Value>)> {
    let codec =
        ObjectCodec::concatenated(compression_for(CompressionFormat::Uncompressed).into(), "");
    let policy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 60_000 };
    let mut assembler = Assembler::new(
        stages(prefix, rules),
        &codec,
        0,
        Layout::Object,
        policy,
        Markers::default(),
        0,
    );
    for (seq, (value, arrival_ms)) in values.iter().enumerate() {
        let data = serde_json::to_vec(&json!({"k": value})).unwrap();
        let record = Record { seq: seq as u64, arrival_ms: *arrival_ms, data: data.into() };
        assembler.push(&record).unwrap();
    }
    assembler
        .finish()
        .unwrap()
        .into_iter()
        .map(|unit| {
            let docs = match unit.key {
                BufferKey::Errors(_) => unit
                    .body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_slice(l).unwrap())
                    .collect(),
                BufferKey::Data(_) => Vec::new(),
            };
            (unit.key, unit.records, docs)
        })
        .collect()
}

#[test]
fn records_whose_partition_value_cannot_be_named_go_to_partitioning_failed_and_the_rest_are_delivered(
) {
    let values = [
        json!(""),
        json!("."),
        json!(".."),
        json!("a\nb"),
        json!("tab\there"),
        json!("/lead"),
        json!("trail/"),
        json!("a//b"),
        json!("x/../y"),
        json!("ok"),
        json!("a/b"),
    ];
    let units = run("p/!{partitionKeyFromQuery:k}/", Arc::new(AnyKey), &values);
    let failed: Vec<&Value> = units
        .iter()
        .filter(|(key, _, _)| *key == BufferKey::Errors(PARTITIONING_FAILED))
        .flat_map(|(_, _, docs)| docs)
        .collect();
    assert_eq!(failed.len(), 9, "{units:?}");
    for doc in &failed {
        assert_eq!(doc["errorCode"], "DynamicPartitioning.InvalidPartitionKeyValue", "{doc}");
        assert!(doc["errorMessage"].as_str().unwrap().contains("partition key \"k\""), "{doc}");
        assert!(doc["rawData"].is_string());
    }
    let delivered: Vec<String> = units
        .iter()
        .filter_map(|(key, records, _)| match key {
            BufferKey::Data(p) => Some(format!("{}:{records}", p.query["k"])),
            BufferKey::Errors(_) => None,
        })
        .collect();
    assert_eq!(delivered, ["ok:1", "a/b:1"]);
}

#[test]
fn error_documents_have_firehoses_fields_in_firehoses_order() {
    let codec =
        ObjectCodec::concatenated(compression_for(CompressionFormat::Uncompressed).into(), "");
    let policy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 60_000 };
    let stages = stages("p/!{partitionKeyFromQuery:k}/", Arc::new(AnyKey));
    let mut assembler =
        Assembler::new(stages, &codec, 0, Layout::Object, policy, Markers::default(), 0);
    let record = Record { seq: 0, arrival_ms: 1_000, data: Bytes::from_static(b"{\"k\":\"\"}") };
    assembler.push(&record).unwrap();
    let units = assembler.finish().unwrap();
    let body = String::from_utf8(units[0].body.to_vec()).unwrap();
    let (start, end) = body.split_once(r#","attemptEndingTimestamp":"#).unwrap();
    assert!(
        start.starts_with(concat!(
            r#"{"attemptsMade":1,"arrivalTimestamp":1000,"#,
            r#""errorCode":"DynamicPartitioning.InvalidPartitionKeyValue","errorMessage":"#
        )),
        "{body}"
    );
    // The ending time, then the record.
    assert!(
        end.ends_with(
            r#","rawData":"eyJrIjoiIn0="}
"#
        ),
        "{body}"
    );
}

/// A store that takes keys of at most this many bytes.
struct MaxKeyBytes(usize);

impl StoreKeys for MaxKeyBytes {
    fn check(&self, key: &str) -> Result<(), String> {
        match key.len() {
            n if n > self.0 => Err(format!("the key is {n} bytes; at most {} fit", self.0)),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_partition_that_makes_the_key_too_long_for_the_store_goes_to_partitioning_failed() {
    // 500 two-byte characters: within Firehose's 512-character prefix, past 1024 bytes.
    let long = "é".repeat(500);
    let too_many_chars = "x".repeat(600);
    for (value, why) in [
        (long.as_str(), "at most 1024 fit"),
        // Firehose's own limit on a partition value, whatever the store.
        (too_many_chars.as_str(), "at most 512 are allowed"),
    ] {
        let rules = Arc::new(MaxKeyBytes(1024));
        let units = run("p/!{partitionKeyFromQuery:k}/", rules, &[json!(value), json!("ok")]);
        assert_eq!(units.len(), 2);
        let (_, _, docs) = units
            .iter()
            .find(|(key, _, _)| *key == BufferKey::Errors(PARTITIONING_FAILED))
            .expect("an error unit");
        assert_eq!(docs[0]["errorCode"], "DynamicPartitioning.InvalidObjectKey");
        assert!(docs[0]["errorMessage"].as_str().unwrap().contains(why), "{}", docs[0]);
        assert!(units
            .iter()
            .any(|(key, _, _)| matches!(key, BufferKey::Data(p) if p.query["k"] == "ok")));
    }
    run("p/!{partitionKeyFromQuery:k}/", Arc::new(MaxKeyBytes(1024)), &[json!("s".repeat(300))])
        .into_iter()
        .for_each(|(key, _, _)| assert!(matches!(key, BufferKey::Data(_))));
}

/// A store whose path segments hold at most this many bytes (a local directory).
struct MaxSegmentBytes(usize);

impl StoreKeys for MaxSegmentBytes {
    fn check(&self, key: &str) -> Result<(), String> {
        match key.split('/').map(str::len).max() {
            Some(n) if n > self.0 => Err(format!("a segment is {n} bytes; at most {} fit", self.0)),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_key_is_checked_with_the_time_its_object_is_named_with() {
    // "August" + 249 bytes is a 255-byte folder name; "September" + 249 is too long.
    let prefix = "p/!{timestamp:MMMM}!{partitionKeyFromQuery:k}/";
    let value = json!("k".repeat(249));
    let august_last_second = 1_788_220_799_000; // 2026-08-31T23:59:59Z
    let september = august_last_second + 1_500;
    // The object opened in August is named "August" for both records.
    let units = run_at(
        prefix,
        Arc::new(MaxSegmentBytes(255)),
        &[(value.clone(), august_last_second), (value.clone(), september)],
    );
    assert_eq!(units.len(), 1, "{units:?}");
    assert!(matches!(&units[0], (BufferKey::Data(_), 2, _)), "{units:?}");
    // A record that opens an object in September cannot be named.
    let units = run_at(prefix, Arc::new(MaxSegmentBytes(255)), &[(value, september)]);
    assert!(matches!(&units[0], (BufferKey::Errors(PARTITIONING_FAILED), 1, _)), "{units:?}");
}
