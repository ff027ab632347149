//! Record processors of `ProcessingConfiguration` that are not the transform function:
//! `RecordDeAggregation`, `MetadataExtraction` (dynamic partitioning with jq) and
//! `AppendDelimiterToRecord`, plus the parsed parameters of the `Lambda` processor.
//!
//! # Order
//!
//! Firehose applies the steps in a fixed order, whatever their order in `Processors`
//! (FIREHOSE.md 3.10 and the DG: "Deaggregation → Data Transformation via Lambda →
//! Partitioning Keys"):
//!
//! 1. [`Processors::deaggregate`]: one record becomes 1..=500 sub-records (or fails whole).
//! 2. The transform (`Lambda`, in Hydrant a WebAssembly function), run elsewhere on the
//!    sub-records, batched per [`LambdaSpec`]; its `metadata.partitionKeys` feed
//!    `!{partitionKeyFromLambda:…}`.
//! 3. [`Processors::partition_keys`]: the jq query runs on each (transformed) record and feeds
//!    `!{partitionKeyFromQuery:…}`.
//! 4. [`Processors::append_delimiter`]: the delimiter is appended to each final record just
//!    before it is buffered for delivery. It is therefore appended to the transform's output,
//!    never seen by the transform, not seen by the jq query (so a `,` delimiter cannot break
//!    the JSON parse), and not part of the S3 backup copy (which holds the source records) or
//!    of error-output `rawData`.
//!
//! [`Processors::post_transform`] does 3 and 4, [`Processors::process`] does 1, 3 and 4 for
//! streams without a transform.
//!
//! # Integration notes
//!
//! * Build [`Processors`] once per stream with [`Processors::from_config`] (validation
//!   included) and share it (`Arc` or clone; everything is `Send + Sync`, clones are cheap).
//!   The issue paths are suffixes to append to `…ProcessingConfiguration.`.
//! * `Enabled` false or absent: the processors are still validated, but
//!   [`Processors::is_active`] is false and every accessor gives `None`, as Firehose ignores a
//!   disabled configuration.
//! * `Decompression` and `CloudWatchLogProcessing` ([`cloudwatch`]) run right after
//!   de-aggregation ([`Processors::unpack`]): a CloudWatch Logs record becomes no record (a
//!   control message), its decompressed document, or one record per log event.
//! * Failures are per record: [`ProcessingError::code`] and its `Display` text are the error
//!   output's `errorCode`/`errorMessage`. Firehose's own codes and error-output type for these
//!   failures are undocumented; `processing-failed` is the natural `error-output-type`.
//! * When data format conversion is on, the converter consumes the records, so
//!   `AppendDelimiterToRecord` should be skipped (or the combination rejected at config time).
//! * Cross-field rules belong to config validation: `MetadataExtraction` and `partitionKeyFrom*`
//!   prefixes need `DynamicPartitioningConfiguration.Enabled`; jq queries are programs (they can
//!   loop or recurse without bound), so streams created through the API by less trusted
//!   clients may need an opt-in.

pub mod cloudwatch;
pub mod deaggregate;
pub mod delimiter;
pub mod extract;
pub mod lambda;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::config::{ProcessingConfig, ProcessorParameterName, ProcessorType};

pub use cloudwatch::{CloudWatchLogs, UnpackError};
pub use deaggregate::{DeAggregationError, DeAggregator, SubRecordType, MAX_SUB_RECORDS};
pub use delimiter::AppendDelimiter;
pub use extract::{ExtractError, MetadataExtractor, QueryError, JQ_1_6};
pub use lambda::LambdaSpec;

/// A configuration problem: (path suffix such as
/// `Processors[1].Parameters[0].ParameterValue`, message saying what to fix).
pub type ConfigIssue = (String, String);

