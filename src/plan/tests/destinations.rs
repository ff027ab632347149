//! The warehouse, search and HTTP endpoint destination blocks.

use super::*;

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

#[test]
fn a_warehouse_backup_bucket_is_checked_like_an_s3_backup() {
    // Its prefixes used to be parsed only when the stream started.
    let backup = "      S3BackupMode: Enabled
      S3BackupConfiguration: { BucketARN: arn:aws:s3:::raw, Prefix: \"src/!{timestamp:yyyy'}/\", ErrorOutputPrefix: err/ }
";
    let yaml =
        WAREHOUSE.replace("      S3Configuration:\n", &format!("{backup}      S3Configuration:\n"));
    assert_issue(
        &yaml,
        "delivery_streams[0].RedshiftDestinationConfiguration.S3BackupConfiguration.Prefix",
        &[],
    );
    parse_ok(&yaml.replace("yyyy'", "yyyy"));
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
