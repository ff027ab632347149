//! Ceilings on what API clients may ask for (`limits:`).
//!
//! A stream created with `CreateDeliveryStream` chooses how many shards it has (each one a log
//! writer, a cutter and an uploader thread, two more with a source-record backup, plus open
//! files), how much CPU and memory its transform may use per shard, how many partition
//! buffers it keeps open and how large each buffer grows. Without bounds, ten calls could
//! start two thousand threads. The operator bounds each of these here; a request above a
//! ceiling is refused before anything is opened, with a message that names the field, the
//! ceiling and the setting to raise.
//!
//! Streams of the config file are the operator's own: the per-stream ceilings do not apply to
//! them (their fields keep their own ranges), but they count towards `max_shards`, and the file
//! is refused when its streams alone exceed it.

use serde::{Deserialize, Serialize};

use super::model::{Config, DeliveryStreamConfig, HydrantStreamConfig};
use super::Issue;
use crate::wasm_host::{SandboxLimits, TransformLimits};

/// The `limits:` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most streams that may exist through `CreateDeliveryStream` at once (streams being
    /// deleted count until they are gone). 0 turns stream creation through the API off.
    /// Default 50, Firehose's own default quota.
    #[serde(default = "defaults::max_streams")]
    pub max_streams: u32,

    /// Most shards (`hydrant.shards`) one API stream may have, 1..=64. A stream that does not
    /// ask gets the default of 2, or this ceiling when it is lower. Default 16.
    #[serde(default = "defaults::max_shards_per_stream")]
    pub max_shards_per_stream: u32,

    /// Most shards of all streams together, the config file's included: each shard runs
    /// three threads (five with a source-record backup). `CreateDeliveryStream` is refused
    /// beyond it, and so is a config file whose streams alone have more. Default 256.
    #[serde(default = "defaults::max_shards")]
    pub max_shards: u32,

    /// Largest `hydrant.transform.fuel` (CPU budget per invocation) an API stream may ask
    /// for. Default 10 000 000 000, the default budget.
    #[serde(default = "defaults::max_transform_fuel")]
    pub max_transform_fuel: u64,

    /// Largest `hydrant.transform.memory_mib` an API stream may ask for, 1..=4096; each shard
    /// has its own instance. Default 64, the default cap.
    #[serde(default = "defaults::max_transform_memory_mib")]
    pub max_transform_memory_mib: u32,

    /// Largest `NumberOfRetries` of an API stream's Lambda processor, 0..=300 (each retry can
    /// spend the whole fuel budget again while the shard waits). Default 10.
    #[serde(default = "defaults::max_transform_retries")]
    pub max_transform_retries: u32,

    /// Largest `hydrant.max_partitions` (open partition buffers per shard) an API stream may
    /// ask for. Default 500, Firehose's default quota of active partitions.
    #[serde(default = "defaults::max_partitions")]
    pub max_partitions: usize,

    /// Largest `BufferingHints.SizeInMBs` (of the destination, and of a source-record backup)
    /// an API stream may ask for, 1..=128; a shard holds up to this much per open partition
    /// buffer. Default 128, Firehose's maximum.
    #[serde(default = "defaults::max_buffer_size_mib")]
    pub max_buffer_size_mib: u32,
}

mod defaults {
    pub fn max_streams() -> u32 {
        50
    }
    pub fn max_shards_per_stream() -> u32 {
        16
    }
    pub fn max_shards() -> u32 {
        256
    }
    pub fn max_transform_fuel() -> u64 {
        crate::wasm_host::DEFAULT_FUEL
    }
    pub fn max_transform_memory_mib() -> u32 {
        (crate::wasm_host::DEFAULT_MEMORY_BYTES >> 20) as u32
    }
    pub fn max_transform_retries() -> u32 {
        10
    }
    pub fn max_partitions() -> usize {
        super::super::defaults::max_partitions()
    }
    pub fn max_buffer_size_mib() -> u32 {
        128
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_streams: defaults::max_streams(),
            max_shards_per_stream: defaults::max_shards_per_stream(),
            max_shards: defaults::max_shards(),
            max_transform_fuel: defaults::max_transform_fuel(),
            max_transform_memory_mib: defaults::max_transform_memory_mib(),
            max_transform_retries: defaults::max_transform_retries(),
            max_partitions: defaults::max_partitions(),
            max_buffer_size_mib: defaults::max_buffer_size_mib(),
        }
    }
}