/// The processors of one stream, validated and ready to run.
#[derive(Debug, Clone, Default)]
pub struct Processors {
    deaggregate: Option<DeAggregator>,
    /// `Decompression` and `CloudWatchLogProcessing`.
    cloudwatch: Option<CloudWatchLogs>,
    extract: Option<MetadataExtractor>,
    append: Option<AppendDelimiter>,
    lambda: Option<LambdaSpec>,
}

/// One record ready for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The record bytes, delimiter included when `AppendDelimiterToRecord` is on.
    pub data: Bytes,
    /// `partitionKeyFromQuery` keys, when `MetadataExtraction` is on.
    pub partition_keys: Option<BTreeMap<String, String>>,
}

/// Why a record goes to the error output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessingError {
    /// The whole incoming record could not be de-aggregated; `rawData` is the whole record.
    #[error("{0}")]
    DeAggregation(DeAggregationError),
    /// Partition keys could not be extracted from `data` (one sub-record, as the jq query saw
    /// it, without delimiter); `rawData` is `data`.
    #[error("{error}")]
    Extraction { data: Bytes, error: ExtractError },
    /// A CloudWatch Logs record could not be decompressed or read; `rawData` is the record as
    /// it came in.
    #[error("{error}")]
    Unpack { data: Bytes, error: UnpackError },
}

impl ProcessingError {
    /// The error output's `errorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DeAggregation(e) => e.code(),
            Self::Extraction { error, .. } => error.code(),
            Self::Unpack { error, .. } => error.code(),
        }
    }
}

impl Processors {
    /// Processors from parts that their own constructors checked, all enabled: for a caller
    /// that has no `ProcessingConfiguration` ([`Processors::from_config`] builds them from one).
    pub fn from_parts(
        deaggregate: Option<DeAggregator>,
        extract: Option<MetadataExtractor>,
        append: Option<AppendDelimiter>,
        lambda: Option<LambdaSpec>,
    ) -> Self {
        Self { deaggregate, cloudwatch: None, extract, append, lambda }
    }

    /// Build and validate the processors of a `ProcessingConfiguration`. All problems are
    /// reported at once.
    pub fn from_config(config: &ProcessingConfig) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut built = Self::default();
        let mut seen: Vec<(ProcessorType, usize)> = Vec::new();

        for (i, processor) in config.processors.iter().enumerate() {
            let base = format!("Processors[{i}]");
            let ty = processor.processor_type;
            if let Some((_, first)) = seen.iter().find(|(t, _)| *t == ty) {
                issues.push((
                    format!("{base}.Type"),
                    format!("{ty:?} is already Processors[{first}]; give each processor type once"),
                ));
                continue;
            }
            seen.push((ty, i));

            let allowed = allowed_parameters(ty);
            let mut params = Params { base: &base, given: Vec::new() };
            for (k, parameter) in processor.parameters.iter().enumerate() {
                let name = parameter.parameter_name;
                if !allowed.contains(&name) {
                    let list = if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                    };
                    issues.push((
                        format!("{base}.Parameters[{k}].ParameterName"),
                        format!("{name:?} is not a parameter of {ty:?}; its parameters are {list}"),
                    ));
                } else if let Some((_, j, _)) = params.given.iter().find(|(n, _, _)| *n == name) {
                    issues.push((
                        format!("{base}.Parameters[{k}].ParameterName"),
                        format!("{name:?} is already given as Parameters[{j}]; give it once"),
                    ));
                } else {
                    params.given.push((name, k, parameter.parameter_value.as_str()));
                }
            }

