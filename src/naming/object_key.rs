//! Full S3 object keys, exactly as Firehose names them (FIREHOSE.md 3.2, 3.3 rule 8):
//! `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`.
//!
//! Hydrant departs from Firehose in one deliberate way: the uuid and every
//! `!{firehose:random-string}` are derived from the batch identity (stream, shard, first and last
//! sequence number) instead of being random, so a batch re-delivered after a crash overwrites
//! the object it may already have written instead of duplicating it (DESIGN.md "Guarantees",
//! deterministic names). The timestamps come from the oldest record's arrival time, which is
//! stored in the log, so they are deterministic too.

use super::java_time::{push_padded, Moment};
use super::prefix::{
    check_prefixes, moment_at, CheckedPrefixes, Expression, KeyContext, Namespace, PrefixField,
    PrefixProblem, PrefixTemplate, RenderError,
};
use chrono_tz::Tz;
use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// The timestamp Firehose appends to a prefix that has no expression, and uses when there is
/// no prefix at all.
pub const DEFAULT_PREFIX_PATTERN: &str = "yyyy/MM/dd/HH/";

/// Longest `FileExtension` Firehose accepts.
const MAX_EXTENSION_CHARS: usize = 128;

/// Values of `!{firehose:error-output-type}` that Firehose uses (FIREHOSE.md 3.3).
pub mod error_output_type {
    /// A transform returned `ProcessingFailed` or kept failing.
    pub const PROCESSING_FAILED: &str = "processing-failed";
    /// Data format conversion (JSON to Parquet/ORC) failed.
    pub const FORMAT_CONVERSION_FAILED: &str = "format-conversion-failed";
    /// Delivery to an HTTP endpoint failed.
    pub const HTTP_ENDPOINT_FAILED: &str = "http-endpoint-failed";
    /// Delivery to OpenSearch failed (`elasticsearch-failed` on older streams).
    pub const OPENSEARCH_FAILED: &str = "AmazonOpenSearchService-failed";
    /// Delivery to Splunk failed.
    pub const SPLUNK_FAILED: &str = "splunk-failed";
}

/// Identity of one delivered batch; everything "random" in its keys derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchIdentity<'a> {
    pub stream: &'a str,
    pub shard: u32,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Tells apart several objects cut from one batch (dynamic partitions, or parts of a
    /// partition larger than the buffer size). 0 for the batch's only object.
    pub variant: u64,
}

impl BatchIdentity<'_> {
    /// MD5 of an unambiguous encoding of the four fields:
    /// `"hydrant/batch/v1" || len(stream) as u64 BE || stream || shard as u32 BE ||
    /// first_seq as u64 BE || last_seq as u64 BE`. The length prefix keeps `("ab", ..)` and
    /// `("a", ..)` plus other bytes from colliding. This encoding is a compatibility contract:
    /// changing it renames re-delivered batches across an upgrade.
    pub fn seed(&self) -> [u8; 16] {
        let mut md5 = Md5::new();
        md5.update(b"hydrant/batch/v1");
        md5.update((self.stream.len() as u64).to_be_bytes());
        md5.update(self.stream.as_bytes());
        md5.update(self.shard.to_be_bytes());
        md5.update(self.first_seq.to_be_bytes());
        md5.update(self.last_seq.to_be_bytes());
        // Appended only when set, so the keys of single-object batches never change.
        if self.variant != 0 {
            md5.update(self.variant.to_be_bytes());
        }
        md5.finalize().into()
    }

    /// The key's 36-character uuid: the seed as an RFC 9562 UUIDv8 (version nibble 8, variant
    /// bits `10`), lowercase. Version 8 marks it as application-defined rather than random.
    pub fn uuid(&self) -> String {
        let mut out = String::with_capacity(36);
        push_uuid(&mut out, self.seed());
        out
    }
}

/// Partition keys of one dynamic partition (records that evaluate to the same prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Keys from the jq `MetadataExtraction` processor (`!{partitionKeyFromQuery:...}`).
    pub query: BTreeMap<String, String>,
    /// Keys from the transform's `metadata.partitionKeys` (`!{partitionKeyFromLambda:...}`).
    pub lambda: BTreeMap<String, String>,
}

