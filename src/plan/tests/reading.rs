//! Reading the file: unknown fields and wrong types named by path, `${VAR}` expansion,
//! normalisation, relative paths, I/O and YAML errors, Firehose's JSON shapes, redaction.

use super::*;

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
fn environment_references_are_expanded_in_string_values() {
    let yaml = "object_stores:\n  minio: { type: s3, endpoint: \"http://${HOST}:9000\", allow_http: true, access_key_id: \"${USER}\", secret_access_key: \"${PASS}\" }\n";
    let c = parse_with_env(
        yaml,
        Path::new(BASE),
        env_map(&[("HOST", "minio.local"), ("USER", "u"), ("PASS", "#: \"x' - [y] {z} &a *b")]),
    )
    .unwrap();
    match &c.object_stores["minio"] {
        ObjectStoreConfig::S3(S3StoreConfig {
            endpoint, access_key_id, secret_access_key, ..
        }) => {
            assert_eq!(endpoint.as_deref(), Some("http://minio.local:9000"));
            assert_eq!(access_key_id.as_deref(), Some("u"));
            assert_eq!(
                secret_access_key.as_ref().map(Secret::expose),
                Some("#: \"x' - [y] {z} &a *b")
            );
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

fn parse_ok_err(yaml: &str) -> ConfigError {
    parse_with_env(yaml, Path::new(BASE), env_map(&[])).unwrap_err()
}