            match ty {
                ProcessorType::RecordDeAggregation => {
                    built.deaggregate = deaggregator(&params, &mut issues);
                }
                ProcessorType::MetadataExtraction => {
                    built.extract = extractor(&params, &mut issues);
                }
                ProcessorType::AppendDelimiterToRecord => {
                    built.append = append_delimiter(&params, &mut issues);
                }
                ProcessorType::Lambda => built.lambda = lambda_spec(&params, &mut issues),
                ProcessorType::Decompression => {
                    if decompression(&params, &mut issues) {
                        let cw = built
                            .cloudwatch
                            .get_or_insert(CloudWatchLogs { decompress: false, processing: None });
                        cw.decompress = true;
                    }
                }
                ProcessorType::CloudWatchLogProcessing => {
                    if let Some(extract) = message_extraction(&params, &mut issues) {
                        let cw = built
                            .cloudwatch
                            .get_or_insert(CloudWatchLogs { decompress: false, processing: None });
                        cw.processing = Some(extract);
                    }
                }
            }
        }
        if let Some((_, i)) =
            seen.iter().find(|(t, _)| *t == ProcessorType::CloudWatchLogProcessing)
        {
            if !seen.iter().any(|(t, _)| *t == ProcessorType::Decompression) {
                issues.push((
                    format!("Processors[{i}].Type"),
                    "CloudWatchLogProcessing reads decompressed CloudWatch Logs records; add a \
                     Decompression processor with CompressionFormat GZIP"
                        .into(),
                ));
            }
        }

        if !issues.is_empty() {
            return Err(issues);
        }
        if config.enabled != Some(true) {
            return Ok(Self::default());
        }
        Ok(built)
    }

    /// Whether any step runs.
    pub fn is_active(&self) -> bool {
        self.deaggregate.is_some()
            || self.cloudwatch.is_some()
            || self.extract.is_some()
            || self.append.is_some()
            || self.lambda.is_some()
    }

    /// `RecordDeAggregation`, if on.
    pub fn deaggregator(&self) -> Option<&DeAggregator> {
        self.deaggregate.as_ref()
    }

    /// `Decompression` and `CloudWatchLogProcessing`, if on.
    pub fn cloudwatch_logs(&self) -> Option<&CloudWatchLogs> {
        self.cloudwatch.as_ref()
    }

    /// Step 1b, after de-aggregation: the records a (sub-)record becomes through
    /// `Decompression` and `CloudWatchLogProcessing` (the record itself without them).
    pub fn unpack(&self, record: Bytes) -> Result<Vec<Bytes>, ProcessingError> {
        match &self.cloudwatch {
            Some(cw) => cw
                .unpack(record.clone())
                .map_err(|error| ProcessingError::Unpack { data: record, error }),
            None => Ok(vec![record]),
        }
    }

    /// `MetadataExtraction`, if on.
    pub fn metadata_extractor(&self) -> Option<&MetadataExtractor> {
        self.extract.as_ref()
    }

    /// `AppendDelimiterToRecord`, if on.
    pub fn delimiter(&self) -> Option<&AppendDelimiter> {
        self.append.as_ref()
    }

    /// The `Lambda` processor's parameters, if on.
    pub fn lambda(&self) -> Option<&LambdaSpec> {
        self.lambda.as_ref()
    }

    /// Step 1: the sub-records of an incoming record (the record itself without
    /// de-aggregation).
    pub fn deaggregate(&self, record: Bytes) -> Result<Vec<Bytes>, DeAggregationError> {
        match &self.deaggregate {
            Some(d) => d.split(&record),
            None => Ok(vec![record]),
        }
    }

    /// Step 3: the `partitionKeyFromQuery` keys of a record (`None` without
    /// `MetadataExtraction`).
    pub fn partition_keys(
        &self,
        record: &[u8],
    ) -> Result<Option<BTreeMap<String, String>>, ExtractError> {
        self.extract.as_ref().map(|e| e.extract(record)).transpose()
    }

    /// Step 4: the record as delivered (the record itself without `AppendDelimiterToRecord`).
    pub fn append_delimiter(&self, record: Bytes) -> Bytes {
        match &self.append {
            Some(d) => d.apply(&record),
            None => record,
        }
    }

    /// Steps 3 and 4 for one record coming out of the transform (or out of step 1 when there
    /// is no transform).
    pub fn post_transform(&self, record: Bytes) -> Result<Processed, ProcessingError> {
        let partition_keys = self
            .partition_keys(&record)
            .map_err(|error| ProcessingError::Extraction { data: record.clone(), error })?;
        Ok(Processed { data: self.append_delimiter(record), partition_keys })
    }

    /// Steps 1, 3 and 4 for a stream without a transform: one result per sub-record, or one
    /// error for the whole record when de-aggregation fails. With a `Lambda` processor, call
    /// [`Self::deaggregate`], run the transform, then [`Self::post_transform`] instead.
    pub fn process(&self, record: Bytes) -> Vec<Result<Processed, ProcessingError>> {
        debug_assert!(self.lambda.is_none(), "process() skips the transform");
        match self.deaggregate(record) {
            Ok(parts) => (parts.into_iter())
                .flat_map(|part| match self.unpack(part) {
                    Ok(records) => records.into_iter().map(|r| self.post_transform(r)).collect(),
                    Err(e) => vec![Err(e)],
                })
                .collect(),
            Err(e) => vec![Err(ProcessingError::DeAggregation(e))],
        }
    }
}

