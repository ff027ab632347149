//! `limits:`: the block's own ranges, and the shard total of the file's streams.

use std::path::Path;

use crate::config::Issue;

#[test]
fn the_block_is_checked_and_the_files_streams_must_fit_the_shard_total() {
    let yaml = "limits: { max_shards: 3, max_shards_per_stream: 0, max_buffer_size_mib: 129 }
delivery_streams:
  - DeliveryStreamName: a
    ExtendedS3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw }
    hydrant: { shards: 2 }
  - DeliveryStreamName: b
    ExtendedS3DestinationConfiguration: { BucketARN: arn:aws:s3:::raw }
    hydrant: { shards: 2 }
";
    let crate::config::ConfigError::Invalid(issues) =
        super::parse(yaml, Path::new("/etc/hydrant")).unwrap_err()
    else {
        panic!("expected validation issues")
    };
    let text: Vec<String> = issues.iter().map(Issue::to_string).collect();
    assert!(
        text.iter().any(|i| i.starts_with("limits.max_shards_per_stream: must be 1..=64")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|i| i.starts_with("limits.max_buffer_size_mib: must be 1..=128")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|i| i.starts_with("limits.max_shards: the streams of this file have 4 shards")),
        "{text:?}"
    );
    assert!(super::parse("limits: { max_streams: 0 }\n", Path::new("/")).is_ok());
    assert!(super::parse("limits: { max_stream: 1 }\n", Path::new("/")).is_err());
}
