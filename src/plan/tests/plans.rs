//! What checking a stream returns for its pipeline: the destination's plan, the parsed
//! prefixes of the S3 side and the compiled processors.

use super::*;
use crate::plan::{check_stream, plan_stream, StreamPlan};
use hydrant_destinations::s3::{ServerSideEncryption, StoreSpec};

fn one_stream(yaml: &str) -> (Config, DeliveryStreamConfig) {
    let mut config = crate::config::parse(yaml, Path::new(BASE)).unwrap();
    let stream = config.delivery_streams.remove(0);
    (config, stream)
}

fn planned(yaml: &str) -> StreamPlan {
    let (server, stream) = one_stream(yaml);
    match plan_stream(&server, &stream) {
        Ok(plan) => plan,
        Err(issues) => panic!("expected a plan, got {issues:?}"),
    }
}

#[test]
fn an_s3_stream_is_planned_with_its_parsed_prefixes_and_enabled_processors() {
    let plan = planned(&stream(
        "Prefix: \"data/!{timestamp:yyyy}/\"
ErrorOutputPrefix: \"err/!{firehose:error-output-type}/\"
ProcessingConfiguration: { Enabled: true, Processors: [{ Type: AppendDelimiterToRecord }] }",
        "",
    ));
    assert_eq!(plan.destination.descriptor().kind, DestinationKind::S3);
    assert_eq!(plan.prefixes.prefix.as_str(), "data/!{timestamp:yyyy}/");
    assert!(plan.prefixes.prefix.has_expressions());
    assert_eq!(plan.prefixes.error_output_prefix.as_str(), "err/!{firehose:error-output-type}/");
    assert!(plan.processors.is_some(), "enabled processors are compiled once, here");

    let off = planned(&stream(
        "ProcessingConfiguration: { Enabled: false, Processors: [{ Type: AppendDelimiterToRecord }] }",
        "",
    ));
    assert!(off.processors.is_none(), "disabled processors are checked, not run");
    assert_eq!(off.prefixes.prefix.as_str(), "");
}

#[test]
fn another_destination_is_planned_with_the_prefixes_of_its_s3_configuration() {
    let plan = planned(
        "delivery_streams:
  - DeliveryStreamName: h
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: { Url: \"https://example.com/in\" }
      S3Configuration: { BucketARN: arn:aws:s3:::raw, Prefix: failed/ }
",
    );
    assert_eq!(plan.destination.descriptor().kind, DestinationKind::Http);
    assert_eq!(plan.prefixes.prefix.as_str(), "failed/");
    assert!(plan.processors.is_none());
}

#[test]
fn the_deprecated_s3_block_is_planned_like_the_extended_one() {
    let plan = planned(
        "delivery_streams:
  - DeliveryStreamName: old
    S3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw, Prefix: legacy/ }
",
    );
    assert_eq!(plan.destination.descriptor().kind, DestinationKind::S3);
    assert_eq!(plan.prefixes.prefix.as_str(), "legacy/");
}

#[test]
fn a_stream_is_not_planned_with_problems_and_gets_only_its_own_problems() {
    let (server, invalid) = one_stream(&stream("Prefix: \"a/!{timestamp:yyyy'}/\"", ""));
    let Err(issues) = plan_stream(&server, &invalid) else { panic!("planned an invalid prefix") };
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"ExtendedS3DestinationConfiguration.Prefix"), "{paths:?}");
    // An API stream's problems are under its label; the server's settings are not its problem.
    let (mut server, valid) = one_stream(&stream("", ""));
    server.account_id = "not an account".into();
    assert!(!validate(&server).is_empty());
    assert!(plan_stream(&server, &valid).is_ok());
    let mut bad = valid.clone();
    bad.hydrant.shards = 0;
    let Err(issues) = check_stream(&server, &bad, "Update") else { panic!("0 shards planned") };
    assert_eq!(issues[0].path, "Update.hydrant.shards");
}

#[test]
fn loading_a_file_plans_each_of_its_streams_once_in_the_files_order() {
    let yaml = "delivery_streams:
  - DeliveryStreamName: first
    ExtendedS3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw, Prefix: one/ }
  - DeliveryStreamName: second
    S3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw, Prefix: two/ }
