//! Tests of the whole loading pipeline: parse, expand, complete, validate, normalise.

use std::collections::HashMap;
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{load, parse_with_env, validate};
use crate::config::*;

mod http;
mod limits;

const BASE: &str = "/etc/hydrant";

fn env_map(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
    let map: HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned().ok_or(VarError::NotPresent)
}

fn parse_ok(yaml: &str) -> Config {
    match parse_with_env(yaml, Path::new(BASE), env_map(&[])) {
        Ok(c) => c,
        Err(e) => panic!("expected the config to load, got:\n{e}"),
    }
}

fn issues(yaml: &str) -> Vec<Issue> {
    match parse_with_env(yaml, Path::new(BASE), env_map(&[])) {
        Err(ConfigError::Invalid(issues)) => issues,
        Err(other) => panic!("expected ConfigError::Invalid, got {other:?}"),
        Ok(c) => panic!("expected the config to be rejected, it loaded: {c:#?}"),
    }
}

/// Asserts that loading `yaml` reports an issue at exactly `path` whose message contains
/// every one of `needles`.
#[track_caller]
fn assert_issue(yaml: &str, path: &str, needles: &[&str]) {
    let found = issues(yaml);
    let matching =
        found.iter().any(|i| i.path == path && needles.iter().all(|n| i.message.contains(n)));
    assert!(
        matching,
        "expected an issue at {path} containing {needles:?}, got:\n{}",
        found.iter().map(Issue::to_string).collect::<Vec<_>>().join("\n")
    );
}

/// One stream `s` writing to `arn:aws:s3:::raw`, with extra lines inside
/// ExtendedS3DestinationConfiguration (indented 6) and extra stream-level lines (indented 4).
fn stream(ext_lines: &str, stream_lines: &str) -> String {
    format!(
        "delivery_streams:\n  - DeliveryStreamName: s\n    ExtendedS3DestinationConfiguration:\n      BucketARN: arn:aws:s3:::raw\n{}{}",
        indent(ext_lines, 6),
        indent(stream_lines, 4)
    )
}

fn indent(lines: &str, by: usize) -> String {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{}{}\n", " ".repeat(by), l))
        .collect()
}

const EXT: &str = "delivery_streams[0].ExtendedS3DestinationConfiguration";

const FULL_EXAMPLE: &str = r#"
listen: 127.0.0.1:4573
data_dir: ./hydrant-data
region: us-east-1
account_id: "000000000000"
auth: { mode: none }
storage:
  fsync: always
  max_bytes: 10GiB
  segment_bytes: 67108864
object_stores:
  default: { type: local, root: ./hydrant-data/buckets }
  minio:   { type: s3, endpoint: http://127.0.0.1:9000, region: us-east-1, access_key_id: "${MINIO_ROOT_USER}", secret_access_key: "${MINIO_ROOT_PASSWORD}", allow_http: true }
delivery_streams:
  - DeliveryStreamName: clicks
    DeliveryStreamType: DirectPut
    ExtendedS3DestinationConfiguration:
      RoleARN: arn:aws:iam::123456789012:role/fh
      BucketARN: arn:aws:s3:::raw
      Prefix: clicks/
      ErrorOutputPrefix: errors/!{firehose:error-output-type}/
      BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 60 }
      CompressionFormat: GZIP
      EncryptionConfiguration: { NoEncryptionConfig: NoEncryption }
      CloudWatchLoggingOptions: { Enabled: false, LogGroupName: x, LogStreamName: y }
      FileExtension: .json.gz
      CustomTimeZone: Asia/Tokyo
      S3BackupMode: Disabled
      ProcessingConfiguration:
        Enabled: false
        Processors:
          - Type: RecordDeAggregation
            Parameters: [{ ParameterName: SubRecordType, ParameterValue: JSON }]
          - Type: AppendDelimiterToRecord
          - Type: MetadataExtraction
            Parameters:
              - { ParameterName: MetadataExtractionQuery, ParameterValue: "{customer_id: .customer_id}" }
              - { ParameterName: JsonParsingEngine, ParameterValue: JQ-1.6 }
      DynamicPartitioningConfiguration: { Enabled: false, RetryOptions: { DurationInSeconds: 300 } }
      DataFormatConversionConfiguration:
        Enabled: false
        SchemaConfiguration: { DatabaseName: db, TableName: t }
        OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: SNAPPY } } }
      S3BackupConfiguration:
        BucketARN: arn:aws:s3:::backup
        Prefix: backup/
        BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 900 }
        CompressionFormat: GZIP
    Tags: [{ Key: team, Value: data }]
    hydrant: { object_store: minio, shards: 2 }
"#;

fn full_example_env() -> impl Fn(&str) -> Result<String, VarError> {
    env_map(&[("MINIO_ROOT_USER", "minioadmin"), ("MINIO_ROOT_PASSWORD", "p#ss: \"word' {x}")])
}

