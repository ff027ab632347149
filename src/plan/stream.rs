//! One delivery stream: its name, its one destination, its S3 blocks, tags, object store and
//! shards; and what this Hydrant version does not support yet.

use hydrant_destinations::s3::StoreSpec;

use crate::config::{Config, DeliveryStreamConfig, DeliveryStreamType, Issue, ObjectStoreConfig};
use crate::destination::DestinationPlan;
use crate::naming::CheckedPrefixes;

use super::backup::{check_backup, BackupPlan};
use super::s3::{check_extended_s3, check_s3_destination};
use super::tags::check_tags;

/// Range of `hydrant.retention_hours` (up to a year, as Kinesis).
pub const RETENTION_HOURS_RANGE: std::ops::RangeInclusive<u32> = 0..=8760;

/// Range of `hydrant.shards`.
pub const SHARDS_RANGE: std::ops::RangeInclusive<u32> = 1..=64;

/// What checking a stream's destination and S3 blocks plans.
pub(super) struct CheckedStream {
    pub destination: Box<dyn DestinationPlan>,
    /// The prefixes of the S3 side the pipeline writes to, parsed.
    pub prefixes: CheckedPrefixes,
    /// Where its buckets are (`hydrant.object_store`).
    pub store: StoreSpec,
    pub backup: Option<BackupPlan>,
}

/// Checks `stream` at `path`: returns its plan's destination, prefixes, store and backup, when
/// they are valid.
pub(super) fn check_stream(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<CheckedStream> {
    let name = &stream.delivery_stream_name;
    let name_len = name.chars().count();
    if !(1..=64).contains(&name_len)
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        issues.push(Issue::new(
            format!("{path}.DeliveryStreamName"),
            format!(
                "{name:?} is not a valid stream name; use 1 to 64 characters from a-z A-Z 0-9 \
                 _ . -"
            ),
        ));
    }

    match stream.destination_count() {
        0 => issues.push(Issue::new(
            path,
            "has no destination; add an ExtendedS3DestinationConfiguration block with at \
             least a BucketARN (or a RedshiftDestinationConfiguration, \
             AmazonopensearchserviceDestinationConfiguration, \
             ElasticsearchDestinationConfiguration or HttpEndpointDestinationConfiguration)",
        )),
        1 => {}
        _ => issues.push(Issue::new(
            path,
            "has more than one destination block; a stream delivers to exactly one \
             destination, keep one (for S3, preferably ExtendedS3DestinationConfiguration)",
        )),
    }
    // Warehouse, search and HTTP destinations: their own fields and their S3Configuration.
    let (destination, own_prefixes) = super::destinations::check(config, stream, path, issues);
    // The S3 side: the extended block, else the deprecated one (normalising turns it into the
    // extended one), else another destination's S3Configuration.
    let extended = stream.extended_s3_destination_configuration.as_ref().map(|ext| {
        check_extended_s3(ext, &format!("{path}.ExtendedS3DestinationConfiguration"), issues)
    });
    let deprecated = stream
        .s3_destination_configuration
        .as_ref()
        .map(|s3| check_s3_destination(s3, &format!("{path}.S3DestinationConfiguration"), issues));
    let backup = check_backup(stream, path, own_prefixes.as_ref(), issues);
    let prefixes = extended.or(deprecated).unwrap_or(own_prefixes);

    check_tags(&stream.tags, path, issues);

    let store = &stream.hydrant.object_store;
    let spec = config.object_stores.get(store).map(|found| match found {
        ObjectStoreConfig::Local { root } => StoreSpec::Local { root: root.clone() },
        ObjectStoreConfig::S3(s3) => s3.spec(&config.region),
    });
    if spec.is_none() {
        let known: Vec<&str> = config.object_stores.keys().map(String::as_str).collect();
        issues.push(Issue::new(
            format!("{path}.hydrant.object_store"),
            format!(
                "there is no object store named {store:?}; defined: {}; add it under \
                 object_stores or use one of these",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ),
        ));
    }
    let shards = stream.hydrant.shards;
    if !SHARDS_RANGE.contains(&shards) {
        issues.push(Issue::new(
            format!("{path}.hydrant.shards"),
            format!("must be {}..={}, got {shards}", SHARDS_RANGE.start(), SHARDS_RANGE.end()),
        ));
    }
    if let Some(hours) = stream.hydrant.retention_hours {
        if !RETENTION_HOURS_RANGE.contains(&hours) {
            issues.push(Issue::new(
                format!("{path}.hydrant.retention_hours"),
                format!(
                    "must be {}..={} hours (365 days), got {hours}; 0 keeps only what is not \
                     delivered yet",
                    RETENTION_HOURS_RANGE.start(),
                    RETENTION_HOURS_RANGE.end()
                ),
            ));
        }
    }
    Some(CheckedStream {
        destination: destination?,
        prefixes: prefixes?,
        store: spec?,
        backup: backup?,
    })
}

/// NOT YET IMPLEMENTED IN THIS HYDRANT VERSION.
///
/// Settings that are valid Firehose (or planned Hydrant) configuration but that this version
/// cannot honour yet. They are rejected instead of silently ignored, so nobody believes their
/// data is being compressed, transformed, partitioned, backed up or encrypted when it is not.
/// When a feature lands, delete its lines here.
pub fn unsupported_features(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut not_yet = |path: String, message: String| issues.push(Issue::new(path, message));

    for (i, stream) in config.delivery_streams.iter().enumerate() {
        let path = format!("delivery_streams[{i}]");

        let source = stream.kinesis_stream_source_configuration.as_ref();
        match (stream.delivery_stream_type, source) {
            (None | Some(DeliveryStreamType::DirectPut), None) => {}
            (Some(DeliveryStreamType::KinesisStreamAsSource), Some(source)) => {
                if source.stream_name().is_none() {
                    not_yet(
                        format!("{path}.KinesisStreamSourceConfiguration.KinesisStreamARN"),
                        format!(
                            "{:?} is not a Kinesis stream ARN; write \
                             arn:aws:kinesis:<region>:<account>:stream/<name>",
                            source.kinesis_stream_arn
                        ),
                    );
                }
            }
            (Some(DeliveryStreamType::KinesisStreamAsSource), None) => not_yet(
                format!("{path}.KinesisStreamSourceConfiguration"),
                "KinesisStreamAsSource needs KinesisStreamSourceConfiguration with the \
                 KinesisStreamARN of the stream to read"
                    .to_string(),
            ),
            (_, Some(_)) => not_yet(
                format!("{path}.KinesisStreamSourceConfiguration"),
                "KinesisStreamSourceConfiguration is for DeliveryStreamType: \
                 KinesisStreamAsSource; set that type or remove it"
                    .to_string(),
            ),
            (Some(t), None) => not_yet(
                format!("{path}.DeliveryStreamType"),
                format!(
                    "{} is not supported; Hydrant streams receive records through \
                     PutRecord/PutRecordBatch or read a Kinesis stream: use DirectPut or \
                     KinesisStreamAsSource",
                    t.as_firehose_str()
                ),
            ),
        }
    }
    issues
}
