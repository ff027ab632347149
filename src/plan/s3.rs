//! The S3 blocks: `ExtendedS3DestinationConfiguration`, the deprecated
//! `S3DestinationConfiguration`, and every other `S3DestinationConfiguration` (a backup, the
//! intermediate bucket of another destination): ARNs, prefixes, buffering hints, encryption,
//! file extension and time zone, as Firehose checks them.

use super::truncate;
use crate::config::{
    bucket_from_arn, BufferingHints, EncryptionConfig, ExtendedS3Config, Issue, S3BackupMode,
    S3DestinationConfig,
};
use crate::naming::{check_prefixes, CheckedPrefixes};

/// Range of `BufferingHints.SizeInMBs` for S3 (Firehose).
pub const SIZE_IN_MBS_RANGE: std::ops::RangeInclusive<u32> = 1..=128;
/// Range of `BufferingHints.IntervalInSeconds` for S3 (Firehose).
pub const INTERVAL_IN_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 0..=900;

/// Checks of the members that `ExtendedS3DestinationConfiguration` shares with
/// `S3DestinationConfiguration`.
struct CommonS3<'a> {
    role_arn: Option<&'a str>,
    bucket_arn: &'a str,
    prefix: Option<&'a str>,
    error_output_prefix: Option<&'a str>,
    buffering_hints: Option<&'a BufferingHints>,
    encryption: Option<&'a EncryptionConfig>,
    dynamic_partitioning: bool,
}

/// Returns the two prefixes, parsed, when they keep every rule.
fn check_common(c: CommonS3<'_>, path: &str, issues: &mut Vec<Issue>) -> Option<CheckedPrefixes> {
    if let Some(role) = c.role_arn {
        if !is_role_arn(role) {
            issues.push(Issue::new(
                format!("{path}.RoleARN"),
                format!(
                    "{role:?} is not an IAM role ARN; write arn:aws:iam::<12-digit account>:role/<name>, \
                     or leave RoleARN out (Hydrant does not use it)"
                ),
            ));
        }
    }
    if !is_bucket_arn(c.bucket_arn) {
        issues.push(Issue::new(
            format!("{path}.BucketARN"),
            format!(
                "{:?} is not an S3 bucket ARN; write arn:aws:s3:::<bucket>, the bucket being 1 \
                 to 255 characters from a-z A-Z 0-9 _ . -",
                c.bucket_arn
            ),
        ));
    } else if matches!(bucket_from_arn(c.bucket_arn), "." | "..") {
        issues.push(Issue::new(
            format!("{path}.BucketARN"),
            format!(
                "{:?} names the bucket `.` or `..`, which is not a bucket; use a real bucket name",
                c.bucket_arn
            ),
        ));
    }

    let prefixes = match check_prefixes(c.prefix, c.error_output_prefix, c.dynamic_partitioning) {
        Ok(prefixes) => Some(prefixes),
        Err(problems) => {
            for problem in problems {
                issues.push(Issue::new(format!("{path}.{}", problem.field()), problem.to_string()));
            }
            None
        }
    };

    if let Some(hints) = c.buffering_hints {
        let hints_path = format!("{path}.BufferingHints");
        match (hints.size_in_mbs, hints.interval_in_seconds) {
            (Some(_), None) => issues.push(Issue::new(
                format!("{hints_path}.IntervalInSeconds"),
                "is required because SizeInMBs is set (Firehose: \"If you specify a value for \
                 SizeInMBs, you must also specify a value for IntervalInSeconds, and vice \
                 versa\"); add IntervalInSeconds: 300 for the default",
            )),
            (None, Some(_)) => issues.push(Issue::new(
                format!("{hints_path}.SizeInMBs"),
                "is required because IntervalInSeconds is set (Firehose: \"If you specify a \
                 value for SizeInMBs, you must also specify a value for IntervalInSeconds, and \
                 vice versa\"); add SizeInMBs: 5 for the default",
            )),
            _ => {}
        }
        if let Some(size) = hints.size_in_mbs {
            if !SIZE_IN_MBS_RANGE.contains(&size) {
                issues.push(Issue::new(
                    format!("{hints_path}.SizeInMBs"),
                    format!(
                        "must be {}..={}, got {size}",
                        SIZE_IN_MBS_RANGE.start(),
                        SIZE_IN_MBS_RANGE.end()
                    ),
                ));
            }
        }
        if let Some(interval) = hints.interval_in_seconds {
            if !INTERVAL_IN_SECONDS_RANGE.contains(&interval) {
                issues.push(Issue::new(
                    format!("{hints_path}.IntervalInSeconds"),
                    format!(
                        "must be {}..={}, got {interval}",
                        INTERVAL_IN_SECONDS_RANGE.start(),
                        INTERVAL_IN_SECONDS_RANGE.end()
                    ),
                ));
            }
        }
    }

    if let Some(enc) = c.encryption {
        if enc.no_encryption_config.is_some() && enc.kms_encryption_config.is_some() {
            issues.push(Issue::new(
                format!("{path}.EncryptionConfiguration"),
                "has both NoEncryptionConfig and KMSEncryptionConfig; keep one",
            ));
        }
    }
    prefixes
}

