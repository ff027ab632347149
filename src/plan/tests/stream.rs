//! One stream: its name, its one destination, object store, shards, tags; what is not
//! supported yet; several problems at once.

use super::*;

#[test]
fn an_invalid_stream_name_is_rejected_with_the_name() {
    let yaml =
        stream("", "").replace("DeliveryStreamName: s", "DeliveryStreamName: \"my stream!\"");
    assert_issue(
        &yaml,
        "delivery_streams[0].DeliveryStreamName",
        &["\"my stream!\"", "1 to 64 characters"],
    );
    let long = "a".repeat(65);
    let yaml =
        stream("", "").replace("DeliveryStreamName: s", &format!("DeliveryStreamName: {long}"));
    assert_issue(&yaml, "delivery_streams[0].DeliveryStreamName", &[&long]);
    let ok = "a-Z_0.9".to_owned() + &"x".repeat(57);
    parse_ok(
        &stream("", "").replace("DeliveryStreamName: s", &format!("DeliveryStreamName: {ok}")),
    );
}

#[test]
fn duplicate_stream_names_are_rejected() {
    let one = "  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw }\n";
    let yaml = format!("delivery_streams:\n{one}{one}");
    assert_issue(
        &yaml,
        "delivery_streams[1].DeliveryStreamName",
        &["\"clicks\"", "delivery_streams[0]", "unique"],
    );
}

#[test]
fn a_stream_needs_exactly_one_destination() {
    assert_issue(
        "delivery_streams:\n  - DeliveryStreamName: s\n",
        "delivery_streams[0]",
        &["has no destination", "ExtendedS3DestinationConfiguration"],
    );
    assert_issue(
        &stream("", "S3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw }"),
        "delivery_streams[0]",
        &["more than one destination", "exactly one"],
    );
}

#[test]
fn an_unknown_object_store_is_rejected_naming_the_defined_ones() {
    let yaml = format!(
        "object_stores:\n  s3: {{ type: s3 }}\n{}",
        stream("", "hydrant: { object_store: minio }")
    );
    assert_issue(
        &yaml,
        "delivery_streams[0].hydrant.object_store",
        &["\"minio\"", "defined: default, s3"],
    );
}

#[test]
fn shards_must_be_between_1_and_64() {
    assert_issue(
        &stream("", "hydrant: { shards: 0 }"),
        "delivery_streams[0].hydrant.shards",
        &["must be 1..=64, got 0"],
    );
    assert_issue(
        &stream("", "hydrant: { shards: 65 }"),
        "delivery_streams[0].hydrant.shards",
        &["must be 1..=64, got 65"],
    );
    parse_ok(&stream("", "hydrant: { shards: 64 }"));
}

#[test]
fn tags_follow_the_firehose_rules() {
    let many: String = (0..51).map(|i| format!("{{ Key: k{i} }}, ")).collect();
    assert_issue(
        &stream("", &format!("Tags: [{many}]")),
        "delivery_streams[0].Tags",
        &["has 51 tags, at most 50", "remove 1"],
    );
    assert_issue(
        &stream("", "Tags: [{ Key: \"aws:owner\", Value: x }]"),
        "delivery_streams[0].Tags[0].Key",
        &["\"aws:owner\"", "reserved"],
    );
    assert_issue(
        &stream("", "Tags: [{ Key: \"\" }]"),
        "delivery_streams[0].Tags[0].Key",
        &["must be 1 to 128 characters, got 0"],
    );
    assert_issue(
        &stream("", &format!("Tags: [{{ Key: {} }}]", "k".repeat(129))),
        "delivery_streams[0].Tags[0].Key",
        &["got 129"],
    );
    assert_issue(
        &stream("", "Tags: [{ Key: \"team#1\" }]"),
        "delivery_streams[0].Tags[0].Key",
        &["\"team#1\"", "characters other than"],
    );
    assert_issue(
        &stream("", "Tags: [{ Key: a }, { Key: a }]"),
        "delivery_streams[0].Tags[1].Key",
        &["\"a\" is already used by Tags[0]"],
    );
    assert_issue(
        &stream("", &format!("Tags: [{{ Key: a, Value: {} }}]", "v".repeat(257))),
        "delivery_streams[0].Tags[0].Value",
        &["257 characters"],
    );
    let forty_nine: String = (0..49).map(|i| format!("{{ Key: k{i} }}, ")).collect();
    let c = parse_ok(&stream(
        "",
        &format!("Tags: [{forty_nine}{{ Key: \"Team Name/x=y+z-@%.:_\", Value: \"\" }}]"),
    ));
    assert_eq!(c.delivery_streams[0].tags.len(), 50);
}

