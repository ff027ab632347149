//! The source-record backup (`S3BackupMode`): the bucket a stream also writes its records to,
//! as they arrived. It is the `S3BackupConfiguration` of an S3 or Redshift destination
//! (checked here, whether or not the mode enables it), or the `S3Configuration` of a search
//! or HTTP destination that backs up all records (checked with its destination).

use super::s3::check_s3_destination;
use crate::config::{
    CompressionFormat, DeliveryStreamConfig, Issue, BUFFER_INTERVAL_SECONDS, BUFFER_SIZE_MBS,
};
use crate::naming::CheckedPrefixes;

/// The backup consumer's bucket, naming, format and buffering.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    /// The bucket, in the stream's object store.
    pub bucket: String,
    /// `Prefix` and `ErrorOutputPrefix` of the backup block, parsed.
    pub prefixes: CheckedPrefixes,
    pub compression: CompressionFormat,
    /// A buffer is written when it holds this many bytes (`SizeInMBs`, default 5 MiB)...
    pub buffer_bytes: u64,
    /// ...or is this old (`IntervalInSeconds`, default 300 s).
    pub buffer_interval_ms: i64,
}

/// Checks `stream`'s own `S3BackupConfiguration` blocks (`path` is the stream's) and plans
/// its backup: `None` inside when it keeps none. `s3_configuration` holds the prefixes of a
/// search or HTTP destination's `S3Configuration`, parsed (`None` when they are not valid).
pub(super) fn check_backup(
    stream: &DeliveryStreamConfig,
    path: &str,
    s3_configuration: Option<&CheckedPrefixes>,
    issues: &mut Vec<Issue>,
) -> Option<Option<BackupPlan>> {
    let own = [
        stream
            .extended_s3_destination_configuration
            .as_ref()
            .and_then(|ext| ext.s3_backup_configuration.as_ref())
            .map(|block| (block, "ExtendedS3DestinationConfiguration")),
        stream
            .redshift_destination_configuration
            .as_ref()
            .and_then(|r| r.s3_backup_configuration.as_ref())
            .map(|block| (block, "RedshiftDestinationConfiguration")),
    ];
    let mut own_prefixes = None;
    for (block, member) in own.into_iter().flatten() {
        let at = format!("{path}.{member}.S3BackupConfiguration");
        own_prefixes = Some(check_s3_destination(block, &at, issues));
    }
    let Some(target) = stream.backup_target() else { return Some(None) };
    let prefixes = match own_prefixes {
        Some(own) => own,
        None => s3_configuration.cloned(),
    }?;
    let hints = target.buffering_hints.unwrap_or_default();
    Some(Some(BackupPlan {
        bucket: target.bucket().to_string(),
        prefixes,
        compression: target.compression_format,
        buffer_bytes: u64::from(hints.size_in_mbs.unwrap_or(BUFFER_SIZE_MBS)) << 20,
        buffer_interval_ms: i64::from(hints.interval_in_seconds.unwrap_or(BUFFER_INTERVAL_SECONDS))
            * 1000,
    }))
}
