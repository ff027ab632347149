//! The S3 blocks: ARNs, buffering hints, file extension, time zone, prefixes and the other
//! Firehose rules.

use super::*;

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