/// Parameters each processor type takes.
fn allowed_parameters(ty: ProcessorType) -> &'static [ProcessorParameterName] {
    use ProcessorParameterName as N;
    match ty {
        ProcessorType::RecordDeAggregation => &[N::SubRecordType, N::Delimiter],
        ProcessorType::Decompression => &[N::CompressionFormat],
        ProcessorType::CloudWatchLogProcessing => &[N::DataMessageExtraction],
        ProcessorType::Lambda => &[
            N::LambdaArn,
            N::NumberOfRetries,
            N::RoleArn,
            N::BufferSizeInMBs,
            N::BufferIntervalInSeconds,
        ],
        ProcessorType::MetadataExtraction => &[N::MetadataExtractionQuery, N::JsonParsingEngine],
        ProcessorType::AppendDelimiterToRecord => &[N::Delimiter],
    }
}

/// The known, non-duplicate parameters of one processor.
struct Params<'a> {
    base: &'a str,
    /// (name, index in Parameters, value)
    given: Vec<(ProcessorParameterName, usize, &'a str)>,
}

impl Params<'_> {
    fn get(&self, name: ProcessorParameterName) -> Option<(usize, &str)> {
        self.given.iter().find(|(n, _, _)| *n == name).map(|(_, k, v)| (*k, *v))
    }

    fn value_path(&self, k: usize) -> String {
        format!("{}.Parameters[{k}].ParameterValue", self.base)
    }

    fn name_path(&self, k: usize) -> String {
        format!("{}.Parameters[{k}].ParameterName", self.base)
    }

    fn missing(&self, issues: &mut Vec<ConfigIssue>, message: String) {
        issues.push((format!("{}.Parameters", self.base), message));
    }

    /// Parse a value, recording an issue at its path on failure.
    fn parse<T>(
        &self,
        name: ProcessorParameterName,
        issues: &mut Vec<ConfigIssue>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let Some((k, value)) = self.get(name) else {
            return Some(None);
        };
        match parse(value) {
            Ok(v) => Some(Some(v)),
            Err(message) => {
                issues.push((self.value_path(k), format!("{name:?} {message}")));
                None
            }
        }
    }
}