/// Longest part of a refused partition key value quoted in an error message.
const MAX_QUOTED_VALUE_CHARS: usize = 100;

/// Why a record cannot be named: its partition gives no object key the store would take.
/// Such a record goes to the `partitioning-failed` error output; retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnnameableRecord {
    /// A value that is empty, `.` or `..`, holds a control character, or whose `/` makes an
    /// empty, `.` or `..` path segment.
    #[error(
        "partition key {key:?} ({namespace}) is {value}: {why}; a partition key value must not \
         be empty, \".\" or \"..\", hold a control character, or make an empty, \".\" or \"..\" path \
         segment with \"/\""
    )]
    InvalidValue { namespace: Namespace, key: String, value: String, why: &'static str },
    /// The evaluated prefix or the whole key breaks a limit (Firehose's 512 characters of
    /// prefix, the store's key rules).
    #[error("the object key for this record's partition cannot be written: {0}")]
    InvalidKey(String),
}

impl UnnameableRecord {
    /// The error output's `errorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidValue { .. } => "DynamicPartitioning.InvalidPartitionKeyValue",
            Self::InvalidKey(_) => "DynamicPartitioning.InvalidObjectKey",
        }
    }
}

impl Partition {
    /// Checks every value on its own (see [`UnnameableRecord::InvalidValue`]); the key they
    /// make is checked by the caller, who knows the store.
    pub fn check_values(&self) -> Result<(), UnnameableRecord> {
        let sources = [
            (Namespace::PartitionKeyFromQuery, &self.query),
            (Namespace::PartitionKeyFromLambda, &self.lambda),
        ];
        for (namespace, keys) in sources {
            for (key, value) in keys {
                if let Some(why) = value_problem(value) {
                    let mut quoted: String = value.chars().take(MAX_QUOTED_VALUE_CHARS).collect();
                    if quoted.len() < value.len() {
                        quoted.push('…');
                    }
                    return Err(UnnameableRecord::InvalidValue {
                        namespace,
                        key: key.clone(),
                        value: format!("{quoted:?}"),
                        why,
                    });
                }
            }
        }
        Ok(())
    }
}

/// What is wrong with one partition key value, if anything.
fn value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return Some("it is empty");
    }
    if value.chars().any(char::is_control) {
        return Some("it holds a control character");
    }
    for segment in value.split('/') {
        match segment {
            "." | ".." if segment == value => return Some("it is a relative path segment"),
            "." | ".." => return Some("its \"/\" makes a \".\" or \"..\" path segment"),
            "" => return Some("its \"/\" makes an empty path segment"),
            _ => {}
        }
    }
    None
}

/// Why a Prefix / ErrorOutputPrefix / FileExtension combination was rejected. These mirror the
/// InvalidArgumentException cases of Firehose's semantic rules (FIREHOSE.md 3.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamerError {
    /// The prefixes break Firehose's rules ([`check_prefixes`]): every problem, in order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Prefixes(Vec<PrefixProblem>),
    /// FileExtension must match `^$|\.[0-9a-z!\-_.*'()]+` and be at most 128 characters.
    #[error(
        "FileExtension `{0}` is invalid: it must be empty or a '.' followed by up to 127 of \
         0-9 a-z ! - _ . * ' ( )"
    )]
    InvalidExtension(String),
}

/// Names the objects of one S3 destination. Built once per (re)configuration; all parsing
/// happens in [`ObjectNamer::new`], so naming an object is only rendering.
#[derive(Debug, Clone)]
pub struct ObjectNamer {
    stream: Box<str>,
    /// Effective prefix: the configured one with Firehose's defaults applied.
    prefix: PrefixTemplate,
    /// Effective error prefix: the configured one with Firehose's defaults applied.
    error_prefix: PrefixTemplate,
    extension: Box<str>,
    error_extension: Box<str>,
    tz: Tz,
}