#[test]
fn the_full_example_parses_with_environment_variables_set() {
    let c = parse_with_env(FULL_EXAMPLE, Path::new(BASE), full_example_env()).unwrap();

    assert_eq!(c.listen, "127.0.0.1:4573".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("/etc/hydrant/hydrant-data"));
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.account_id, "000000000000");
    assert_eq!(c.auth, AuthConfig::None);
    assert_eq!(c.storage.fsync, FsyncSetting::Always);
    assert_eq!(c.storage.max_bytes, Some(10 * 1024 * 1024 * 1024));
    assert_eq!(c.storage.segment_bytes, 64 * 1024 * 1024);
    assert_eq!(
        c.object_stores["default"],
        ObjectStoreConfig::Local { root: PathBuf::from("/etc/hydrant/hydrant-data/buckets") }
    );
    assert_eq!(
        c.object_stores["minio"],
        ObjectStoreConfig::S3 {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            access_key_id: Some("minioadmin".into()),
            secret_access_key: Some("p#ss: \"word' {x}".into()),
            allow_http: true,
            virtual_hosted_style: false,
        }
    );

    let stream = &c.delivery_streams[0];
    assert_eq!(stream.delivery_stream_name, "clicks");
    assert_eq!(stream.delivery_stream_type, Some(DeliveryStreamType::DirectPut));
    assert_eq!(stream.tags, vec![Tag { key: "team".into(), value: Some("data".into()) }]);
    assert_eq!(stream.hydrant.object_store, "minio");
    assert_eq!(stream.hydrant.shards, 2);

    let s3 = stream.s3();
    assert_eq!(s3.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/fh"));
    assert_eq!(s3.bucket(), "raw");
    assert_eq!(s3.prefix.as_deref(), Some("clicks/"));
    assert_eq!(s3.error_output_prefix.as_deref(), Some("errors/!{firehose:error-output-type}/"));
    assert_eq!(s3.buffer_size_bytes(), 5 * 1024 * 1024);
    assert_eq!(s3.buffer_interval(), Duration::from_secs(60));
    assert_eq!(s3.compression_format, CompressionFormat::Gzip);
    assert_eq!(
        s3.encryption_configuration,
        Some(EncryptionConfig {
            no_encryption_config: Some(NoEncryptionConfig::NoEncryption),
            kms_encryption_config: None
        })
    );
    assert_eq!(
        s3.cloud_watch_logging_options.as_ref().unwrap().log_group_name.as_deref(),
        Some("x")
    );
    assert_eq!(s3.object_extension(), ".json.gz");
    assert_eq!(s3.time_zone(), chrono_tz::Asia::Tokyo);
    assert_eq!(s3.s3_backup_mode, S3BackupMode::Disabled);

    let processing = s3.processing_configuration.as_ref().unwrap();
    assert_eq!(processing.enabled, Some(false));
    assert_eq!(processing.processors.len(), 3);
    assert_eq!(processing.processors[0].processor_type, ProcessorType::RecordDeAggregation);
    assert_eq!(
        processing.processors[2].parameters[0],
        ProcessorParameter {
            parameter_name: ProcessorParameterName::MetadataExtractionQuery,
            parameter_value: "{customer_id: .customer_id}".into()
        }
    );
    assert!(processing.processors[1].parameters.is_empty());

    let dp = s3.dynamic_partitioning_configuration.as_ref().unwrap();
    assert_eq!(dp.enabled, Some(false));
    assert_eq!(dp.retry_options.unwrap().duration_in_seconds, Some(300));
    let conversion = s3.data_format_conversion_configuration.as_ref().unwrap();
    assert_eq!(conversion.schema_configuration.as_ref().unwrap().table_name.as_deref(), Some("t"));

    let backup = s3.s3_backup_configuration.as_ref().unwrap();
    assert_eq!(backup.bucket(), "backup");
    assert_eq!(backup.buffer_size_bytes(), 64 * 1024 * 1024);
    assert_eq!(backup.buffer_interval(), Duration::from_secs(900));
}

#[test]
fn the_brief_example_with_dynamic_partitioning_enabled_loads() {
    let yaml = FULL_EXAMPLE.replace(
        "DynamicPartitioningConfiguration: { Enabled: false",
        "DynamicPartitioningConfiguration: { Enabled: true",
    );
    let config = parse_with_env(&yaml, Path::new(BASE), full_example_env()).unwrap();
    assert!(config.delivery_streams[0].s3().dynamic_partitioning_enabled());
}

#[test]
fn the_embedded_default_is_valid_and_matches_its_description() {
    let c = embedded_default();
    assert_eq!(validate(&c), vec![]);
    assert_eq!(c.listen, "127.0.0.1:4573".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("./hydrant-data"));
    assert_eq!(
        c.object_stores[OBJECT_STORE_NAME],
        ObjectStoreConfig::Local { root: PathBuf::from("./hydrant-data/buckets") }
    );
    assert_eq!(c.delivery_streams.len(), 1);
    let s = &c.delivery_streams[0];
    assert_eq!(s.delivery_stream_name, "default");
    assert_eq!(s.hydrant.object_store, "default");
    assert_eq!(s.hydrant.shards, 2);
    assert_eq!(s.s3().bucket(), "hydrant");
    assert_eq!(s.s3().prefix.as_deref(), Some("default/"));
    assert_eq!(s.s3().buffer_size_bytes(), 5 * 1024 * 1024);
    assert_eq!(s.s3().buffer_interval(), Duration::from_secs(5));
    assert_eq!(s.s3().compression_format, CompressionFormat::Uncompressed);
    assert_eq!(s.s3().object_extension(), "");
}

#[test]
fn the_embedded_default_serialized_to_yaml_loads_back_to_the_same_streams() {
    let c = embedded_default();
    let yaml = serde_yaml_ng::to_string(&c).unwrap();
    let back = parse_ok(&yaml);
    assert_eq!(back.delivery_streams, c.delivery_streams);
    assert_eq!(back.listen, c.listen);
    assert_eq!(back.data_dir, PathBuf::from("/etc/hydrant/hydrant-data"));
}

#[test]
fn a_loaded_config_serializes_back_to_yaml_that_loads_to_the_same_config() {
    let c = parse_with_env(FULL_EXAMPLE, Path::new(BASE), full_example_env()).unwrap();
    // Escape `${` so the expanded secrets are not expanded again.
    let yaml = serde_yaml_ng::to_string(&c).unwrap().replace("${", "$${");
    let back = parse_ok(&yaml);
    assert_eq!(back, c);
}

#[test]
fn an_empty_file_gives_the_defaults_and_no_streams() {
    for text in ["", "# nothing here\n", "{}"] {
        let c = parse_ok(text);
        assert_eq!(c.listen.port(), LISTEN_PORT);
        assert_eq!(c.data_dir, PathBuf::from("/etc/hydrant/hydrant-data"));
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.storage.segment_bytes, SEGMENT_BYTES);
        assert_eq!(c.storage.fsync, FsyncSetting::Always);
        assert_eq!(
            c.object_stores["default"],
            ObjectStoreConfig::Local { root: PathBuf::from("/etc/hydrant/hydrant-data/buckets") }
        );
        assert!(c.delivery_streams.is_empty());
    }
}

#[test]
fn stream_defaults_are_firehose_defaults_after_loading() {
    let c = parse_ok(&stream("", ""));
    let s = &c.delivery_streams[0];
    assert_eq!(s.hydrant, HydrantStreamConfig::default());
    assert_eq!(s.hydrant.shards, SHARDS);
    let s3 = s.s3();
    assert_eq!(
        s3.buffering_hints,
        Some(BufferingHints { size_in_mbs: Some(5), interval_in_seconds: Some(300) })
    );
    assert_eq!(s3.buffer_size_bytes(), 5 * 1024 * 1024);
    assert_eq!(s3.buffer_interval(), Duration::from_secs(300));
    assert_eq!(s3.compression_format, CompressionFormat::Uncompressed);
    assert_eq!(s3.s3_backup_mode, S3BackupMode::Disabled);
    assert_eq!(s3.time_zone(), chrono_tz::UTC);
    assert_eq!(s3.role_arn, None);
}

