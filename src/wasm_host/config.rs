//! Configuration of the transform: the Firehose `Lambda` processor's parameters, how its
//! `LambdaArn` names a module, and Hydrant's optional sandbox limits.
//!
//! ```yaml
//! functions:                       # top level: real Lambda ARNs -> modules
//!   "arn:aws:lambda:us-east-1:123456789012:function:redact": transforms/dist/json_filter_redact.wasm
//! delivery_streams:
//!   - ExtendedS3DestinationConfiguration:
//!       ProcessingConfiguration:
//!         Enabled: true
//!         Processors:
//!           - Type: Lambda
//!             Parameters:
//!               - { ParameterName: LambdaArn, ParameterValue: "arn:aws:lambda:us-east-1:123456789012:function:redact" }
//!               - { ParameterName: NumberOfRetries, ParameterValue: "3" }
//!               - { ParameterName: BufferSizeInMBs, ParameterValue: "1" }
//!               - { ParameterName: BufferIntervalInSeconds, ParameterValue: "60" }
//!     hydrant:
//!       transform: { fuel: 10000000000, memory_mib: 64 }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::SandboxLimits;
use super::error::ResolveError;

/// Default `NumberOfRetries`.
pub const DEFAULT_NUMBER_OF_RETRIES: u32 = 3;
/// Default `BufferSizeInMBs` of the processor.
pub const DEFAULT_BUFFER_SIZE_MBS: f64 = 1.0;
/// Default `BufferIntervalInSeconds` of the processor.
pub const DEFAULT_BUFFER_INTERVAL_SECONDS: u32 = 60;

/// A processor parameter that is missing, repeated or out of range. `parameter` is the
/// Firehose `ParameterName`, so the caller can build the full config path from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct ParameterError {
    /// The offending `ParameterName`.
    pub parameter: String,
    /// What is wrong, quoting the bad value.
    pub message: String,
}

fn bad(parameter: &str, message: String) -> ParameterError {
    ParameterError { parameter: parameter.to_string(), message }
}

/// The checked parameters of a `Type: Lambda` processor.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaProcessorConfig {
    /// `LambdaArn`: which module runs; see [`resolve_module`].
    pub lambda_arn: String,
    /// `NumberOfRetries`: retries of a failed invocation (default 3); a batch is tried
    /// `number_of_retries + 1` times in all.
    pub number_of_retries: u32,
    /// `BufferSizeInMBs`: size of the batches handed to the transform, 0.2 to 3 (default 1).
    pub buffer_size_mbs: f64,
    /// `BufferIntervalInSeconds`: longest a batch waits, 0 to 900 (default 60).
    pub buffer_interval_seconds: u32,
}

impl LambdaProcessorConfig {
    /// Checks a Lambda processor's `(ParameterName, ParameterValue)` pairs. `RoleArn` is
    /// accepted and ignored; any other name is an error.
    pub fn from_parameters<'a>(
        parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ParameterError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in parameters {
            if seen.insert(name, value).is_some() {
                return Err(bad(name, "given more than once".into()));
            }
        }
        let mut lambda_arn = None;
        let mut config = LambdaProcessorConfig {
            lambda_arn: String::new(),
            number_of_retries: DEFAULT_NUMBER_OF_RETRIES,
            buffer_size_mbs: DEFAULT_BUFFER_SIZE_MBS,
            buffer_interval_seconds: DEFAULT_BUFFER_INTERVAL_SECONDS,
        };
        for (name, value) in seen {
            let v = value.trim();
            match name {
                "LambdaArn" if v.is_empty() => return Err(bad(name, "must not be blank".into())),
                "LambdaArn" => lambda_arn = Some(v.to_string()),
                "NumberOfRetries" => {
                    config.number_of_retries = v.parse().map_err(|_| {
                        bad(name, format!("must be a whole number >= 0, got {value:?}"))
                    })?;
                }
                "BufferSizeInMBs" => {
                    config.buffer_size_mbs = v
                        .parse::<f64>()
                        .ok()
                        .filter(|mb| (0.2..=3.0).contains(mb))
                        .ok_or_else(|| bad(name, format!("must be 0.2 to 3, got {value:?}")))?;
                }
                "BufferIntervalInSeconds" => {
                    config.buffer_interval_seconds = v
                        .parse::<u32>()
                        .ok()
                        .filter(|s| *s <= 900)
                        .ok_or_else(|| bad(name, format!("must be 0 to 900, got {value:?}")))?;
                }
                "RoleArn" => {}
                other => return Err(bad(other, "is not a parameter of a Lambda processor".into())),
            }
        }
        config.lambda_arn = lambda_arn.ok_or_else(|| bad("LambdaArn", "is required".into()))?;
        Ok(config)
    }

    /// `BufferSizeInMBs` in bytes (1 MB = 1 MiB, as for Firehose's buffering hints).
    pub fn buffer_size_bytes(&self) -> usize {
        (self.buffer_size_mbs * 1024.0 * 1024.0) as usize
    }

    /// How many times a batch is tried before it goes to the error output.
    pub fn max_attempts(&self) -> u32 {
        self.number_of_retries.saturating_add(1)
    }
}