impl ObjectNamer {
    /// Checks and compiles a destination's naming settings.
    ///
    /// `prefix` and `error_output_prefix` are Firehose's `Prefix` and `ErrorOutputPrefix`
    /// (`None` and `""` mean unset); `extension` is the compression/format default or the
    /// `FileExtension` override; `tz` is `CustomTimeZone`.
    pub fn new(
        stream: &str,
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        extension: &str,
        tz: Tz,
    ) -> Result<Self, NamerError> {
        // Partition keys are allowed here: whether the stream may use them (rule 5 asks for
        // DynamicPartitioningConfiguration) is checked with the stream's configuration.
        let prefixes =
            check_prefixes(prefix, error_output_prefix, true).map_err(NamerError::Prefixes)?;
        Self::from_prefixes(stream, prefixes, extension, tz)
    }

    /// [`ObjectNamer::new`] with the prefixes already parsed and checked ([`check_prefixes`]).
    pub fn from_prefixes(
        stream: &str,
        prefixes: CheckedPrefixes,
        extension: &str,
        tz: Tz,
    ) -> Result<Self, NamerError> {
        let CheckedPrefixes { prefix: user_prefix, error_output_prefix: user_error_prefix } =
            prefixes;
        // Appending the constant default pattern cannot fail; should it, it is named like a
        // prefix the user wrote.
        let appended = |field| {
            move |error| NamerError::Prefixes(vec![PrefixProblem::Invalid { field, error }])
        };

        let error_prefix = if !user_error_prefix.as_str().is_empty() {
            if user_error_prefix.has_expressions() {
                user_error_prefix
            } else {
                user_error_prefix
                    .with_timestamp_appended(DEFAULT_PREFIX_PATTERN)
                    .map_err(appended(PrefixField::ErrorOutputPrefix))?
            }
        } else {
            // Rule 8: `<Prefix><error-output-type>/yyyy/MM/dd/HH/` (the Prefix has no
            // expression: rule 2 holds).
            user_prefix
                .clone()
                .with_error_output_type_appended()
                .with_literal_appended("/")
                .with_timestamp_appended(DEFAULT_PREFIX_PATTERN)
                .map_err(appended(PrefixField::ErrorOutputPrefix))?
        };
        let prefix = if user_prefix.has_expressions() {
            user_prefix
        } else {
            // Plain concatenation, no `/` added: `legacy` gives `legacy2026/07/13/14/`.
            user_prefix
                .with_timestamp_appended(DEFAULT_PREFIX_PATTERN)
                .map_err(appended(PrefixField::Prefix))?
        };

        check_extension(extension)?;
        Ok(ObjectNamer {
            stream: stream.into(),
            prefix,
            error_prefix,
            extension: extension.into(),
            error_extension: extension.into(),
            tz,
        })
    }

    /// Uses `extension` for error-output objects instead of the delivery extension, for
    /// destinations whose error output is not in the delivered format (e.g. failed records are
    /// JSON lines while delivered objects are `.parquet`).
    pub fn with_error_extension(mut self, extension: &str) -> Result<Self, NamerError> {
        check_extension(extension)?;
        self.error_extension = extension.into();
        Ok(self)
    }

    /// Key of a delivered object:
    /// `<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`.
    ///
    /// `arrival_ms` is the approximate arrival time of the oldest record in the object; both
    /// the prefix timestamps and the suffix show it, in the configured time zone. `partition`
    /// supplies the keys for `partitionKeyFrom*` expressions (dynamic partitioning).
    pub fn object_key(
        &self,
        version: u64,
        batch: &BatchIdentity<'_>,
        arrival_ms: i64,
        partition: Option<&Partition>,
    ) -> Result<String, RenderError> {
        let ctx = KeyContext {
            arrival_ms,
            tz: self.tz,
            seed: batch.seed(),
            error_output_type: None,
            partition_keys_query: partition.map(|p| &p.query),
            partition_keys_lambda: partition.map(|p| &p.lambda),
        };
        self.key(&self.prefix, &self.extension, version, &ctx)
    }

    /// Key of an error-output object holding records that failed with `error_output_type`
    /// (see [`error_output_type`]), named like a delivered object under the error prefix.
    pub fn error_key(
        &self,
        version: u64,
        batch: &BatchIdentity<'_>,
        arrival_ms: i64,
        error_output_type: &str,
    ) -> Result<String, RenderError> {
        let ctx = KeyContext {
            arrival_ms,
            tz: self.tz,
            seed: batch.seed(),
            error_output_type: Some(error_output_type),
            partition_keys_query: None,
            partition_keys_lambda: None,
        };
        self.key(&self.error_prefix, &self.error_extension, version, &ctx)
    }