fn deaggregator(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> Option<DeAggregator> {
    use ProcessorParameterName as N;
    let kind = p.parse(N::SubRecordType, issues, SubRecordType::parse)?;
    let delimiter = p.get(N::Delimiter);
    match (kind, delimiter) {
        (None, _) => {
            p.missing(
                issues,
                "RecordDeAggregation needs a SubRecordType parameter, JSON or DELIMITED".into(),
            );
            None
        }
        (Some(SubRecordType::Json), None) => Some(DeAggregator::json()),
        (Some(SubRecordType::Json), Some((k, _))) => {
            issues.push((
                p.name_path(k),
                "Delimiter applies only to SubRecordType DELIMITED; remove it for JSON".into(),
            ));
            None
        }
        (Some(SubRecordType::Delimited), None) => {
            p.missing(
                issues,
                "SubRecordType DELIMITED needs a Delimiter parameter: the delimiter in base64 \
                 (IyMjIw== for ####)"
                    .into(),
            );
            None
        }
        (Some(SubRecordType::Delimited), Some((k, value))) => {
            match DeAggregator::delimited_base64(value) {
                Ok(d) => Some(d),
                Err(message) => {
                    issues.push((p.value_path(k), format!("Delimiter {message}")));
                    None
                }
            }
        }
    }
}

fn extractor(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> Option<MetadataExtractor> {
    use ProcessorParameterName as N;
    let query = p.parse(N::MetadataExtractionQuery, issues, |q| {
        MetadataExtractor::new(q).map_err(|e| format!("is not a valid jq query: {}", e.message))
    });
    // Absent means JQ-1.6, the only engine.
    let engine = p.parse(N::JsonParsingEngine, issues, |v| {
        if v == JQ_1_6 {
            Ok(())
        } else {
            Err(format!("must be {JQ_1_6} (the only engine Firehose has), got {v:?}"))
        }
    });
    match query? {
        Some(extractor) => engine.map(|_| extractor),
        None => {
            p.missing(
                issues,
                "MetadataExtraction needs a MetadataExtractionQuery parameter, a jq object such \
                 as {customer_id: .customer_id}"
                    .into(),
            );
            None
        }
    }
}

/// `Decompression`: whether it is valid (`CompressionFormat` GZIP, the default and only one).
fn decompression(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> bool {
    let format = p.parse(ProcessorParameterName::CompressionFormat, issues, |v| {
        if v == "GZIP" {
            Ok(())
        } else {
            Err(format!("must be GZIP (the only format Firehose decompresses), got {v:?}"))
        }
    });
    format.is_some()
}

/// `CloudWatchLogProcessing`: its `DataMessageExtraction` (`true` or `false`, default false).
fn message_extraction(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> Option<bool> {
    let extract = p.parse(ProcessorParameterName::DataMessageExtraction, issues, |v| {
        match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("must be true or false, got {v:?}")),
        }
    })?;
    Some(extract.unwrap_or(false))
}

fn append_delimiter(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> Option<AppendDelimiter> {
    let d = p.parse(ProcessorParameterName::Delimiter, issues, AppendDelimiter::from_escaped)?;
    Some(d.unwrap_or_default())
}

fn lambda_spec(p: &Params<'_>, issues: &mut Vec<ConfigIssue>) -> Option<LambdaSpec> {
    use ProcessorParameterName as N;
    let arn = p.parse(N::LambdaArn, issues, |v| {
        if v.trim().is_empty() {
            Err("must name the function, got a blank value".into())
        } else {
            Ok(v.to_owned())
        }
    });
    let retries = p.parse(N::NumberOfRetries, issues, lambda::parse_number_of_retries);
    let size = p.parse(N::BufferSizeInMBs, issues, lambda::parse_buffer_size_mbs);
    let interval =
        p.parse(N::BufferIntervalInSeconds, issues, lambda::parse_buffer_interval_seconds);
    let role = p.parse(N::RoleArn, issues, |v| Ok(v.to_owned()));
    let arn = match arn {
        Some(None) => {
            p.missing(issues, "Lambda needs a LambdaArn parameter naming the function".into());
            return None;
        }
        Some(Some(arn)) => arn,
        None => return None,
    };
    Some(LambdaSpec {
        lambda_arn: arn,
        number_of_retries: retries?.unwrap_or(lambda::DEFAULT_NUMBER_OF_RETRIES),
        buffer_size_mbs: size?.unwrap_or(lambda::DEFAULT_BUFFER_SIZE_MBS),
        buffer_interval_seconds: interval?.unwrap_or(lambda::DEFAULT_BUFFER_INTERVAL_SECONDS),
        role_arn: role?,
    })
}

#[cfg(test)]
mod tests;