/// Hydrant-only sandbox limits of a stream's transform (`hydrant: { transform: {...} }`).
/// Unset fields keep the defaults of [`SandboxLimits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformLimits {
    /// CPU budget of one invocation in fuel units, about one per WebAssembly instruction
    /// executed. Running out fails the invocation like a Lambda timeout. Default
    /// 10 000 000 000 (1 to 10 s of CPU; JSON processing takes about 150 000 000 per MB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Cap on the module's memory, in MiB, 1 to 4096. Growing past it fails the invocation.
    /// Default 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
}

impl TransformLimits {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.fuel == Some(0) {
            return Err("fuel: must be at least 1".into());
        }
        if let Some(m) = self.memory_mib {
            if !(1..=4096).contains(&m) {
                return Err(format!("memory_mib: must be 1 to 4096, got {m}"));
            }
        }
        Ok(())
    }

    /// `base` with the fields set here replaced.
    pub fn apply(&self, base: SandboxLimits) -> SandboxLimits {
        SandboxLimits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory_bytes: self.memory_mib.map_or(base.memory_bytes, |m| u64::from(m) << 20),
            ..base
        }
    }
}

/// Who wrote the stream definition a `LambdaArn` comes from, which decides what it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinedBy {
    /// The config file: the operator may name any module file.
    ConfigFile,
    /// An API client (CreateDeliveryStream, UpdateDestination): only the `functions:` the
    /// operator listed, so a client cannot make the server read a file of its choosing.
    Api,
}

/// Resolves a processor's `LambdaArn` to a module file:
///
/// 1. a key of the top-level `functions:` map (normally a real Lambda ARN, so a config
///    copied from Firehose works unchanged) gives that entry's path; an ARN with a version or
///    alias qualifier (`...:function:name:prod`) also matches the unqualified ARN;
/// 2. for [`DefinedBy::Api`], nothing else: any other value is an error;
/// 3. `file:///abs/path.wasm` is that absolute path (no percent-decoding);
/// 4. any other `arn:` value is an error (it needs a `functions:` entry);
/// 5. anything else is a path, relative to `base_dir` (the config file's directory) unless
///    absolute.
///
/// Relative paths in `functions:` are relative to `base_dir` too. The file is not opened, and
/// errors for API definitions never say anything about the file system.
pub fn resolve_module(
    lambda_arn: &str,
    functions: &BTreeMap<String, PathBuf>,
    base_dir: &Path,
    defined_by: DefinedBy,
) -> Result<PathBuf, ResolveError> {
    let arn = lambda_arn.trim();
    let found = functions.get(arn).or_else(|| unqualified(arn).and_then(|a| functions.get(a)));
    if let Some(path) = found {
        return Ok(base_dir.join(path));
    }
    if defined_by == DefinedBy::Api {
        return Err(ResolveError::NotAllowed { arn: shown(arn) });
    }
    if let Some(rest) = arn.strip_prefix("file://") {
        let path = Path::new(rest);
        if !path.is_absolute() {
            return Err(ResolveError::RelativeFileUrl { arn: arn.to_string() });
        }
        return Ok(path.to_path_buf());
    }
    if arn.starts_with("arn:") {
        return Err(ResolveError::NotInFunctions { arn: arn.to_string() });
    }
    if arn.is_empty() {
        return Err(ResolveError::Blank);
    }
    Ok(base_dir.join(arn))
}

/// A client's value, quoted and cut short, for an error message.
fn shown(value: &str) -> String {
    const MAX: usize = 128;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// `arn:aws:lambda:region:account:function:name:qualifier` without `:qualifier`.
fn unqualified(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(8, ':').collect();
    if parts.len() == 8 && parts[2] == "lambda" && parts[5] == "function" {
        let cut = arn.len() - parts[7].len() - 1;
        Some(&arn[..cut])
    } else {
        None
    }
}
