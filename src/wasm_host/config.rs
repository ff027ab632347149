//! Configuration of the transform: how the Firehose `Lambda` processor's `LambdaArn` names a
//! module, and Hydrant's optional sandbox limits. The processor's parameters are parsed by
//! `processors::lambda` (`LambdaSpec`), the one parser of them.
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
