//! Preparing a pipeline from its stream's plan.

use std::path::Path;

use super::{BuildContext, Pipeline};
use crate::plan::tests::PARQUET_CONVERSION;
use crate::registry::Owner;

/// A stream in `dir` that converts to Parquet with the columns of `schema_file` and backs up
/// its source records.
fn parquet_stream(dir: &Path, schema_file: &Path) -> String {
    format!(
        "data_dir: {}
delivery_streams:
  - DeliveryStreamName: p
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
{PARQUET_CONVERSION}      S3BackupMode: Enabled
      S3BackupConfiguration: {{ BucketARN: arn:aws:s3:::backup, Prefix: src/ }}
    hydrant: {{ schema: {{ file: {} }} }}
",
        dir.join("data").display(),
        schema_file.display()
    )
}

#[test]
fn a_pipeline_is_prepared_from_its_plan_without_reading_the_schema_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("events.yaml");
    std::fs::write(&schema, "columns: [{name: id, type: bigint}]").unwrap();
    let server = crate::plan::parse(&parquet_stream(dir.path(), &schema), dir.path()).unwrap();
    // The plan read it; building the pipeline used to read it again (and fail here).
    std::fs::remove_file(&schema).unwrap();
    let (stream, plan) = server.streams().next().unwrap();
    let build = BuildContext::for_tests();
    let pipeline = match Pipeline::prepare(server.config(), stream, plan, Owner::ConfigFile, &build)
    {
        Ok(pipeline) => pipeline,
        Err(e) => panic!("expected a pipeline, got: {e}"),
    };
    assert_eq!(pipeline.codec.extension(), ".parquet");
    let backup = pipeline.backup.as_ref().expect("the backup the plan asks for");
    assert_eq!(backup.policy.max_bytes, 5 << 20, "Firehose's default buffer");
}

#[test]
fn a_pipeline_encrypts_with_the_key_ring_its_plan_loaded_without_reading_the_key_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("objects.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let yaml = format!(
        "data_dir: {}
delivery_streams:
  - DeliveryStreamName: e
    ExtendedS3DestinationConfiguration: {{ BucketARN: arn:aws:s3:::raw, CompressionFormat: GZIP }}
    hydrant: {{ encryption: {{ active_key: k1, keys: [{{ id: k1, file: {} }}] }} }}
",
        dir.path().join("data").display(),
        key.display()
    );
    let server = crate::plan::parse(&yaml, dir.path()).unwrap();
    // The plan loaded the ring; building the pipeline used to load it again (and fail here).
    std::fs::remove_file(&key).unwrap();
    let (stream, plan) = server.streams().next().unwrap();
    assert!(plan.object_keys.is_some(), "the plan holds the loaded ring");
    let build = BuildContext::for_tests();
    let pipeline = match Pipeline::prepare(server.config(), stream, plan, Owner::ConfigFile, &build)
    {
        Ok(pipeline) => pipeline,
        Err(e) => panic!("expected a pipeline, got: {e}"),
    };
    // Encrypted objects carry no Content-Encoding (a client must not gunzip ciphertext).
    assert_eq!(pipeline.codec.content_encoding(), None);
    let sealed = pipeline.codec.seal(bytes::Bytes::from_static(b"record\n")).unwrap();
    assert_ne!(&sealed[..], b"record\n", "objects are encrypted with the plan's ring");
}