#[test]
fn an_unknown_field_anywhere_is_reported_with_its_path() {
    let cases = [
        ("lisen: 127.0.0.1:1\n".to_owned(), "lisen", "unknown field `lisen`"),
        (
            "storage: { fsync: always, segment_byte: 4096 }\n".to_owned(),
            "storage.segment_byte",
            "unknown field `segment_byte`",
        ),
        (
            "storage: { fsync: { interval_ms: 5, jitter: 1 } }\n".to_owned(),
            "storage.fsync",
            "unknown field `jitter`",
        ),
        (
            stream("BufferingHnts: { SizeInMBs: 5 }", ""),
            "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHnts",
            "unknown field `BufferingHnts`, expected one of `RoleARN`, `BucketARN`",
        ),
        (
            stream("BufferingHints: { SizeInMBs: 5, IntervalInSecs: 60 }", ""),
            "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.IntervalInSecs",
            "unknown field `IntervalInSecs`",
        ),
        (
            stream("", "hydrant: { shard: 3 }"),
            "delivery_streams[0].hydrant.shard",
            "unknown field `shard`",
        ),
        (
            stream("", "Tags: [{ Key: a, Val: b }]"),
            "delivery_streams[0].Tags[0].Val",
            "unknown field `Val`",
        ),
        (
            stream(
                "ProcessingConfiguration: { Processors: [{ Type: Lambda, Parameters: [{ ParameterName: LambdaArn, ParameterValue: x, Extra: 1 }] }] }",
                "",
            ),
            "delivery_streams[0].ExtendedS3DestinationConfiguration.ProcessingConfiguration.Processors[0].Parameters[0].Extra",
            "unknown field `Extra`",
        ),
        (
            stream("S3BackupConfiguration: { BucketARN: arn:aws:s3:::b, FileExtension: .gz }", ""),
            "delivery_streams[0].ExtendedS3DestinationConfiguration.S3BackupConfiguration.FileExtension",
            "unknown field `FileExtension`",
        ),
        (
            // Internally tagged enums report the enclosing entry; the message names the field.
            "object_stores:\n  m: { type: local, root: /x, bogus: 1 }\n".to_owned(),
            "object_stores.m",
            "unknown field `bogus`",
        ),
        (
            "auth: { mode: none, tls: true }\n".to_owned(),
            "auth.tls",
            "unknown field `tls`",
        ),
        (
            "auth: { mode: none, credentials: [] }\n".to_owned(),
            "auth",
            "`credentials` are only used with `mode: sigv4`",
        ),
        (
            "auth: { mode: iam }\n".to_owned(),
            "auth.mode",
            "unknown variant `iam`, expected `none` or `sigv4`",
        ),
    ];
    for (yaml, path, needle) in cases {
        assert_issue(&yaml, path, &[needle]);
    }
}

#[test]
fn wrong_types_and_unknown_enum_values_are_reported_with_their_path() {
    assert_issue(
        &stream("BufferingHints: { SizeInMBs: five, IntervalInSeconds: 60 }", ""),
        &format!("{EXT}.BufferingHints.SizeInMBs"),
        &["invalid type: string \"five\""],
    );
    assert_issue(
        &stream("CompressionFormat: SNAPPY", ""),
        &format!("{EXT}.CompressionFormat"),
        &["unknown variant `SNAPPY`", "`Snappy`"],
    );
    assert_issue(
        &stream("ProcessingConfiguration: { Processors: [{ Type: Lamda }] }", ""),
        &format!("{EXT}.ProcessingConfiguration.Processors[0].Type"),
        &["unknown variant `Lamda`", "`Lambda`"],
    );
    assert_issue(
        &stream(
            "ProcessingConfiguration: { Processors: [{ Type: Lambda, Parameters: [{ ParameterName: FunctionArn, ParameterValue: x }] }] }",
            "",
        ),
        &format!("{EXT}.ProcessingConfiguration.Processors[0].Parameters[0].ParameterName"),
        &["unknown variant `FunctionArn`", "`LambdaArn`"],
    );
    assert_issue(
        &stream("S3BackupMode: enabled", ""),
        &format!("{EXT}.S3BackupMode"),
        &["unknown variant `enabled`"],
    );
    assert_issue(
        &stream("EncryptionConfiguration: { NoEncryptionConfig: None }", ""),
        &format!("{EXT}.EncryptionConfiguration.NoEncryptionConfig"),
        &["unknown variant `None`", "`NoEncryption`"],
    );
    assert_issue(
        "delivery_streams:\n  - DeliveryStreamName: s\n    ExtendedS3DestinationConfiguration: { Prefix: x/ }\n",
        "delivery_streams[0].ExtendedS3DestinationConfiguration",
        &["missing field `BucketARN`"],
    );
    assert_issue("listen: localhost\n", "listen", &["invalid socket address"]);
    assert_issue(
        "object_stores:\n  m: { type: ftp }\n",
        "object_stores.m.type",
        &["unknown variant `ftp`, expected `local` or `s3`"],
    );
    assert_issue("storage: { fsync: sometimes }\n", "storage.fsync", &["`sometimes`", "`always`"]);
    assert_issue(
        "storage: { max_bytes: 10 gigs }\n",
        "storage.max_bytes",
        &["invalid byte size \"10 gigs\""],
    );
}

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

