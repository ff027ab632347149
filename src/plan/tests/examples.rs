//! The examples of the docs and the built-in default load; loading round-trips through YAML;
//! what an empty file and a minimal stream get by default.

use super::*;

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
        ObjectStoreConfig::S3(S3StoreConfig {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            access_key_id: Some("minioadmin".into()),
            secret_access_key: Some("p#ss: \"word' {x}".into()),
            allow_http: true,
            virtual_hosted_style: false,
        })
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