/// Whether a request above a ceiling asks for too many of something (Firehose's
/// `LimitExceededException`) or for a value out of range (`InvalidArgumentException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Streams or shards.
    Count,
    /// Fuel, memory, retries, partitions, buffer sizes.
    Value,
}

/// One field of a stream above its ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExcess {
    pub kind: LimitKind,
    /// The field (`hydrant.shards`) and what to do.
    pub issue: Issue,
    /// The field's value, in the unit of its ceiling.
    pub value: u64,
}

fn excess(
    kind: LimitKind,
    path: String,
    value: u64,
    what: String,
    limit: String,
    setting: &str,
) -> LimitExcess {
    LimitExcess {
        kind,
        value,
        issue: Issue::new(
            path,
            format!(
                "{what} is above this server's limit of {limit} (limits.{setting}); ask for at \
                 most {limit}, or have the operator raise limits.{setting} in the server's config \
                 file"
            ),
        ),
    }
}

impl LimitsConfig {
    /// The ranges of the block itself.
    pub(crate) fn check(&self, config: &Config, issues: &mut Vec<Issue>) {
        let mut bad = |field: &str, message: String| {
            issues.push(Issue::new(format!("limits.{field}"), message));
        };
        if !(1..=64).contains(&self.max_shards_per_stream) {
            bad(
                "max_shards_per_stream",
                format!(
                    "must be 1..=64 (the range of hydrant.shards), got {}",
                    self.max_shards_per_stream
                ),
            );
        }
        if self.max_shards == 0 {
            bad("max_shards", "must be at least 1, got 0".into());
        }
        if self.max_transform_fuel == 0 {
            bad("max_transform_fuel", "must be at least 1, got 0".into());
        }
        if !(1..=4096).contains(&self.max_transform_memory_mib) {
            bad(
                "max_transform_memory_mib",
                format!(
                    "must be 1..=4096 (the range of hydrant.transform.memory_mib), got {}",
                    self.max_transform_memory_mib
                ),
            );
        }
        if self.max_transform_retries > 300 {
            bad(
                "max_transform_retries",
                format!(
                    "must be 0..=300 (Firehose's range of NumberOfRetries), got {}",
                    self.max_transform_retries
                ),
            );
        }
        if self.max_partitions == 0 {
            bad("max_partitions", "must be at least 1, got 0".into());
        }
        if !(1..=128).contains(&self.max_buffer_size_mib) {
            bad(
                "max_buffer_size_mib",
                format!(
                    "must be 1..=128 (Firehose's range of SizeInMBs), got {}",
                    self.max_buffer_size_mib
                ),
            );
        }
        let total: u64 = config.delivery_streams.iter().map(|s| u64::from(s.hydrant.shards)).sum();
        if total > u64::from(self.max_shards) {
            bad(
                "max_shards",
                format!(
                    "the streams of this file have {total} shards in total, more than \
                     limits.max_shards ({}) allows; raise limits.max_shards or give the streams \
                     fewer hydrant.shards",
                    self.max_shards
                ),
            );
        }
    }

    /// Gives an API stream that left `hydrant.shards`, `hydrant.max_partitions` or the
    /// transform's fuel and memory at their defaults the ceiling instead, where the default is
    /// above it. (A value equal to the default counts as left out: the request cannot tell.)
    pub fn apply_to_defaults(&self, hydrant: &mut HydrantStreamConfig) {
        let defaults = HydrantStreamConfig::default();
        if hydrant.shards == defaults.shards {
            hydrant.shards = hydrant.shards.min(self.max_shards_per_stream);
        }
        if hydrant.max_partitions == defaults.max_partitions {
            hydrant.max_partitions = hydrant.max_partitions.min(self.max_partitions);
        }
        let sandbox = SandboxLimits::default();
        let fuel_cap = self.max_transform_fuel;
        let memory_cap = self.max_transform_memory_mib;
        let default_mib = (sandbox.memory_bytes >> 20) as u32;
        let mut transform = hydrant.transform.unwrap_or_default();
        if transform.fuel.is_none() && sandbox.fuel > fuel_cap {
            transform.fuel = Some(fuel_cap);
        }
        if transform.memory_mib.is_none() && default_mib > memory_cap {
            transform.memory_mib = Some(memory_cap);
        }
        if transform != TransformLimits::default() {
            hydrant.transform = Some(transform);
        }
    }