#[test]
fn features_not_implemented_yet_are_rejected_clearly() {
    for format in ["ZIP", "Snappy", "HADOOP_SNAPPY", "ZSTD"] {
        parse_ok(&stream(&format!("CompressionFormat: {format}"), ""));
    }
    parse_ok(&stream("CompressionFormat: GZIP", ""));
    parse_ok(&stream("CompressionFormat: UNCOMPRESSED", ""));

    parse_ok(&stream(
        "S3BackupMode: Enabled\nS3BackupConfiguration: { BucketARN: arn:aws:s3:::b }",
        "",
    ));

    let not_yet = [
        (
            stream("", "DeliveryStreamType: MSKAsSource"),
            "delivery_streams[0].DeliveryStreamType",
            "not supported",
        ),
        (
            stream("", "DeliveryStreamType: KinesisStreamAsSource"),
            "delivery_streams[0].KinesisStreamSourceConfiguration",
            "needs KinesisStreamSourceConfiguration",
        ),
        (
            stream(
                "",
                "DeliveryStreamType: KinesisStreamAsSource\nKinesisStreamSourceConfiguration: { KinesisStreamARN: arn:aws:s3:::b }",
            ),
            "delivery_streams[0].KinesisStreamSourceConfiguration.KinesisStreamARN",
            "not a Kinesis stream ARN",
        ),
        (
            stream("", "KinesisStreamSourceConfiguration: { KinesisStreamARN: arn:aws:kinesis:r:1:stream/s }"),
            "delivery_streams[0].KinesisStreamSourceConfiguration",
            "is for DeliveryStreamType",
        ),
    ];
    for (yaml, path, says) in not_yet {
        let found = issues(&yaml);
        assert_eq!(found.len(), 1, "{yaml}\n{found:#?}");
        assert_eq!(found[0].path, path);
        assert!(found[0].message.contains(says), "{}", found[0].message);
    }
    parse_ok(&stream(
        "",
        "DeliveryStreamType: KinesisStreamAsSource\nKinesisStreamSourceConfiguration: { KinesisStreamARN: arn:aws:kinesis:us-east-1:1:stream/clicks }",
    ));

    // Present but switched off is fine.
    parse_ok(&stream(
        "ProcessingConfiguration: { Enabled: false, Processors: [{ Type: AppendDelimiterToRecord }] }\nDynamicPartitioningConfiguration: { Enabled: false }\nDataFormatConversionConfiguration: { Enabled: false }\nEncryptionConfiguration: { NoEncryptionConfig: NoEncryption }",
        "DeliveryStreamType: DirectPut",
    ));
}

#[test]
fn several_problems_are_reported_together() {
    let yaml = r#"
account_id: "12"
storage: { segment_bytes: 10 }
delivery_streams:
  - DeliveryStreamName: "bad name"
    ExtendedS3DestinationConfiguration:
      BucketARN: raw
      BufferingHints: { SizeInMBs: 0, IntervalInSeconds: 1000 }
      CompressionFormat: ZIP
    hydrant: { object_store: nowhere, shards: 0 }
  - DeliveryStreamName: ok
    S3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
      BufferingHints: { SizeInMBs: 5 }
"#;
    let err = parse_with_env(yaml, Path::new(BASE), env_map(&[])).unwrap_err();
    let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
    let expected = [
        "account_id",
        "storage.segment_bytes",
        "delivery_streams[0].DeliveryStreamName",
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BucketARN",
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs",
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.IntervalInSeconds",
        "delivery_streams[0].hydrant.object_store",
        "delivery_streams[0].hydrant.shards",
        "delivery_streams[1].S3DestinationConfiguration.BufferingHints.IntervalInSeconds",
    ];
    assert_eq!(paths, expected);
    let text = err.to_string();
    assert_eq!(text.lines().count(), expected.len(), "{text}");
    for (line, issue) in text.lines().zip(err.issues()) {
        assert_eq!(line, format!("{}: {}", issue.path, issue.message));
    }
}
