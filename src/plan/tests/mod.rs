//! Tests of the whole loading pipeline (parse, expand, complete, validate, normalise), one
//! file per concern, and the helpers they share.

use std::collections::HashMap;
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::validate;
use crate::config::*;

mod core_block;
mod destinations;
mod encryption;
mod examples;
mod http;
mod limits;
mod plans;
mod processing;
mod reading;
mod s3;
mod server;
mod stream;

const BASE: &str = "/etc/hydrant";

/// An enabled conversion to Parquet: lines of `ExtendedS3DestinationConfiguration`
/// (indented 6); the stream's `hydrant.schema` gives the columns.
pub(crate) const PARQUET_CONVERSION: &str = "      DataFormatConversionConfiguration:
        Enabled: true
        SchemaConfiguration: { DatabaseName: db, TableName: t }
        InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } }
        OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } }
";

/// [`super::load`]'s checked configuration (these tests look at the configuration).
fn load(path: &Path) -> Result<Config, ConfigError> {
    super::load(path).map(super::ServerPlan::into_config)
}

/// [`super::parse`]'s checked configuration.
fn parse(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    super::parse(yaml, base_dir).map(super::ServerPlan::into_config)
}

/// [`super::parse_with_env`]'s checked configuration.
fn parse_with_env(
    yaml: &str,
    base_dir: &Path,
    env: impl Fn(&str) -> Result<String, VarError>,
) -> Result<Config, ConfigError> {
    super::parse_with_env(yaml, base_dir, env).map(super::ServerPlan::into_config)
}

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

/// Asserts that `err` has an issue at exactly `path` whose message contains `needle`.
fn assert_issue_in(err: &ConfigError, path: &str, needle: &str) {
    assert!(err.issues().iter().any(|i| i.path == path && i.message.contains(needle)), "{err}");
}