    /// The fields of an API stream (normalised) above their ceilings. Paths start at the
    /// stream, as `CreateDeliveryStream` spells its members.
    pub fn excesses(&self, stream: &DeliveryStreamConfig) -> Vec<LimitExcess> {
        use LimitKind::{Count, Value};
        let mut out = Vec::new();
        let hydrant = &stream.hydrant;
        if hydrant.shards > self.max_shards_per_stream {
            out.push(excess(
                Count,
                "hydrant.shards".into(),
                u64::from(hydrant.shards),
                format!("{} shards", hydrant.shards),
                format!("{} shards per stream", self.max_shards_per_stream),
                "max_shards_per_stream",
            ));
        }
        if hydrant.max_partitions > self.max_partitions {
            out.push(excess(
                Value,
                "hydrant.max_partitions".into(),
                hydrant.max_partitions as u64,
                format!("{} partitions", hydrant.max_partitions),
                self.max_partitions.to_string(),
                "max_partitions",
            ));
        }
        let sandbox = hydrant.transform.unwrap_or_default().apply(SandboxLimits::default());
        if sandbox.fuel > self.max_transform_fuel {
            out.push(excess(
                Value,
                "hydrant.transform.fuel".into(),
                sandbox.fuel,
                format!("{} fuel", sandbox.fuel),
                self.max_transform_fuel.to_string(),
                "max_transform_fuel",
            ));
        }
        let memory_mib = sandbox.memory_bytes >> 20;
        if memory_mib > u64::from(self.max_transform_memory_mib) {
            out.push(excess(
                Value,
                "hydrant.transform.memory_mib".into(),
                memory_mib,
                format!("{memory_mib} MiB"),
                format!("{} MiB", self.max_transform_memory_mib),
                "max_transform_memory_mib",
            ));
        }
        if let Some((path, retries)) = lambda_retries(stream) {
            if retries > self.max_transform_retries {
                out.push(excess(
                    Value,
                    path,
                    u64::from(retries),
                    format!("{retries} retries"),
                    self.max_transform_retries.to_string(),
                    "max_transform_retries",
                ));
            }
        }
        for (path, size_mib) in buffer_sizes(stream) {
            if size_mib > u64::from(self.max_buffer_size_mib) {
                out.push(excess(
                    Value,
                    path,
                    size_mib,
                    format!("{size_mib} MiB"),
                    format!("{} MiB", self.max_buffer_size_mib),
                    "max_buffer_size_mib",
                ));
            }
        }
        out
    }
}

/// The buffer sizes (MiB) the stream's delivery and source-record backup use, with the path of
/// the `SizeInMBs` that sets each (the default of 5 when it is left out).
fn buffer_sizes(stream: &DeliveryStreamConfig) -> Vec<(String, u64)> {
    let kind = stream.destination().kind();
    let (block, hints, backup) = (kind.config_member(), kind.hints_member(), kind.backup_member());
    let mut out =
        vec![(format!("{block}.{hints}.SizeInMBs"), stream.s3().buffer_size_bytes() >> 20)];
    if let Some(target) = stream.backup_target() {
        out.push((
            format!("{block}.{backup}.BufferingHints.SizeInMBs"),
            target.buffer_size_bytes() >> 20,
        ));
    }
    out
}

