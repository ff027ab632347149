//! The `Lambda` processor's parameters (the transform itself runs elsewhere).

use std::time::Duration;

/// `NumberOfRetries` when not given (Firehose's default).
pub const DEFAULT_NUMBER_OF_RETRIES: u32 = 3;
/// Largest accepted `NumberOfRetries`. Firehose does not check a range at config time; Hydrant
/// caps it so that a typo cannot make a failing batch retry for days.
pub const MAX_NUMBER_OF_RETRIES: u32 = 300;
/// `BufferSizeInMBs` when not given.
pub const DEFAULT_BUFFER_SIZE_MBS: f64 = 1.0;
/// Accepted `BufferSizeInMBs` range (Firehose: 0.2 to 3 MB).
pub const BUFFER_SIZE_MBS_RANGE: std::ops::RangeInclusive<f64> = 0.2..=3.0;
/// `BufferIntervalInSeconds` when not given.
pub const DEFAULT_BUFFER_INTERVAL_SECONDS: u32 = 60;
/// Accepted `BufferIntervalInSeconds` range (current Firehose docs: 0 to 900).
pub const BUFFER_INTERVAL_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 0..=900;

/// The `Lambda` processor's settings, parsed and range-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaSpec {
    /// `LambdaArn`, as given (which function/module it names is resolved elsewhere).
    pub lambda_arn: String,
    /// `NumberOfRetries`: retries of a failed invocation (so `n + 1` attempts).
    pub number_of_retries: u32,
    /// `BufferSizeInMBs` as given, 0.2..=3.
    pub buffer_size_mbs: f64,
    /// `BufferIntervalInSeconds`, 0..=900.
    pub buffer_interval_seconds: u32,
    /// `RoleArn`, accepted and ignored.
    pub role_arn: Option<String>,
}

impl LambdaSpec {
    /// Batch size handed to the function, in bytes (1 MB = 1 MiB, as for Firehose's
    /// buffering hints).
    pub fn buffer_size_bytes(&self) -> u64 {
        (self.buffer_size_mbs * 1024.0 * 1024.0).round() as u64
    }

    /// Batch age handed to the function.
    pub fn buffer_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.buffer_interval_seconds))
    }
}

/// Parse `NumberOfRetries`.
pub fn parse_number_of_retries(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n <= MAX_NUMBER_OF_RETRIES => Ok(n),
        _ => {
            Err(format!("must be a whole number from 0 to {MAX_NUMBER_OF_RETRIES}, got {value:?}"))
        }
    }
}

/// Parse `BufferSizeInMBs` (a decimal such as `0.2`, `1` or `3`).
pub fn parse_buffer_size_mbs(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(mb) if BUFFER_SIZE_MBS_RANGE.contains(&mb) => Ok(mb),
        _ => Err(format!("must be a number of MB from 0.2 to 3, got {value:?}")),
    }
}

/// Parse `BufferIntervalInSeconds`.
pub fn parse_buffer_interval_seconds(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(s) if BUFFER_INTERVAL_SECONDS_RANGE.contains(&s) => Ok(s),
        _ => Err(format!("must be a whole number of seconds from 0 to 900, got {value:?}")),
    }
}
