//! Splitting and merging a stream's shards (`SplitShard`, `MergeShards`, `UpdateShardCount`,
//! and the on-demand scaler), within `limits:`.

use super::{KinesisError, KinesisStreams};
use crate::log::{Reshard, ShardId};

impl KinesisStreams {
    /// Splits or merges shards of a stream; returns the new shards.
    pub async fn reshard(&self, name: &str, change: Reshard) -> Result<Vec<ShardId>, KinesisError> {
        let stream = self.get(name).await?;
        let _changing = self.changing.lock().await;
        if let Reshard::Split { .. } = change {
            self.check_shard_limits(name, stream.open_shard_count() + 1)?;
        }
        let children = stream.log.reshard(change).await?;
        tracing::info!(stream = name, ?change, ?children, "resharded Kinesis stream");
        Ok(children)
    }

    /// Takes a stream to `target` open shards of equal ranges (`UNIFORM_SCALING`) with splits
    /// and merges; returns the open shard count before.
    pub async fn scale(&self, name: &str, target: u32) -> Result<u32, KinesisError> {
        let stream = self.get(name).await?;
        let _changing = self.changing.lock().await;
        let current = stream.open_shard_count();
        if target > current.saturating_mul(2) || target < current.div_ceil(2) {
            return Err(KinesisError::Invalid(format!(
                "TargetShardCount {target} must be between half ({}) and double ({}) the \
                 stream's {current} open shards",
                current.div_ceil(2),
                current.saturating_mul(2)
            )));
        }
        self.check_shard_limits(name, target)?;
        crate::log::scale(stream.log.as_ref(), target).await?;
        tracing::info!(stream = name, from = current, to = target, "scaled Kinesis stream");
        Ok(current)
    }

    /// Whether stream `name` may have `open` open shards under `limits:`.
    pub(super) fn check_shard_limits(&self, name: &str, open: u32) -> Result<(), KinesisError> {
        let limits = self.limits;
        if open > limits.max_shards_per_stream {
            return Err(KinesisError::LimitExceeded(format!(
                "{open} open shards is more than a stream may have here (limits.\
                 max_shards_per_stream {}); raise the limit",
                limits.max_shards_per_stream
            )));
        }
        let others: u32 =
            (self.all().iter()).filter(|s| s.name != name).map(|s| s.open_shard_count()).sum();
        if others + open > limits.max_shards {
            return Err(KinesisError::LimitExceeded(format!(
                "{open} open shards would make {} shards of Kinesis streams, more than \
                 limits.max_shards {}; delete streams or raise the limit",
                others + open,
                limits.max_shards
            )));
        }
        Ok(())
    }
}