    /// One key of each kind this namer makes, rendered with sample values (partition keys
    /// `x`, the longest error output type, a time of the longest month and weekday names):
    /// `("Prefix", a data key)` and `("ErrorOutputPrefix", an error key)`. A key the store
    /// refuses here would be refused for every object, whatever the records hold (`a//b/`,
    /// a `.` segment written in the prefix), so the stream is refused when it starts.
    pub fn sample_keys(&self, version: u64) -> Vec<(&'static str, Result<String, RenderError>)> {
        // 2026-09-30T23:59:59.999Z: a Wednesday in September.
        const SAMPLE_MS: i64 = 1_790_812_799_999;
        let batch =
            BatchIdentity { stream: &self.stream, shard: 0, first_seq: 0, last_seq: 0, variant: 1 };
        let sample = |namespace| {
            self.prefix
                .expressions()
                .filter_map(|e| match (e, namespace) {
                    (Expression::PartitionKeyFromQuery(k), Namespace::PartitionKeyFromQuery)
                    | (Expression::PartitionKeyFromLambda(k), Namespace::PartitionKeyFromLambda) => {
                        Some((k.to_string(), "x".to_string()))
                    }
                    _ => None,
                })
                .collect()
        };
        let partition = Partition {
            query: sample(Namespace::PartitionKeyFromQuery),
            lambda: sample(Namespace::PartitionKeyFromLambda),
        };
        vec![
            ("Prefix", self.object_key(version, &batch, SAMPLE_MS, Some(&partition))),
            (
                "ErrorOutputPrefix",
                self.error_key(version, &batch, SAMPLE_MS, error_output_type::OPENSEARCH_FAILED),
            ),
        ]
    }

    /// True when the Prefix references partition keys; the config layer must then require
    /// dynamic partitioning to be enabled (rule 5).
    pub fn uses_partition_keys(&self) -> bool {
        self.prefix.uses_partition_keys()
    }

    /// The effective prefix template (Firehose's defaults applied), e.g. for logs.
    pub fn prefix(&self) -> &PrefixTemplate {
        &self.prefix
    }

    /// The effective error prefix template (Firehose's defaults applied).
    pub fn error_prefix(&self) -> &PrefixTemplate {
        &self.error_prefix
    }

    /// The stream name used in key suffixes.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The extension of delivered objects.
    pub fn extension(&self) -> &str {
        &self.extension
    }

    /// The time zone of every timestamp in the keys.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    fn key(
        &self,
        prefix: &PrefixTemplate,
        extension: &str,
        version: u64,
        ctx: &KeyContext<'_>,
    ) -> Result<String, RenderError> {
        let moment: Moment = moment_at(ctx.arrival_ms, ctx.tz)?;
        // prefix + stream + "-" + version (<= 20) + "-" + 19 + "-" + 36 + extension
        let mut out = String::with_capacity(
            prefix.capacity_hint() + self.stream.len() + 80 + extension.len(),
        );
        prefix.render_moment(&moment, ctx, &mut out)?;
        out.push_str(&self.stream);
        out.push('-');
        push_padded(&mut out, version, 1);
        out.push('-');
        moment.push_key_suffix_time(&mut out);
        out.push('-');
        push_uuid(&mut out, ctx.seed);
        out.push_str(extension);
        Ok(out)
    }
}

fn check_extension(extension: &str) -> Result<(), NamerError> {
    let valid = extension.is_empty()
        || (extension.len() >= 2
            && extension.len() <= MAX_EXTENSION_CHARS
            && extension.starts_with('.')
            && extension
                .bytes()
                .skip(1)
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"!-_.*'()".contains(&b)));
    if valid {
        Ok(())
    } else {
        Err(NamerError::InvalidExtension(extension.to_owned()))
    }
}

/// Appends `seed` as a lowercase 8-4-4-4-12 UUID with version 8 and the RFC variant.
fn push_uuid(out: &mut String, mut bytes: [u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

#[cfg(test)]
mod tests;
