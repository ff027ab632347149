//! Record processing (`ProcessingConfiguration`, its processors and parameters) and dynamic
//! partitioning.

use serde::{Deserialize, Serialize};

use super::RetryOptions;

/// Record processing (`ProcessingConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Whether the processors run. Default false.
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The processors, applied in order.
    #[serde(rename = "Processors", default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
}

impl ProcessingConfig {
    /// Whether the processors run and one of them is `Decompression` (CloudWatch Logs
    /// records).
    pub fn decompresses(&self) -> bool {
        self.enabled == Some(true)
            && self.processors.iter().any(|p| p.processor_type == ProcessorType::Decompression)
    }
}

/// One processing step (`Processors[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    /// What the step does.
    #[serde(rename = "Type")]
    pub processor_type: ProcessorType,
    /// The step's settings.
    #[serde(rename = "Parameters", default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ProcessorParameter>,
}

/// Kind of processing step (`Processors[i].Type`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorType {
    /// Split KPL-aggregated or JSON-concatenated records into their sub-records.
    RecordDeAggregation,
    /// Decompress gzip'd records (CloudWatch Logs subscriptions).
    Decompression,
    /// Extract log events from CloudWatch Logs records.
    CloudWatchLogProcessing,
    /// Transform records with a function (in Hydrant: a WebAssembly module).
    Lambda,
    /// Compute partition keys with a jq query (dynamic partitioning).
    MetadataExtraction,
    /// Append a delimiter (default newline) to every record.
    AppendDelimiterToRecord,
}

/// One processor setting (`Parameters[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorParameter {
    /// Which setting.
    #[serde(rename = "ParameterName")]
    pub parameter_name: ProcessorParameterName,
    /// Its value, 1 to 5120 characters, not blank.
    #[serde(rename = "ParameterValue")]
    pub parameter_value: String,
}

/// Name of a processor setting (`ParameterName`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorParameterName {
    /// Function to invoke (Lambda processor).
    LambdaArn,
    /// Retries of a failed invocation.
    NumberOfRetries,
    /// jq query producing the partition keys (MetadataExtraction).
    MetadataExtractionQuery,
    /// JSON parser for the query, `JQ-1.6`.
    JsonParsingEngine,
    /// Role for the invocation. Ignored by Hydrant.
    RoleArn,
    /// Size of the batch handed to the function, in MB.
    BufferSizeInMBs,
    /// Age of the batch handed to the function, in seconds.
    BufferIntervalInSeconds,
    /// `JSON` or `DELIMITED` (RecordDeAggregation).
    SubRecordType,
    /// Delimiter (RecordDeAggregation / AppendDelimiterToRecord).
    Delimiter,
    /// Compression of incoming records (Decompression).
    CompressionFormat,
    /// Whether only the message of CloudWatch log events is kept.
    DataMessageExtraction,
}

/// Dynamic partitioning (`DynamicPartitioningConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicPartitioningConfig {
    /// How long delivery to a partition's prefix is retried.
    #[serde(rename = "RetryOptions", default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// Whether dynamic partitioning is on. Default false.
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}
