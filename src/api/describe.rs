//! `DescribeDeliveryStream`: the `DeliveryStreamDescription` of a running stream.

use serde_json::{json, Value};

use crate::config::{redact_url_credentials_in, DeliveryStreamConfig};
use crate::names::DESTINATION_ID;
use crate::registry::DeliveryStream;

/// `DeliveryStreamDescription`, with Firehose's defaults filled in (FIREHOSE.md 1.8).
pub fn description(stream: &DeliveryStream) -> Value {
    let definition = stream.definition();
    let config = &definition.config;
    let s3 = config.s3();
    let hints = json!({
        "SizeInMBs": s3.buffer_size_bytes() >> 20,
        "IntervalInSeconds": s3.buffer_interval().as_secs(),
    });
    let encryption = match &s3.encryption_configuration {
        Some(e) => serde_json::to_value(e)
            .unwrap_or_else(|_| json!({"NoEncryptionConfig": "NoEncryption"})),
        None => json!({"NoEncryptionConfig": "NoEncryption"}),
    };
    let role = s3
        .role_arn
        .clone()
        .unwrap_or_else(|| format!("arn:aws:iam::{}:role/hydrant", stream.account()));
    let logging = s3
        .cloud_watch_logging_options
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or_else(|| json!({"Enabled": false}));
    let mut extended = json!({
        "RoleARN": role,
        "BucketARN": s3.bucket_arn,
        "Prefix": s3.prefix.clone().unwrap_or_default(),
        "BufferingHints": hints,
        "CompressionFormat": s3.compression_format.as_firehose_str(),
        "EncryptionConfiguration": encryption,
        "CloudWatchLoggingOptions": logging,
        "S3BackupMode": "Disabled",
        "DataFormatConversionConfiguration": {"Enabled": false},
    });
    let mut reduced = json!({
        "RoleARN": extended["RoleARN"],
        "BucketARN": s3.bucket_arn,
        "Prefix": extended["Prefix"],
        "BufferingHints": extended["BufferingHints"],
        "CompressionFormat": extended["CompressionFormat"],
        "EncryptionConfiguration": extended["EncryptionConfiguration"],
        "CloudWatchLoggingOptions": extended["CloudWatchLoggingOptions"],
    });
    if let Some(error_prefix) = &s3.error_output_prefix {
        extended["ErrorOutputPrefix"] = json!(error_prefix);
        reduced["ErrorOutputPrefix"] = json!(error_prefix);
    }
    for (key, value) in
        [("FileExtension", &s3.file_extension), ("CustomTimeZone", &s3.custom_time_zone)]
    {
        if let Some(v) = value {
            extended[key] = json!(v);
        }
    }
    // The processing, partitioning and conversion blocks as configured.
    let configured = [
        ("ProcessingConfiguration", serde_json::to_value(&s3.processing_configuration)),
        (
            "DynamicPartitioningConfiguration",
            serde_json::to_value(&s3.dynamic_partitioning_configuration),
        ),
        (
            "DataFormatConversionConfiguration",
            serde_json::to_value(&s3.data_format_conversion_configuration),
        ),
    ];
    for (key, value) in configured {
        if let Some(v) = value.ok().filter(|v| !v.is_null()) {
            extended[key] = v;
        }
    }
    let destination = destination_description(config, extended, reduced);
    let mut description = json!({
        "DeliveryStreamName": stream.name,
        "DeliveryStreamARN": stream.arn,
        "DeliveryStreamStatus": if stream.is_deleting() { "DELETING" } else { "ACTIVE" },
        "DeliveryStreamType": match &config.kinesis_stream_source_configuration {
            Some(_) => "KinesisStreamAsSource",
            None => "DirectPut",
        },
        "DeliveryStreamEncryptionConfiguration": encryption_description(config),
        "VersionId": definition.version.to_string(),
        "CreateTimestamp": stream.created_at,
        "Source": match &config.kinesis_stream_source_configuration {
            Some(source) => json!({"KinesisStreamSourceDescription": {
                "KinesisStreamARN": source.kinesis_stream_arn,
                "RoleARN": source.role_arn,
                "DeliveryStartTimestamp": stream.created_at,
            }}),
            None => json!({"DirectPutSourceDescription": {}}),
        },
        "Destinations": [destination],
        "HasMoreDestinations": false,
    });
    if let Some(updated) = definition.last_update {
        description["LastUpdateTimestamp"] = json!(updated);
    }
    description
}

/// `Destinations[0]`: the S3 descriptions, and for other destinations their own block as
/// configured (with Firehose's `...Description` names, secrets left out).
fn destination_description(
    config: &DeliveryStreamConfig,
    extended: Value,
    reduced: Value,
) -> Value {
    let destination = config.destination();
    let descriptor = crate::destination::descriptor(destination.kind());
    let key = descriptor.description_member;
    let Some(mut block) = destination.to_json() else {
        // S3: its block is the S3 side, in both of Firehose's forms.
        return json!({
            "DestinationId": DESTINATION_ID,
            key: extended,
            "S3DestinationDescription": reduced,
        });
    };
    // Firehose never echoes secrets.
    descriptor.hide_secret(&mut block);
    if let Some(map) = block.as_object_mut() {
        map.remove("S3Configuration");
        map.insert("S3DestinationDescription".into(), reduced.clone());
    }
    // Nor a password written inside a URL (`postgres://u:pw@h/db`, `?password=`).
    redact_url_credentials_in(&mut block);
    json!({
        "DestinationId": DESTINATION_ID,
        key: block,
        "S3DestinationDescription": reduced,
    })
}

fn encryption_description(config: &DeliveryStreamConfig) -> Value {
    match &config.delivery_stream_encryption_configuration_input {
        None => json!({"Status": "DISABLED"}),
        Some(input) => {
            let mut d = json!({
                "Status": "ENABLED",
                "KeyType": crate::config::key_type_of(input),
            });
            if let Some(arn) = &input.key_arn {
                d["KeyARN"] = json!(arn);
            }
            d
        }
    }
}