/// The Lambda processor's `NumberOfRetries`, with its path, when the stream has one.
fn lambda_retries(stream: &DeliveryStreamConfig) -> Option<(String, u32)> {
    let processing = stream.s3().processing_configuration.as_ref()?;
    let block = stream.destination().kind().config_member();
    processing.processors.iter().enumerate().find_map(|(i, p)| {
        if p.processor_type != super::model::ProcessorType::Lambda {
            return None;
        }
        p.parameters.iter().enumerate().find_map(|(j, parameter)| {
            let retries = (parameter.parameter_name
                == super::model::ProcessorParameterName::NumberOfRetries)
                .then(|| parameter.parameter_value.trim().parse::<u32>().ok())??;
            Some((
                format!(
                    "{block}.ProcessingConfiguration.Processors[{i}].Parameters[{j}].ParameterValue \
                     (NumberOfRetries)"
                ),
                retries,
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn stream(yaml: &str) -> DeliveryStreamConfig {
        let text = format!("delivery_streams:\n{yaml}");
        let config = crate::config::parse(&text, Path::new("/etc/hydrant")).unwrap();
        let mut stream = config.delivery_streams.into_iter().next().unwrap();
        stream.normalize();
        stream
    }

    const S3: &str = "  - DeliveryStreamName: s
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
";

    fn paths(excesses: &[LimitExcess]) -> Vec<(&str, LimitKind)> {
        excesses.iter().map(|e| (e.issue.path.as_str(), e.kind)).collect()
    }

    #[test]
    fn the_defaults_admit_a_default_stream() {
        assert!(LimitsConfig::default().excesses(&stream(S3)).is_empty());
        let config = crate::config::embedded_default();
        let mut issues = Vec::new();
        config.limits.check(&config, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn every_field_above_its_ceiling_is_named_with_the_setting_to_raise() {
        let s = stream(
            "  - DeliveryStreamName: s
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
      BufferingHints: { SizeInMBs: 100, IntervalInSeconds: 60 }
      S3BackupMode: Enabled
      S3BackupConfiguration:
        BucketARN: arn:aws:s3:::backup
        BufferingHints: { SizeInMBs: 128, IntervalInSeconds: 60 }
      ProcessingConfiguration:
        Enabled: true
        Processors:
          - Type: Lambda
            Parameters:
              - { ParameterName: LambdaArn, ParameterValue: m.wasm }
              - { ParameterName: NumberOfRetries, ParameterValue: \"100\" }
    hydrant:
      shards: 64
      max_partitions: 100000
      transform: { fuel: 1000000000000000, memory_mib: 4096 }
",
        );
        let limits = LimitsConfig { max_buffer_size_mib: 64, ..LimitsConfig::default() };
        let found = limits.excesses(&s);
        use LimitKind::{Count, Value};
        assert_eq!(
            paths(&found),
            vec![
                ("hydrant.shards", Count),
                ("hydrant.max_partitions", Value),
                ("hydrant.transform.fuel", Value),
                ("hydrant.transform.memory_mib", Value),
                (
                    "ExtendedS3DestinationConfiguration.ProcessingConfiguration.Processors[0].\
                     Parameters[1].ParameterValue (NumberOfRetries)",
                    Value
                ),
                ("ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs", Value),
                (
                    "ExtendedS3DestinationConfiguration.S3BackupConfiguration.BufferingHints.SizeInMBs",
                    Value
                ),
            ]
        );
        let memory = &found[3].issue.message;
        assert!(memory.contains("4096 MiB") && memory.contains("limit of 64 MiB"), "{memory}");
        assert!(memory.contains("limits.max_transform_memory_mib"), "{memory}");
        let shards = &found[0].issue.message;
        assert!(
            shards.contains("64 shards") && shards.contains("16 shards per stream"),
            "{shards}"
        );
    }

    #[test]
    fn buffers_of_other_destinations_are_checked_where_they_are_set() {
        let http = stream(
            "  - DeliveryStreamName: h
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: { Url: \"https://example.com/in\" }
      BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 60 }
      S3BackupMode: AllData
      S3Configuration: { BucketARN: arn:aws:s3:::raw }
",
        );
        let limits = LimitsConfig { max_buffer_size_mib: 4, ..LimitsConfig::default() };
        assert_eq!(
            paths(&limits.excesses(&http)),
            vec![
                ("HttpEndpointDestinationConfiguration.BufferingHints.SizeInMBs", LimitKind::Value),
                // Left out: the default of 5 MiB is above 4.
                (
                    "HttpEndpointDestinationConfiguration.S3Configuration.BufferingHints.SizeInMBs",
                    LimitKind::Value
                ),
            ]
        );
    }

    #[test]
    fn defaults_above_a_lowered_ceiling_become_the_ceiling() {
        let limits = LimitsConfig {
            max_shards_per_stream: 1,
            max_partitions: 10,
            max_transform_fuel: 1000,
            max_transform_memory_mib: 16,
            ..LimitsConfig::default()
        };
        let mut s = stream(S3);
        limits.apply_to_defaults(&mut s.hydrant);
        assert_eq!(s.hydrant.shards, 1);
        assert_eq!(s.hydrant.max_partitions, 10);
        assert_eq!(
            s.hydrant.transform,
            Some(TransformLimits { fuel: Some(1000), memory_mib: Some(16) })
        );
        assert!(limits.excesses(&s).is_empty());
        // What a stream asks for is kept (and checked).
        let mut s =
            stream(&format!("{S3}    hydrant: {{ shards: 4, transform: {{ memory_mib: 8 }} }}\n"));
        limits.apply_to_defaults(&mut s.hydrant);
        assert_eq!(s.hydrant.shards, 4);
        assert_eq!(s.hydrant.transform.unwrap().memory_mib, Some(8));
        // The default ceilings leave a default stream as it is.
        let mut s = stream(S3);
        LimitsConfig::default().apply_to_defaults(&mut s.hydrant);
        assert_eq!(s.hydrant, HydrantStreamConfig::default());
    }
}