const WAREHOUSE: &str = "delivery_streams:
  - DeliveryStreamName: w
    RedshiftDestinationConfiguration:
      ClusterJDBCURL: jdbc:postgresql://127.0.0.1:5432/db
      CopyCommand: { DataTableName: events, DataTableColumns: \"id,name\", CopyOptions: \"JSON 'auto' GZIP\" }
      Username: loader
      Password: secret-pw
      S3Configuration:
        BucketARN: arn:aws:s3:::staging
        Prefix: stage/
        CompressionFormat: GZIP
        BufferingHints: { SizeInMBs: 8, IntervalInSeconds: 30 }
";

#[test]
fn a_warehouse_destination_loads_and_delivers_through_its_intermediate_bucket() {
    let c = parse_ok(WAREHOUSE);
    let s = &c.delivery_streams[0];
    assert_eq!(s.destination().kind(), DestinationKind::Redshift);
    let view = s.s3();
    assert_eq!(view.bucket_arn, "arn:aws:s3:::staging");
    assert_eq!(view.compression_format, CompressionFormat::Gzip);
    assert_eq!(
        view.buffering_hints,
        Some(BufferingHints { size_in_mbs: Some(8), interval_in_seconds: Some(30) })
    );
    assert!(!format!("{s:?}").contains("secret-pw"), "the password must not be in Debug output");
}

#[test]
fn warehouse_copy_options_postgres_cannot_honour_are_named() {
    assert_issue(
        &WAREHOUSE.replace("JSON 'auto' GZIP", "JSON 'auto' GZIP MAXERROR 10"),
        "delivery_streams[0].RedshiftDestinationConfiguration.CopyCommand.CopyOptions",
        &["MAXERROR"],
    );
    assert_issue(
        &WAREHOUSE.replace("CompressionFormat: GZIP", "CompressionFormat: Snappy"),
        "delivery_streams[0].RedshiftDestinationConfiguration.S3Configuration.CompressionFormat",
        &["UNCOMPRESSED or GZIP"],
    );
    assert_issue(
        &WAREHOUSE.replace("Prefix: stage/", "Prefix: \"stage/!{timestamp:yyyy}/\""),
        "delivery_streams[0].RedshiftDestinationConfiguration.S3Configuration.Prefix",
        &["expressions"],
    );
    assert_issue(
        &WAREHOUSE.replace("jdbc:postgresql://127.0.0.1:5432/db", "mysql://x/db"),
        "delivery_streams[0].RedshiftDestinationConfiguration.ClusterJDBCURL",
        &[],
    );
    assert_issue(
        &WAREHOUSE.replace("jdbc:postgresql://", "jdbc:redshift://"),
        "delivery_streams[0].RedshiftDestinationConfiguration.RoleARN",
        &["required", "aws_iam_role"],
    );
}

const SEARCH: &str = "delivery_streams:
  - DeliveryStreamName: o
    AmazonopensearchserviceDestinationConfiguration:
      ClusterEndpoint: http://127.0.0.1:9200
      IndexName: logs
      IndexRotationPeriod: OneDay
      BufferingHints: { SizeInMBs: 2, IntervalInSeconds: 10 }
      S3Configuration: { BucketARN: arn:aws:s3:::failed }
    hydrant: { basic_auth: { username: admin, password: hunter22 } }
";

#[test]
fn a_search_destination_buffers_by_its_own_hints_and_hides_its_password() {
    let c = parse_ok(SEARCH);
    let s = &c.delivery_streams[0];
    assert_eq!(s.destination().kind(), DestinationKind::OpenSearch);
    assert_eq!(
        s.s3().buffering_hints,
        Some(BufferingHints { size_in_mbs: Some(2), interval_in_seconds: Some(10) })
    );
    assert!(!format!("{s:?}").contains("hunter22"));
    assert_issue(
        &SEARCH.replace("IndexName: logs", "IndexName: Logs"),
        "delivery_streams[0].AmazonopensearchserviceDestinationConfiguration.IndexName",
        &[],
    );
    assert_issue(
        &SEARCH.replace("SizeInMBs: 2", "SizeInMBs: 101"),
        "delivery_streams[0].AmazonopensearchserviceDestinationConfiguration.BufferingHints.SizeInMBs",
        &["1..=100"],
    );
    assert_issue(
        &SEARCH.replace("OneDay", "Daily"),
        "delivery_streams[0].AmazonopensearchserviceDestinationConfiguration.IndexRotationPeriod",
        &[],
    );
}

const HTTP: &str = "delivery_streams:
  - DeliveryStreamName: h
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: { Url: \"http://127.0.0.1:8080/in\", Name: recv, AccessKey: k3y }
      RequestConfiguration: { ContentEncoding: GZIP, CommonAttributes: [{ AttributeName: env, AttributeValue: test }] }
      BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 5 }
      RetryOptions: { DurationInSeconds: 60 }
      S3Configuration: { BucketARN: arn:aws:s3:::failed }
";

#[test]
fn an_http_endpoint_destination_is_checked_field_by_field() {
    let c = parse_ok(HTTP);
    let s = &c.delivery_streams[0];
    assert_eq!(s.destination().kind(), DestinationKind::Http);
    assert!(!format!("{s:?}").contains("k3y"));
    assert_issue(
        &HTTP.replace("http://127.0.0.1:8080/in", "ftp://x/in"),
        "delivery_streams[0].HttpEndpointDestinationConfiguration.EndpointConfiguration.Url",
        &[],
    );
    assert_issue(
        &HTTP.replace("ContentEncoding: GZIP", "ContentEncoding: BROTLI"),
        "delivery_streams[0].HttpEndpointDestinationConfiguration.RequestConfiguration.ContentEncoding",
        &[],
    );
    assert_issue(
        &format!("{HTTP}    hydrant: {{ basic_auth: {{ username: a, password: b }} }}\n"),
        "delivery_streams[0].hydrant.basic_auth",
        &["only used by search"],
    );
}

#[test]
fn bucket_and_role_arns_must_match_the_firehose_patterns() {
    let yaml = stream("", "").replace("arn:aws:s3:::raw", "s3://raw");
    assert_issue(&yaml, &format!("{EXT}.BucketARN"), &["\"s3://raw\"", "arn:aws:s3:::<bucket>"]);
    let yaml = stream("", "").replace("arn:aws:s3:::raw", "arn:aws:s3:::..");
    assert_issue(&yaml, &format!("{EXT}.BucketARN"), &["`..`"]);
    assert_issue(
        &stream("RoleARN: arn:aws:iam::42:role/fh", ""),
        &format!("{EXT}.RoleARN"),
        &["\"arn:aws:iam::42:role/fh\"", "12-digit", "leave RoleARN out"],
    );
    parse_ok(&stream("RoleARN: arn:aws:iam::123456789012:role/service-role/fh", ""));
}

#[test]
fn buffering_hints_out_of_range_are_rejected_with_the_value() {
    let found = issues(&stream("BufferingHints: { SizeInMBs: 0, IntervalInSeconds: 60 }", ""));
    assert_eq!(
        found[0].to_string(),
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs: must be 1..=128, got 0"
    );
    assert_issue(
        &stream("BufferingHints: { SizeInMBs: 129, IntervalInSeconds: 60 }", ""),
        &format!("{EXT}.BufferingHints.SizeInMBs"),
        &["must be 1..=128, got 129"],
    );
    assert_issue(
        &stream("BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 901 }", ""),
        &format!("{EXT}.BufferingHints.IntervalInSeconds"),
        &["must be 0..=900, got 901"],
    );
    parse_ok(&stream("BufferingHints: { SizeInMBs: 128, IntervalInSeconds: 0 }", ""));
    parse_ok(&stream("BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 900 }", ""));
}

#[test]
fn buffering_hints_need_both_values_or_neither() {
    assert_issue(
        &stream("BufferingHints: { SizeInMBs: 5 }", ""),
        &format!("{EXT}.BufferingHints.IntervalInSeconds"),
        &["is required because SizeInMBs is set", "IntervalInSeconds: 300"],
    );
    assert_issue(
        &stream("BufferingHints: { IntervalInSeconds: 60 }", ""),
        &format!("{EXT}.BufferingHints.SizeInMBs"),
        &["is required because IntervalInSeconds is set", "SizeInMBs: 5"],
    );
    let c = parse_ok(&stream("BufferingHints: {}", ""));
    assert_eq!(c.delivery_streams[0].s3().buffer_interval(), Duration::from_secs(300));
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
fn file_extension_must_match_the_firehose_pattern() {
    assert_issue(
        &stream("FileExtension: .JSON", ""),
        &format!("{EXT}.FileExtension"),
        &["\".JSON\"", "e.g. .json.gz"],
    );
    assert_issue(
        &stream("FileExtension: json", ""),
        &format!("{EXT}.FileExtension"),
        &["\"json\""],
    );
    assert_issue(&stream("FileExtension: .", ""), &format!("{EXT}.FileExtension"), &["\".\""]);
    let c = parse_ok(&stream("FileExtension: \"\"\nCompressionFormat: GZIP", ""));
    assert_eq!(c.delivery_streams[0].s3().object_extension(), ".gz");
    parse_ok(&stream("FileExtension: \".log_(1)*!'-x\"", ""));
}

#[test]
fn custom_time_zone_must_be_a_known_iana_name() {
    assert_issue(
        &stream("CustomTimeZone: Mars/Olympus", ""),
        &format!("{EXT}.CustomTimeZone"),
        &["\"Mars/Olympus\"", "IANA", "Asia/Tokyo"],
    );
    assert_issue(
        &stream("CustomTimeZone: asia/tokyo", ""),
        &format!("{EXT}.CustomTimeZone"),
        &["\"asia/tokyo\""],
    );
    assert_issue(
        &stream("CustomTimeZone: Etc/GMT+9", ""),
        &format!("{EXT}.CustomTimeZone"),
        &["\"Etc/GMT+9\"", "Firehose accepts only"],
    );
    let c = parse_ok(&stream("CustomTimeZone: America/New_York", ""));
    assert_eq!(c.delivery_streams[0].s3().time_zone(), chrono_tz::America::New_York);
    let c = parse_ok(&stream("CustomTimeZone: \"\"", ""));
    assert_eq!(c.delivery_streams[0].s3().time_zone(), chrono_tz::UTC);
}

#[test]
fn the_account_id_must_be_twelve_digits() {
    assert_issue("account_id: \"1234\"\n", "account_id", &["\"1234\"", "exactly 12 digits"]);
    assert_issue("account_id: 12345678901a\n", "account_id", &["\"12345678901a\""]);
    assert_eq!(parse_ok("account_id: 123456789012\n").account_id, "123456789012");
    assert_eq!(parse_ok("account_id: \"000000000042\"\n").account_id, "000000000042");
}

#[test]
fn prefix_rules_are_reported_at_the_prefix_paths() {
    assert_issue(
        &stream("Prefix: \"data/!{timestamp:yyyy}/\"", ""),
        &format!("{EXT}.ErrorOutputPrefix"),
        &["is required because Prefix", "data/!{timestamp:yyyy}/"],
    );
    assert_issue(
        &stream("Prefix: \"data/!{partitionKeyFromQuery:id}/\"\nErrorOutputPrefix: \"e/!{firehose:error-output-type}/\"", ""),
        &format!("{EXT}.Prefix"),
        &["needs dynamic partitioning"],
    );
    assert_issue(
        &stream("ErrorOutputPrefix: \"e/!{timestamp:yyyy}/\"", ""),
        &format!("{EXT}.ErrorOutputPrefix"),
        &["not !{firehose:error-output-type}"],
    );
    assert_issue(
        &stream(&format!("Prefix: {}", "p".repeat(1025)), ""),
        &format!("{EXT}.Prefix"),
        &["1025 characters"],
    );
    assert_issue(
        &stream(
            "",
            "S3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw, Prefix: \"!{bogus:x}\" }",
        )
        .replace(
            "    ExtendedS3DestinationConfiguration:\n      BucketARN: arn:aws:s3:::raw\n",
            "",
        ),
        "delivery_streams[0].S3DestinationConfiguration.Prefix",
        &["invalid expression `!{bogus:x}`"],
    );
    parse_ok(&stream(
        "Prefix: \"myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/\"\nErrorOutputPrefix: \"myFirehoseFailures/!{firehose:error-output-type}/\"",
        "",
    ));
}

#[test]
fn an_invalid_timestamp_pattern_is_reported_at_the_prefix_path() {
    // `b` is no pattern letter (Java: "Unknown pattern letter: b"); such a stream used to pass
    // validation and fail only when it started.
    assert_issue(
        &stream(
            "Prefix: \"data/!{timestamp:yyyy-bb}/\"\nErrorOutputPrefix: \"e/!{firehose:error-output-type}/\"",
            "",
        ),
        &format!("{EXT}.Prefix"),
        &["invalid expression `!{timestamp:yyyy-bb}`", "unknown pattern letter 'b'"],
    );
    assert_issue(
        &stream("ErrorOutputPrefix: \"e/!{firehose:error-output-type}/!{timestamp:ww}/\"", ""),
        &format!("{EXT}.ErrorOutputPrefix"),
        &["invalid expression `!{timestamp:ww}`", "'w'", "not supported"],
    );
    assert_issue(
        &WAREHOUSE.replace("Prefix: stage/", "Prefix: \"stage/!{timestamp:yyyy'}/\""),
        "delivery_streams[0].RedshiftDestinationConfiguration.S3Configuration.Prefix",
        &["invalid expression `!{timestamp:yyyy'}`", "not closed"],
    );
}

#[test]
fn storage_settings_are_checked() {
    assert_issue(
        "storage: { segment_bytes: 100 }\n",
        "storage.segment_bytes",
        &["at least 4096 bytes, got 100"],
    );
    assert_issue(
        "storage: { fsync: { interval_ms: 0 } }\n",
        "storage.fsync.interval_ms",
        &["must be 1..=60000, got 0"],
    );
    assert_issue(
        "storage: { max_bytes: 1MiB, segment_bytes: 64MiB }\n",
        "storage.max_bytes",
        &["1048576 bytes is less than one log segment"],
    );
    let c = parse_ok(
        "storage: { fsync: { interval_ms: 50 }, max_bytes: \"512 MiB\", segment_bytes: 1MiB }\n",
    );
    assert_eq!(c.storage.fsync, FsyncSetting::Interval { interval_ms: 50 });
    assert_eq!(c.storage.max_bytes, Some(512 << 20));
    assert_eq!(c.storage.segment_bytes, 1 << 20);
}

#[test]
fn byte_sizes_accept_plain_numbers_and_units() {
    assert_eq!(parse_byte_size("4096"), Ok(4096));
    assert_eq!(parse_byte_size("4096B"), Ok(4096));
    assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
    assert_eq!(parse_byte_size("512 MiB"), Ok(512 << 20));
    assert_eq!(parse_byte_size("64kib"), Ok(64 << 10));
    assert_eq!(parse_byte_size("1TiB"), Ok(1 << 40));
    assert_eq!(parse_byte_size("500MB"), Ok(500_000_000));
    assert_eq!(parse_byte_size("2GB"), Ok(2_000_000_000));
    assert!(parse_byte_size("").is_err());
    assert!(parse_byte_size("GiB").is_err());
    assert!(parse_byte_size("1.5GiB").is_err());
    assert!(parse_byte_size("-1").is_err());
    assert!(parse_byte_size("99999999999TiB").unwrap_err().contains("too large"));
}

#[test]
fn object_store_settings_are_checked() {
    assert_issue(
        "object_stores:\n  minio: { type: s3, endpoint: \"http://127.0.0.1:9000\" }\n",
        "object_stores.minio.endpoint",
        &["plain http", "allow_http: true"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, endpoint: \"127.0.0.1:9000\" }\n",
        "object_stores.minio.endpoint",
        &["\"127.0.0.1:9000\"", "http://"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, access_key_id: k }\n",
        "object_stores.minio.secret_access_key",
        &["is missing while access_key_id is set"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, access_key_id: \"\", secret_access_key: s }\n",
        "object_stores.minio.access_key_id",
        &["is empty"],
    );
    assert_issue(
        "object_stores:\n  l: { type: local, root: \"\" }\n",
        "object_stores.l.root",
        &["is empty"],
    );
    parse_ok("object_stores:\n  aws: { type: s3, region: eu-west-1 }\n  r2: { type: s3, endpoint: \"https://x.r2.example\", virtual_hosted_style: true }\n");
}

#[test]
fn other_firehose_rules_are_checked() {
    assert_issue(
        &stream("EncryptionConfiguration: { NoEncryptionConfig: NoEncryption, KMSEncryptionConfig: { AWSKMSKeyARN: \"arn:aws:kms:us-east-1:123456789012:key/k\" } }", ""),
        &format!("{EXT}.EncryptionConfiguration"),
        &["has both"],
    );
    assert_issue(
        &stream("ProcessingConfiguration: { Enabled: false, Processors: [{ Type: Lambda, Parameters: [{ ParameterName: LambdaArn, ParameterValue: \"  \" }] }] }", ""),
        &format!("{EXT}.ProcessingConfiguration.Processors[0].Parameters[0].ParameterValue"),
        &["not blank", "LambdaArn"],
    );
    assert_issue(
        &stream("DynamicPartitioningConfiguration: { Enabled: false, RetryOptions: { DurationInSeconds: 7201 } }", ""),
        &format!("{EXT}.DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds"),
        &["must be 0..=7200, got 7201"],
    );
    assert_issue(
        &stream("S3BackupMode: Enabled", ""),
        &format!("{EXT}.S3BackupConfiguration"),
        &["is required because S3BackupMode is Enabled"],
    );
    assert_issue(
        &stream("S3BackupConfiguration: { BucketARN: nope }", ""),
        &format!("{EXT}.S3BackupConfiguration.BucketARN"),
        &["\"nope\""],
    );
    assert_issue(
        &stream("DataFormatConversionConfiguration: { Enabled: \"no\" }", ""),
        &format!("{EXT}.DataFormatConversionConfiguration.Enabled"),
        &["expected a boolean"],
    );
    assert_issue("region: \"us east\"\n", "region", &["\"us east\""]);
    assert_issue("data_dir: \"\"\n", "data_dir", &["is empty"]);
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

    let not_yet = [(
        stream("", "DeliveryStreamType: KinesisStreamAsSource"),
        "delivery_streams[0].DeliveryStreamType".to_owned(),
    )];
    for (yaml, path) in not_yet {
        let found = issues(&yaml);
        assert_eq!(found.len(), 1, "{yaml}\n{found:#?}");
        assert_eq!(found[0].path, path);
        assert!(found[0].message.contains("not supported"), "{}", found[0].message);
    }

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

#[test]
fn environment_references_are_expanded_in_string_values() {
    let yaml = "object_stores:\n  minio: { type: s3, endpoint: \"http://${HOST}:9000\", allow_http: true, access_key_id: \"${USER}\", secret_access_key: \"${PASS}\" }\n";
    let c = parse_with_env(
        yaml,
        Path::new(BASE),
        env_map(&[("HOST", "minio.local"), ("USER", "u"), ("PASS", "#: \"x' - [y] {z} &a *b")]),
    )
    .unwrap();
    match &c.object_stores["minio"] {
        ObjectStoreConfig::S3 { endpoint, access_key_id, secret_access_key, .. } => {
            assert_eq!(endpoint.as_deref(), Some("http://minio.local:9000"));
            assert_eq!(access_key_id.as_deref(), Some("u"));
            assert_eq!(secret_access_key.as_deref(), Some("#: \"x' - [y] {z} &a *b"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_environment_variable_is_an_error_naming_it_and_the_field() {
    let err = parse_with_env(FULL_EXAMPLE, Path::new(BASE), env_map(&[("MINIO_ROOT_USER", "u")]))
        .unwrap_err();
    match &err {
        ConfigError::Env { var, path, .. } => {
            assert_eq!(var, "MINIO_ROOT_PASSWORD");
            assert_eq!(path, "object_stores.minio.secret_access_key");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("object_stores.minio.secret_access_key: environment variable MINIO_ROOT_PASSWORD is not set"));
}

#[test]
fn a_double_dollar_brace_keeps_a_literal_dollar_brace() {
    let c = parse_ok(&stream("Prefix: \"p/$${NOT_A_VAR}/$$5/$/\"", ""));
    assert_eq!(c.delivery_streams[0].s3().prefix.as_deref(), Some("p/${NOT_A_VAR}/$$5/$/"));
}

#[test]
fn keys_are_not_expanded() {
    let err =
        parse_with_env("\"${X}\": 1\n", Path::new(BASE), env_map(&[("X", "listen")])).unwrap_err();
    assert_issue_in(&err, "${X}", "unknown field `${X}`");
}

fn assert_issue_in(err: &ConfigError, path: &str, needle: &str) {
    assert!(err.issues().iter().any(|i| i.path == path && i.message.contains(needle)), "{err}");
}

#[test]
fn the_deprecated_s3_destination_configuration_is_normalised_to_the_extended_form() {
    let yaml = r#"
delivery_streams:
  - DeliveryStreamName: legacy
    S3DestinationConfiguration:
      RoleARN: arn:aws:iam::123456789012:role/fh
      BucketARN: arn:aws:s3:::old-bucket
      Prefix: legacy/
      ErrorOutputPrefix: legacy-errors/
      BufferingHints: { SizeInMBs: 10, IntervalInSeconds: 120 }
      CompressionFormat: GZIP
      EncryptionConfiguration: { NoEncryptionConfig: NoEncryption }
      CloudWatchLoggingOptions: { Enabled: false }
"#;
    let c = parse_ok(yaml);
    let s = &c.delivery_streams[0];
    assert_eq!(s.s3_destination_configuration, None);
    let ext = s.extended_s3_destination_configuration.as_ref().unwrap();
    assert_eq!(ext, s.s3());
    assert_eq!(ext.bucket(), "old-bucket");
    assert_eq!(ext.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/fh"));
    assert_eq!(ext.prefix.as_deref(), Some("legacy/"));
    assert_eq!(ext.error_output_prefix.as_deref(), Some("legacy-errors/"));
    assert_eq!(ext.buffer_size_bytes(), 10 << 20);
    assert_eq!(ext.buffer_interval(), Duration::from_secs(120));
    assert_eq!(ext.compression_format, CompressionFormat::Gzip);
    assert_eq!(ext.object_extension(), ".gz");
    assert_eq!(ext.s3_backup_mode, S3BackupMode::Disabled);
    assert_eq!(ext.processing_configuration, None);
    assert_eq!(
        ext.cloud_watch_logging_options,
        Some(CloudWatchLoggingOptions {
            enabled: Some(false),
            log_group_name: None,
            log_stream_name: None
        })
    );

    // Problems in the deprecated block are reported under its own name.
    let bad = yaml.replace("SizeInMBs: 10", "SizeInMBs: 200");
    assert_issue(
        &bad,
        "delivery_streams[0].S3DestinationConfiguration.BufferingHints.SizeInMBs",
        &["got 200"],
    );
    // ... and extended-only members are not part of the deprecated form.
    let bad = yaml.replace("      Prefix: legacy/\n", "      FileExtension: .gz\n");
    assert_issue(
        &bad,
        "delivery_streams[0].S3DestinationConfiguration.FileExtension",
        &["unknown field `FileExtension`"],
    );
}

#[test]
fn relative_paths_are_resolved_against_the_config_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir(&conf_dir).unwrap();
    let file = conf_dir.join("hydrant.yaml");
    std::fs::write(
        &file,
        "data_dir: ./state\nobject_stores:\n  archive: { type: local, root: ../archive }\n  abs: { type: local, root: /srv/buckets }\n",
    )
    .unwrap();
    let c = load(&file).unwrap();
    assert_eq!(c.data_dir, conf_dir.join("state"));
    assert_eq!(
        c.object_stores["default"],
        ObjectStoreConfig::Local { root: conf_dir.join("state").join("buckets") }
    );
    assert_eq!(
        c.object_stores["archive"],
        ObjectStoreConfig::Local { root: conf_dir.join("..").join("archive") }
    );
    assert_eq!(
        c.object_stores["abs"],
        ObjectStoreConfig::Local { root: PathBuf::from("/srv/buckets") }
    );

    let c = parse_ok(
        "data_dir: /var/lib/hydrant\nobject_stores:\n  default: { type: local, root: b }\n",
    );
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/hydrant"));
    assert_eq!(
        c.object_stores["default"],
        ObjectStoreConfig::Local { root: PathBuf::from("/etc/hydrant/b") }
    );
}

#[test]
fn load_reads_environment_variables_from_the_process() {
    // Use a variable the process already has, so the test needs no `set_var` (unsafe in
    // edition 2024, racy with parallel tests).
    let (name, value) = std::env::vars()
        .find(|(k, _)| {
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
        })
        .expect("the test process has at least one environment variable");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hydrant.yaml");
    let yaml = |var: &str| {
        stream(&format!("CloudWatchLoggingOptions: {{ LogGroupName: \"${{{var}}}\" }}"), "")
    };
    std::fs::write(&file, yaml(&name)).unwrap();
    let c = load(&file).unwrap();
    let options = c.delivery_streams[0].s3().cloud_watch_logging_options.clone();
    assert_eq!(options.unwrap().log_group_name, Some(value));

    std::fs::write(&file, yaml("HYDRANT_CONFIG_TEST_SURELY_UNSET_8D1F")).unwrap();
    match load(&file).unwrap_err() {
        ConfigError::Env { var, path, .. } => {
            assert_eq!(var, "HYDRANT_CONFIG_TEST_SURELY_UNSET_8D1F");
            assert_eq!(path, format!("{EXT}.CloudWatchLoggingOptions.LogGroupName"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_file() {
    let err = load(Path::new("/nonexistent/hydrant.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/hydrant.yaml"), "{err}");
}

#[test]
fn a_yaml_syntax_error_carries_line_and_column() {
    let err = parse_ok_err("listen: 127.0.0.1:4573\ndelivery_streams: [\n  {a: b\n");
    match &err {
        ConfigError::Yaml { line, column, .. } => {
            assert!(line.is_some() && column.is_some(), "{err:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("line"), "{err}");
    let err = parse_ok_err("a: 1\na: 2\n");
    assert!(matches!(err, ConfigError::Yaml { .. }), "{err:?}");
}

fn parse_ok_err(yaml: &str) -> ConfigError {
    parse_with_env(yaml, Path::new(BASE), env_map(&[])).unwrap_err()
}

#[test]
fn compression_formats_have_firehose_names_and_extensions() {
    let all = [
        (CompressionFormat::Uncompressed, "UNCOMPRESSED", ""),
        (CompressionFormat::Gzip, "GZIP", ".gz"),
        (CompressionFormat::Zip, "ZIP", ".zip"),
        (CompressionFormat::Snappy, "Snappy", ".snappy"),
        (CompressionFormat::HadoopSnappy, "HADOOP_SNAPPY", ".snappy"),
        (CompressionFormat::Zstd, "ZSTD", ".zst"),
    ];
    for (format, name, ext) in all {
        assert_eq!(format.as_firehose_str(), name);
        assert_eq!(format.extension(), ext);
        assert_eq!(serde_json::to_string(&format).unwrap(), format!("\"{name}\""));
        let back: CompressionFormat = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, format);
    }
    assert!(serde_json::from_str::<CompressionFormat>("\"SNAPPY\"").is_err());
    assert_eq!(CompressionFormat::default(), CompressionFormat::Uncompressed);
}

#[test]
fn stream_blocks_deserialize_from_firehose_api_json() {
    // The body `aws firehose create-delivery-stream` sends (FIREHOSE.md 1.7).
    let json = r#"{"DeliveryStreamName": "clicks", "DeliveryStreamType": "DirectPut",
     "ExtendedS3DestinationConfiguration": {
       "RoleARN": "arn:aws:iam::123456789012:role/fh", "BucketARN": "arn:aws:s3:::raw",
       "Prefix": "clicks/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
       "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
       "CompressionFormat": "GZIP"}}"#;
    let mut s: DeliveryStreamConfig = serde_json::from_str(json).unwrap();
    s.normalize();
    assert_eq!(s.s3().buffer_size_bytes(), 64 << 20);
    assert_eq!(s.hydrant, HydrantStreamConfig::default());
    let mut config = embedded_default();
    config.delivery_streams.push(s);
    assert_eq!(validate(&config), vec![]);
}

#[test]
fn debug_output_redacts_secrets() {
    let c = parse_with_env(FULL_EXAMPLE, Path::new(BASE), full_example_env()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("p#ss"), "{debug}");
    assert!(debug.contains("<redacted>"));
    assert!(debug.contains("minioadmin"));
    let auth = AuthConfig::Sigv4 {
        credentials: vec![Sigv4Credential {
            access_key_id: "AK".into(),
            secret_access_key: "SECRET".into(),
            streams: Some(vec!["clicks".into()]),
            actions: None,
        }],
    };
    assert!(!format!("{auth:?}").contains("SECRET"));
}

#[test]
fn server_side_encryption_needs_an_s3_store() {
    let kms = stream(
        "EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: \"arn:aws:kms:us-east-1:123456789012:key/k\" } }",
        "",
    );
    let found = issues(&kms);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "delivery_streams[0].hydrant.object_store");
    assert!(found[0].message.contains("needs an s3 object store"), "{}", found[0].message);
}

#[test]
fn log_encryption_at_rest_needs_hydrant_keys() {
    let found = issues(&stream(
        "",
        "DeliveryStreamEncryptionConfigurationInput: { KeyType: CUSTOMER_MANAGED_CMK }",
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "delivery_streams[0].DeliveryStreamEncryptionConfigurationInput");
}

#[test]
fn sigv4_credentials_load_with_secrets_from_the_environment_and_optional_allow_lists() {
    let yaml = r#"
auth:
  mode: sigv4
  credentials:
    - { access_key_id: AKIAPRODUCER, secret_access_key: "${PRODUCER_SECRET}", streams: [clicks, orders] }
    - { access_key_id: AKIAADMIN, secret_access_key: "${ADMIN_SECRET}" }
"#;
    let env = env_map(&[("PRODUCER_SECRET", "p-secret"), ("ADMIN_SECRET", "a-secret")]);
    let c = parse_with_env(yaml, Path::new(BASE), env).unwrap();
    let AuthConfig::Sigv4 { credentials } = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(credentials[0].secret_access_key, "p-secret");
    assert_eq!(credentials[0].streams, Some(vec!["clicks".to_owned(), "orders".to_owned()]));
    assert_eq!(credentials[1].streams, None);
    let debug = format!("{c:?}");
    assert!(!debug.contains("p-secret") && !debug.contains("a-secret"), "{debug}");
}

#[test]
fn bad_sigv4_credentials_are_reported_with_their_path() {
    let cred = |body: &str| format!("auth:\n  mode: sigv4\n  credentials:\n{body}");
    assert_issue("auth: { mode: sigv4 }\n", "auth.credentials", &["at least one access key"]);
    assert_issue(
        &cred("    - { access_key_id: \"AK/ID\", secret_access_key: s }\n"),
        "auth.credentials[0].access_key_id",
        &["cannot appear in a SigV4 Credential"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s }\n    - { access_key_id: A, secret_access_key: t }\n"),
        "auth.credentials[1].access_key_id",
        &["already the access key of auth.credentials[0]"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: \"\" }\n"),
        "auth.credentials[0].secret_access_key",
        &["is empty"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, streams: [] }\n"),
        "auth.credentials[0].streams",
        &["remove `streams` to allow every stream"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, streams: [ok, \"bad name\"] }\n"),
        "auth.credentials[0].streams[1]",
        &["\"bad name\" is not a delivery stream name"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, stream: [x] }\n"),
        "auth.credentials[0].stream",
        &["unknown field `stream`"],
    );
}

#[test]
fn tls_paths_are_relative_to_the_config_file_and_their_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(
        dir.path().join("certs/server.pem"),
        include_str!("../../testdata/tls/cert.pem"),
    )
    .unwrap();
    std::fs::write(dir.path().join("certs/server.key"), include_str!("../../testdata/tls/key.pem"))
        .unwrap();
    let yaml = "tls: { cert: certs/server.pem, key: ./certs/server.key }\n";
    let c = parse_with_env(yaml, dir.path(), env_map(&[])).unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, dir.path().join("certs/server.pem"));
    assert_eq!(tls.key, dir.path().join("certs/server.key"));

    let err = parse_with_env(
        "tls: { cert: certs/nope.pem, key: certs/server.key }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.cert", "cannot read");
    let err = parse_with_env(
        "tls: { cert: certs/server.key, key: certs/server.key }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.cert", "holds no certificate");
    let err = parse_with_env(
        "tls: { cert: certs/server.pem, key: certs/server.pem }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.key", "holds no private key");
    assert_issue("tls: { cert: a.pem }\n", "tls", &["missing field `key`"]);
    assert_issue(
        "tls: { cert: a.pem, key: b.pem, ca: c.pem }\n",
        "tls.ca",
        &["unknown field `ca`"],
    );
}

#[test]
fn a_transform_sandbox_out_of_range_is_refused_with_its_path() {
    assert_issue(
        &stream("", "hydrant: { transform: { memory_mib: 0 } }"),
        "delivery_streams[0].hydrant.transform.memory_mib",
        &["must be 1 to 4096, got 0"],
    );
    assert_issue(
        &stream("", "hydrant: { transform: { memory_mib: 8192 } }"),
        "delivery_streams[0].hydrant.transform.memory_mib",
        &["got 8192"],
    );
    assert_issue(
        &stream("", "hydrant: { transform: { fuel: 0 } }"),
        "delivery_streams[0].hydrant.transform.fuel",
        &["at least 1"],
    );
}