/// Checks an `S3DestinationConfiguration` at `path`; its prefixes, parsed, when they are valid.
pub(super) fn check_s3_destination(
    s3: &S3DestinationConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<CheckedPrefixes> {
    check_common(
        CommonS3 {
            role_arn: s3.role_arn.as_deref(),
            bucket_arn: &s3.bucket_arn,
            prefix: s3.prefix.as_deref(),
            error_output_prefix: s3.error_output_prefix.as_deref(),
            buffering_hints: s3.buffering_hints.as_ref(),
            encryption: s3.encryption_configuration.as_ref(),
            dynamic_partitioning: false,
        },
        path,
        issues,
    )
}

/// Checks an `ExtendedS3DestinationConfiguration` at `path`; its prefixes, parsed, when they
/// are valid.
pub(super) fn check_extended_s3(
    ext: &ExtendedS3Config,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<CheckedPrefixes> {
    let prefixes = check_common(
        CommonS3 {
            role_arn: ext.role_arn.as_deref(),
            bucket_arn: &ext.bucket_arn,
            prefix: ext.prefix.as_deref(),
            error_output_prefix: ext.error_output_prefix.as_deref(),
            buffering_hints: ext.buffering_hints.as_ref(),
            encryption: ext.encryption_configuration.as_ref(),
            dynamic_partitioning: ext.dynamic_partitioning_enabled(),
        },
        path,
        issues,
    );

    if let Some(processing) = &ext.processing_configuration {
        for (p, processor) in processing.processors.iter().enumerate() {
            for (k, parameter) in processor.parameters.iter().enumerate() {
                let value = &parameter.parameter_value;
                let len = value.chars().count();
                if value.trim().is_empty() || len > 5120 {
                    issues.push(Issue::new(
                        format!(
                            "{path}.ProcessingConfiguration.Processors[{p}].Parameters[{k}].ParameterValue"
                        ),
                        format!(
                            "must be 1 to 5120 characters and not blank, got {} characters \
                             {:?}; give the {:?} value",
                            len,
                            truncate(value, 40),
                            parameter.parameter_name
                        ),
                    ));
                }
            }
        }
    }

    if let Some(retry) = ext
        .dynamic_partitioning_configuration
        .as_ref()
        .and_then(|d| d.retry_options.as_ref())
        .and_then(|r| r.duration_in_seconds)
    {
        if retry > 7200 {
            issues.push(Issue::new(
                format!("{path}.DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds"),
                format!("must be 0..=7200, got {retry}"),
            ));
        }
    }

    if let Some(ext_text) = &ext.file_extension {
        let valid = ext_text.is_empty()
            || (ext_text.len() >= 2
                && ext_text.chars().count() <= 128
                && ext_text.starts_with('.')
                && ext_text[1..].chars().all(|c| {
                    c.is_ascii_digit()
                        || c.is_ascii_lowercase()
                        || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
                }));
        if !valid {
            issues.push(Issue::new(
                format!("{path}.FileExtension"),
                format!(
                    "{ext_text:?} is not a valid file extension; write a dot followed by up to \
                     127 lowercase letters, digits or !-_.*'(), e.g. .json.gz"
                ),
            ));
        }
    }

    if let Some(tz) = &ext.custom_time_zone {
        if !tz.is_empty() {
            let firehose_pattern = tz.chars().count() <= 50
                && tz.chars().all(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
            let known = tz.parse::<chrono_tz::Tz>().is_ok();
            if !known {
                issues.push(Issue::new(
                    format!("{path}.CustomTimeZone"),
                    format!(
                        "{tz:?} is not a known IANA time zone name; use a name such as UTC, \
                         Europe/Berlin or Asia/Tokyo (case-sensitive), or leave it out for UTC"
                    ),
                ));
            } else if !firehose_pattern {
                issues.push(Issue::new(
                    format!("{path}.CustomTimeZone"),
                    format!(
                        "{tz:?} is a time zone, but Firehose accepts only names of up to 50 \
                         letters, `/` and `_`; pick an equivalent zone such as Asia/Tokyo"
                    ),
                ));
            }
        }
    }

    // The backup block itself is checked with the stream's backup (`backup.rs`).
    if ext.s3_backup_configuration.is_none() && ext.s3_backup_mode == S3BackupMode::Enabled {
        issues.push(Issue::new(
            format!("{path}.S3BackupConfiguration"),
            "is required because S3BackupMode is Enabled; add it, or set S3BackupMode: Disabled",
        ));
    }
    prefixes
}

/// `arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+`, 1 to 512 characters.
fn is_role_arn(arn: &str) -> bool {
    if arn.len() > 512 {
        return false;
    }
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    // The account and role name cannot contain ':', so the last `:iam::` is the one.
    let Some(at) = rest.rfind(":iam::") else {
        return false;
    };
    let tail = &rest[at + ":iam::".len()..];
    let Some((account, role)) = tail.split_at_checked(12) else {
        return false;
    };
    let Some(name) = role.strip_prefix(":role/") else {
        return false;
    };
    account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-' | '/')
        })
}

/// `arn:.*:s3:::[\w.\-]{1,255}`, 1 to 2048 characters.
fn is_bucket_arn(arn: &str) -> bool {
    if arn.len() > 2048 {
        return false;
    }
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    // The bucket cannot contain ':', so the last `:s3:::` is the one.
    let Some(at) = rest.rfind(":s3:::") else {
        return false;
    };
    let bucket = &rest[at + ":s3:::".len()..];
    (1..=255).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_follow_the_service_model_pattern() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/fh"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/to/fh-role_1"));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/fh"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/fh"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!is_role_arn("role/fh"));
    }

    #[test]
    fn bucket_arns_follow_the_service_model_pattern() {
        assert!(is_bucket_arn("arn:aws:s3:::raw"));
        assert!(is_bucket_arn("arn:aws-us-gov:s3:::my.bucket-1_x"));
        assert!(!is_bucket_arn("arn:aws:s3:::"));
        assert!(!is_bucket_arn("arn:aws:s3:::a/b"));
        assert!(!is_bucket_arn("s3://raw"));
        assert!(!is_bucket_arn(&format!("arn:aws:s3:::{}", "a".repeat(256))));
    }
}
