use super::*;
use crate::config::{Processor, ProcessorParameter};

use ProcessorParameterName as N;
use ProcessorType as T;

fn processor(ty: ProcessorType, params: &[(ProcessorParameterName, &str)]) -> Processor {
    Processor {
        processor_type: ty,
        parameters: params
            .iter()
            .map(|(n, v)| ProcessorParameter { parameter_name: *n, parameter_value: v.to_string() })
            .collect(),
    }
}

fn enabled(processors: Vec<Processor>) -> ProcessingConfig {
    ProcessingConfig { enabled: Some(true), processors }
}

fn issues(config: ProcessingConfig) -> Vec<ConfigIssue> {
    Processors::from_config(&config).expect_err("config should be rejected")
}

fn only_issue(config: ProcessingConfig) -> ConfigIssue {
    let mut all = issues(config);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

const QUERY: &str =
    r#"{customer_id:.customer_id, device:.type.device, day:(.ts/1000|strftime("%Y-%m-%d"))}"#;

#[test]
fn the_firehose_md_dynamic_partitioning_config_parses_from_json() {
    let json = r#"{"Enabled": true, "Processors": [
      {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
      {"Type": "AppendDelimiterToRecord"},
      {"Type": "MetadataExtraction", "Parameters": [
         {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer_id:.customer_id, device:.type.device, day:(.ts/1000|strftime(\"%Y-%m-%d\"))}"},
         {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}"#;
    let config: ProcessingConfig = serde_json::from_str(json).unwrap();
    let p = Processors::from_config(&config).unwrap();
    assert!(p.is_active());
    assert_eq!(p.deaggregator().unwrap().sub_record_type(), SubRecordType::Json);
    assert_eq!(p.delimiter().unwrap().delimiter(), b"\n");
    assert_eq!(p.metadata_extractor().unwrap().query(), QUERY);
    assert!(p.lambda().is_none());
}

#[test]
fn processing_runs_deaggregation_then_extraction_then_the_delimiter() {
    let config = enabled(vec![
        // Listed out of order on purpose: the order is fixed, and the `,` delimiter must not
        // reach the jq query.
        processor(T::AppendDelimiterToRecord, &[(N::Delimiter, ",")]),
        processor(T::MetadataExtraction, &[(N::MetadataExtractionQuery, QUERY)]),
        processor(T::RecordDeAggregation, &[(N::SubRecordType, "JSON")]),
    ]);
    let p = Processors::from_config(&config).unwrap();
    let record = Bytes::from_static(
        br#"{"customer_id":"a","type":{"device":"m"},"ts":1690000000123}
{"customer_id":"b","type":{},"ts":0}  {"customer_id":"c","type":{"device":"t"},"ts":86400000}"#,
    );
    let out = p.process(record);
    assert_eq!(out.len(), 3);
    let first = out[0].as_ref().unwrap();
    assert_eq!(
        &first.data[..],
        br#"{"customer_id":"a","type":{"device":"m"},"ts":1690000000123},"#
    );
    let keys = first.partition_keys.as_ref().unwrap();
    assert_eq!(keys["customer_id"], "a");
    assert_eq!(keys["device"], "m");
    assert_eq!(keys["day"], "2023-07-22");

    let ProcessingError::Extraction { data, error } = out[1].as_ref().unwrap_err() else {
        panic!("{:?}", out[1])
    };
    assert_eq!(&data[..], br#"{"customer_id":"b","type":{},"ts":0}"#);
    assert_eq!(error, &ExtractError::MissingKey { key: "device".into() });
    assert_eq!(out[1].as_ref().unwrap_err().code(), "MetadataExtraction.MissingKey");

    assert_eq!(out[2].as_ref().unwrap().partition_keys.as_ref().unwrap()["day"], "1970-01-02");
}

#[test]
fn a_record_that_fails_deaggregation_is_one_error_for_the_whole_record() {
    let config = enabled(vec![processor(T::RecordDeAggregation, &[(N::SubRecordType, "JSON")])]);
    let p = Processors::from_config(&config).unwrap();
    let out = p.process(Bytes::from_static(br#"{"a":1}oops"#));
    assert_eq!(out.len(), 1);
    let err = out[0].as_ref().unwrap_err();
    assert!(matches!(err, ProcessingError::DeAggregation(_)));
    assert_eq!(err.code(), "RecordDeAggregation.NotAJsonObject");
}

#[test]
fn delimited_deaggregation_with_the_dg_base64_delimiter_and_a_newline_appended() {
    let config = enabled(vec![
        processor(
            T::RecordDeAggregation,
            &[(N::SubRecordType, "DELIMITED"), (N::Delimiter, "IyMjIw==")],
        ),
        processor(T::AppendDelimiterToRecord, &[(N::Delimiter, "\\n")]),
    ]);
    let p = Processors::from_config(&config).unwrap();
    let out: Vec<_> =
        p.process(Bytes::from_static(b"a####b####")).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0].data[..], b"a\n");
    assert_eq!(&out[1].data[..], b"b\n");
    assert_eq!(out[0].partition_keys, None);
}

#[test]
fn without_processors_a_record_passes_through_unchanged() {
    let p = Processors::from_config(&enabled(vec![])).unwrap();
    assert!(!p.is_active());
    let out = p.process(Bytes::from_static(b"raw"));
    assert_eq!(out, vec![Ok(Processed { data: Bytes::from_static(b"raw"), partition_keys: None })]);
}

#[test]
fn a_disabled_configuration_is_validated_but_runs_nothing() {
    let mut config = enabled(vec![processor(T::AppendDelimiterToRecord, &[])]);
    config.enabled = None;
    let p = Processors::from_config(&config).unwrap();
    assert!(!p.is_active());
    assert!(p.delimiter().is_none());
    config.enabled = Some(false);
    config.processors.push(processor(T::RecordDeAggregation, &[(N::SubRecordType, "XML")]));
    let (path, _) = only_issue(config);
    assert_eq!(path, "Processors[1].Parameters[0].ParameterValue");
}

#[test]
fn the_lambda_parameters_are_parsed_with_firehose_defaults() {
    let config = enabled(vec![processor(
        T::Lambda,
        &[(N::LambdaArn, "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST")],
    )]);
    let p = Processors::from_config(&config).unwrap();
    let l = p.lambda().unwrap();
    assert_eq!(l.lambda_arn, "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST");
    assert_eq!(l.number_of_retries, 3);
    assert_eq!(l.buffer_size_mbs, 1.0);
    assert_eq!(l.buffer_size_bytes(), 1_048_576);
    assert_eq!(l.buffer_interval_seconds, 60);
    assert_eq!(l.role_arn, None);
}

#[test]
fn all_lambda_parameters_are_accepted_within_their_ranges() {
    let config = enabled(vec![processor(
        T::Lambda,
        &[
            (N::LambdaArn, "arn:aws:lambda:us-east-1:123456789012:function:f"),
            (N::NumberOfRetries, "0"),
            (N::BufferSizeInMBs, "0.2"),
            (N::BufferIntervalInSeconds, "900"),
            (N::RoleArn, "arn:aws:iam::123456789012:role/r"),
        ],
    )]);
    let l = Processors::from_config(&config).unwrap().lambda().unwrap().clone();
    assert_eq!(l.number_of_retries, 0);
    assert_eq!(l.buffer_size_mbs, 0.2);
    assert_eq!(l.buffer_size_bytes(), 209_715);
    assert_eq!(l.buffer_interval(), std::time::Duration::from_secs(900));
    assert_eq!(l.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/r"));
}

#[test]
fn buffer_size_outside_point_two_to_three_mb_is_rejected() {
    for bad in ["0.1", "3.5", "abc", "-1"] {
        let config = enabled(vec![processor(
            T::Lambda,
            &[(N::LambdaArn, "arn:f"), (N::BufferSizeInMBs, bad)],
        )]);
        let (path, message) = only_issue(config);
        assert_eq!(path, "Processors[0].Parameters[1].ParameterValue");
        assert!(
            message.contains("BufferSizeInMBs must be a number of MB from 0.2 to 3"),
            "{message}"
        );
    }
}

#[test]
fn buffer_interval_above_900_seconds_is_rejected() {
    let config = enabled(vec![processor(
        T::Lambda,
        &[(N::BufferIntervalInSeconds, "901"), (N::LambdaArn, "arn:f")],
    )]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[0].ParameterValue");
    assert!(message.contains("from 0 to 900"), "{message}");
}

#[test]
fn number_of_retries_must_be_a_whole_number_up_to_300() {
    for bad in ["-1", "1.5", "301", "many"] {
        let config = enabled(vec![processor(
            T::Lambda,
            &[(N::LambdaArn, "arn:f"), (N::NumberOfRetries, bad)],
        )]);
        let (path, message) = only_issue(config);
        assert_eq!(path, "Processors[0].Parameters[1].ParameterValue");
        assert!(
            message.contains("NumberOfRetries must be a whole number from 0 to 300"),
            "{message}"
        );
    }
}

#[test]
fn a_lambda_without_lambda_arn_is_rejected() {
    let config = enabled(vec![processor(T::Lambda, &[(N::NumberOfRetries, "2")])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters");
    assert!(message.contains("needs a LambdaArn"), "{message}");
}

/// The cases of the second parser of these parameters that once lived in the transform's
/// config (`LambdaProcessorConfig`), under [`LambdaSpec`]'s rules, which production uses.
#[test]
fn lambda_parameters_follow_lambda_specs_rules_in_every_edge_case() {
    let lambda = |params: &[(ProcessorParameterName, &str)]| {
        Processors::from_config(&enabled(vec![processor(T::Lambda, params)]))
    };
    let only = |params: &[(ProcessorParameterName, &str)]| {
        let mut all = lambda(params).expect_err("should be rejected");
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    };

    // The extremes of each range are accepted; `RoleArn` is kept, the ARN as given.
    let l = lambda(&[
        (N::LambdaArn, " arn:aws:lambda:us-east-1:123456789012:function:f "),
        (N::NumberOfRetries, "300"),
        (N::BufferSizeInMBs, "3"),
        (N::BufferIntervalInSeconds, "0"),
        (N::RoleArn, "arn:aws:iam::123456789012:role/r"),
    ])
    .unwrap()
    .lambda()
    .unwrap()
    .clone();
    assert_eq!(l.lambda_arn, " arn:aws:lambda:us-east-1:123456789012:function:f ");
    assert_eq!((l.number_of_retries, l.buffer_size_mbs, l.buffer_interval_seconds), (300, 3.0, 0));
    assert_eq!(l.buffer_size_bytes(), 3 << 20);
    assert_eq!(l.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/r"));

    // No parameter at all: LambdaArn is required.
    let (path, message) = only(&[]);
    assert_eq!(path, "Processors[0].Parameters");
    assert!(message.contains("needs a LambdaArn"), "{message}");
    // A blank LambdaArn names nothing.
    let (path, message) = only(&[(N::LambdaArn, " ")]);
    assert_eq!(path, "Processors[0].Parameters[0].ParameterValue");
    assert_eq!(message, "LambdaArn must name the function, got a blank value");
    // Out of range values are quoted.
    let (_, message) = only(&[(N::LambdaArn, "f"), (N::BufferSizeInMBs, "3.5")]);
    assert!(message.contains("\"3.5\""), "{message}");
    // A repeated parameter is an error, not "the last one wins".
    let (path, message) = only(&[(N::LambdaArn, "f"), (N::LambdaArn, "g")]);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterName");
    assert_eq!(message, "LambdaArn is already given as Parameters[0]; give it once");
    // A parameter of another processor is named with the Lambda's own list.
    let (path, message) = only(&[(N::LambdaArn, "f"), (N::Delimiter, "Cg==")]);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterName");
    assert_eq!(
        message,
        "Delimiter is not a parameter of Lambda; its parameters are LambdaArn, \
         NumberOfRetries, RoleArn, BufferSizeInMBs, BufferIntervalInSeconds"
    );
}

#[test]
fn a_parameter_of_another_processor_type_is_rejected_with_the_valid_list() {
    let config = enabled(vec![
        processor(T::AppendDelimiterToRecord, &[]),
        processor(
            T::MetadataExtraction,
            &[(N::MetadataExtractionQuery, "{a:.a}"), (N::SubRecordType, "JSON")],
        ),
    ]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[1].Parameters[1].ParameterName");
    assert_eq!(
        message,
        "SubRecordType is not a parameter of MetadataExtraction; its parameters are \
         MetadataExtractionQuery, JsonParsingEngine"
    );
}

#[test]
fn a_parameter_given_twice_is_rejected() {
    let config = enabled(vec![processor(
        T::AppendDelimiterToRecord,
        &[(N::Delimiter, ","), (N::Delimiter, ";")],
    )]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterName");
    assert!(message.contains("already given as Parameters[0]"), "{message}");
}

#[test]
fn a_processor_type_given_twice_is_rejected() {
    let config = enabled(vec![
        processor(T::AppendDelimiterToRecord, &[]),
        processor(T::AppendDelimiterToRecord, &[]),
    ]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[1].Type");
    assert!(message.contains("already Processors[0]"), "{message}");
}

#[test]
fn metadata_extraction_without_a_query_is_rejected() {
    let config =
        enabled(vec![processor(T::MetadataExtraction, &[(N::JsonParsingEngine, "JQ-1.6")])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters");
    assert!(message.contains("needs a MetadataExtractionQuery"), "{message}");
}

#[test]
fn metadata_extraction_without_json_parsing_engine_defaults_to_jq_1_6() {
    let config =
        enabled(vec![processor(T::MetadataExtraction, &[(N::MetadataExtractionQuery, "{a:.a}")])]);
    assert!(Processors::from_config(&config).unwrap().metadata_extractor().is_some());
}

#[test]
fn a_json_parsing_engine_other_than_jq_1_6_is_rejected() {
    for bad in ["JQ-1.7", "jq-1.6", "JMESPATH"] {
        let config = enabled(vec![processor(
            T::MetadataExtraction,
            &[(N::MetadataExtractionQuery, "{a:.a}"), (N::JsonParsingEngine, bad)],
        )]);
        let (path, message) = only_issue(config);
        assert_eq!(path, "Processors[0].Parameters[1].ParameterValue");
        assert!(message.contains("JsonParsingEngine must be JQ-1.6"), "{message}");
    }
}

#[test]
fn a_bad_jq_query_is_rejected_with_the_jq_error() {
    let config = enabled(vec![processor(
        T::MetadataExtraction,
        &[(N::JsonParsingEngine, "JQ-1.6"), (N::MetadataExtractionQuery, "{a: .a | nosuchfn}")],
    )]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterValue");
    assert_eq!(
        message,
        "MetadataExtractionQuery is not a valid jq query: invalid jq query: undefined function \
         `nosuchfn/0`"
    );
    let config =
        enabled(vec![processor(T::MetadataExtraction, &[(N::MetadataExtractionQuery, "{a: .a")])]);
    let (_, message) = only_issue(config);
    assert!(message.contains("syntax error"), "{message}");
}

#[test]
fn deaggregation_without_sub_record_type_is_rejected() {
    let config = enabled(vec![processor(T::RecordDeAggregation, &[])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters");
    assert!(message.contains("needs a SubRecordType parameter, JSON or DELIMITED"), "{message}");
}

#[test]
fn an_unknown_sub_record_type_is_rejected() {
    let config = enabled(vec![processor(T::RecordDeAggregation, &[(N::SubRecordType, "CSV")])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[0].ParameterValue");
    assert_eq!(message, "SubRecordType must be JSON or DELIMITED, got \"CSV\"");
}

#[test]
fn delimited_deaggregation_without_a_delimiter_is_rejected() {
    let config =
        enabled(vec![processor(T::RecordDeAggregation, &[(N::SubRecordType, "DELIMITED")])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters");
    assert!(
        message.contains("needs a Delimiter parameter") && message.contains("IyMjIw=="),
        "{message}"
    );
}

#[test]
fn a_delimiter_that_is_not_base64_is_rejected() {
    let config = enabled(vec![processor(
        T::RecordDeAggregation,
        &[(N::SubRecordType, "DELIMITED"), (N::Delimiter, "####")],
    )]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterValue");
    assert!(message.starts_with("Delimiter must be the delimiter in base64"), "{message}");
}

#[test]
fn a_delimiter_with_json_deaggregation_is_rejected() {
    let config = enabled(vec![processor(
        T::RecordDeAggregation,
        &[(N::SubRecordType, "JSON"), (N::Delimiter, "IyMjIw==")],
    )]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[1].ParameterName");
    assert!(message.contains("only to SubRecordType DELIMITED"), "{message}");
}

#[test]
fn a_bad_append_delimiter_escape_is_rejected() {
    let config = enabled(vec![processor(T::AppendDelimiterToRecord, &[(N::Delimiter, "\\u0001")])]);
    let (path, message) = only_issue(config);
    assert_eq!(path, "Processors[0].Parameters[0].ParameterValue");
    assert!(message.starts_with("Delimiter unsupported escape \\u"), "{message}");
}

#[test]
fn decompression_and_cloudwatch_log_processing_unpack_cloudwatch_logs_records() {
    let config = enabled(vec![
        processor(T::Decompression, &[(N::CompressionFormat, "GZIP")]),
        processor(T::CloudWatchLogProcessing, &[(N::DataMessageExtraction, "true")]),
    ]);
    let processors = Processors::from_config(&config).unwrap();
    assert!(processors.is_active());
    let cw = processors.cloudwatch_logs().unwrap();
    assert_eq!((cw.decompress, cw.processing), (true, Some(true)));
}

#[test]
fn cloudwatch_log_processing_needs_decompression_and_valid_parameters() {
    let config =
        enabled(vec![processor(T::CloudWatchLogProcessing, &[(N::DataMessageExtraction, "yes")])]);
    let all = issues(config);
    assert_eq!(
        all.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["Processors[0].Parameters[0].ParameterValue", "Processors[0].Type"]
    );
    assert!(all[0].1.contains("must be true or false"), "{}", all[0].1);
    assert!(all[1].1.contains("add a Decompression processor"), "{}", all[1].1);
    let (path, message) =
        only_issue(enabled(vec![processor(T::Decompression, &[(N::CompressionFormat, "ZIP")])]));
    assert_eq!(path, "Processors[0].Parameters[0].ParameterValue");
    assert!(message.contains("must be GZIP"), "{message}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let config = enabled(vec![
        processor(
            T::RecordDeAggregation,
            &[(N::SubRecordType, "DELIMITED"), (N::Delimiter, "%%%")],
        ),
        processor(
            T::MetadataExtraction,
            &[(N::MetadataExtractionQuery, "{"), (N::JsonParsingEngine, "JQ")],
        ),
        processor(
            T::Lambda,
            &[(N::LambdaArn, "f"), (N::BufferSizeInMBs, "9"), (N::NumberOfRetries, "x")],
        ),
    ]);
    let mut paths: Vec<String> = issues(config).into_iter().map(|(p, _)| p).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "Processors[0].Parameters[1].ParameterValue",
            "Processors[1].Parameters[0].ParameterValue",
            "Processors[1].Parameters[1].ParameterValue",
            "Processors[2].Parameters[1].ParameterValue",
            "Processors[2].Parameters[2].ParameterValue",
        ]
    );
}

#[test]
fn post_transform_extracts_and_appends_for_records_out_of_the_transform() {
    let config = enabled(vec![
        processor(T::Lambda, &[(N::LambdaArn, "f")]),
        processor(T::MetadataExtraction, &[(N::MetadataExtractionQuery, "{k: .k}")]),
        processor(T::AppendDelimiterToRecord, &[]),
    ]);
    let p = Processors::from_config(&config).unwrap();
    assert_eq!(p.deaggregate(Bytes::from_static(b"{}")).unwrap().len(), 1);
    let out = p.post_transform(Bytes::from_static(br#"{"k":7}"#)).unwrap();
    assert_eq!(&out.data[..], b"{\"k\":7}\n");
    assert_eq!(out.partition_keys.unwrap()["k"], "7");
    let err = p.post_transform(Bytes::from_static(b"plain text")).unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.NonJsonRecord");
}

#[test]
fn processors_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    send_sync::<Processors>();
}