";
    let server = crate::plan::parse(yaml, Path::new(BASE)).unwrap();
    let planned: Vec<(&str, &str)> = server
        .streams()
        .map(|(stream, plan)| (stream.delivery_stream_name.as_str(), plan.prefixes.prefix.as_str()))
        .collect();
    assert_eq!(planned, [("first", "one/"), ("second", "two/")]);
    // The streams are normalised; their plans were made from the same settings.
    let (_, second) = server.streams().nth(1).unwrap();
    assert_eq!(second.destination.descriptor().kind, DestinationKind::S3);
    assert!(server.config().delivery_streams[1].extended_s3_destination_configuration.is_some());
    let (config, by_name) = server.into_parts();
    assert_eq!(config.delivery_streams.len(), 2);
    assert_eq!(by_name["second"].prefixes.prefix.as_str(), "two/");
}

/// A stream converting to Parquet with the schema in `file`, a backup and SSE-KMS, in the
/// object store `minio`.
fn parquet_stream(file: &Path) -> String {
    format!(
        "object_stores:
  minio: {{ type: s3, endpoint: \"http://127.0.0.1:9000\", region: eu-west-1, allow_http: true }}
delivery_streams:
  - DeliveryStreamName: p
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
      EncryptionConfiguration: {{ KMSEncryptionConfig: {{ AWSKMSKeyARN: \"arn:aws:kms:eu-west-1:123456789012:key/k\" }} }}
{PARQUET_CONVERSION}      S3BackupMode: Enabled
      S3BackupConfiguration:
        BucketARN: arn:aws:s3:::backup
        Prefix: \"src/!{{timestamp:yyyy}}/\"
        ErrorOutputPrefix: src-err/
        BufferingHints: {{ SizeInMBs: 64, IntervalInSeconds: 900 }}
        CompressionFormat: GZIP
    hydrant: {{ object_store: minio, schema: {{ file: {} }} }}
",
        file.display()
    )
}

#[test]
fn a_plan_holds_the_resolved_store_the_sse_choice_the_loaded_schema_and_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.yaml");
    std::fs::write(&file, "columns: [{name: id, type: bigint}, {name: name, type: string}]")
        .unwrap();
    let server = crate::plan::parse(&parquet_stream(&file), dir.path()).unwrap();
    let (_, plan) = server.streams().next().unwrap();
    let StoreSpec::S3 { endpoint, region, .. } = &plan.store else {
        panic!("expected the s3 store, got {:?}", plan.store)
    };
    assert_eq!(
        (endpoint.as_deref(), region.as_str()),
        (Some("http://127.0.0.1:9000"), "eu-west-1")
    );
    assert_eq!(
        plan.sse,
        Some(ServerSideEncryption::Kms {
            key_id: "arn:aws:kms:eu-west-1:123456789012:key/k".into()
        })
    );
    let columns: Vec<&str> = plan.schema.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "name"], "read once, when the stream is planned");
    let backup = plan.backup.as_ref().expect("a backup plan");
    assert_eq!(backup.bucket, "backup");
    assert_eq!(backup.prefixes.prefix.as_str(), "src/!{timestamp:yyyy}/");
    assert_eq!(backup.compression, CompressionFormat::Gzip);
    assert_eq!((backup.buffer_bytes, backup.buffer_interval_ms), (64 << 20, 900_000));
}

#[test]
fn sse_comes_from_the_s3_side_the_pipeline_writes_to_and_plain_streams_plan_no_extras() {
    let minio = "object_stores:
  minio: { type: s3, endpoint: \"http://127.0.0.1:9000\", allow_http: true }
";
    let sse_s3 = format!(
        "{minio}{}",
        stream("", "hydrant: { object_store: minio, server_side_encryption: AES256 }")
    );
    let plan = planned(&sse_s3);
    assert_eq!(plan.sse, Some(ServerSideEncryption::S3Managed));
    assert!(plan.schema.is_none() && plan.backup.is_none());
    // An HTTP destination writes failed records to its S3Configuration, with its encryption.
    let http = planned(&format!(
        "{minio}delivery_streams:
  - DeliveryStreamName: h
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: {{ Url: \"https://example.com/in\" }}
      S3BackupMode: AllData
      S3Configuration:
        BucketARN: arn:aws:s3:::failed
        EncryptionConfiguration: {{ KMSEncryptionConfig: {{ AWSKMSKeyARN: k1 }} }}
    hydrant: {{ object_store: minio }}
"
    ));
    assert_eq!(http.sse, Some(ServerSideEncryption::Kms { key_id: "k1".into() }));
    assert_eq!(http.backup.as_ref().map(|b| b.bucket.as_str()), Some("failed"));
    let plain = planned(&stream("", ""));
    assert!(matches!(plain.store, StoreSpec::Local { .. }), "the implicit default store");
    assert!(plain.sse.is_none() && plain.schema.is_none() && plain.backup.is_none());
}
