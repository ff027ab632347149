//! When a closed shard expires: Kinesis' shards go OPEN -> CLOSED -> EXPIRED, and an expired
//! shard is no longer listed (`ListShards`, `DescribeStream`). A closed shard expires once its
//! last record is older than the stream's retention period: every record of it has aged out
//! then. That record's arrival never changes once the shard is closed, so it is read once per
//! shard (a few entries back from the end) and remembered.
//!
//! A closed shard whose records the log no longer holds (retention let them go before anyone
//! asked) is expired too. One that never held a record has no last arrival: it stays listed,
//! since when it closed is not recorded (looked at again at most once a minute).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::log::{
    Entry, ReadError, ReadFrom, ReadLimit, ShardId, ShardInfo, ShardState, StreamLog,
};

/// Entries read back from a closed shard's end at first; each further try reads this many
/// times more (seals sit between records).
const FIRST_LOOK_BACK: u64 = 16;
/// Most entries one look back reads.
const MOST_LOOK_BACK: u64 = 4096;

impl super::KinesisStream {
    /// Its shards but the expired ones: what `ListShards` and `DescribeStream` list.
    pub async fn listed_shards(&self) -> Result<Vec<ShardInfo>, ReadError> {
        let hours = self.settings().retention_hours;
        self.expiry.listed(self.log.as_ref(), hours, crate::clock::now_ms()).await
    }
}

/// How long a closed shard without a last arrival is not looked at again.
const LOOK_AGAIN_MS: i64 = 60_000;

/// The last arrival of each closed shard of one stream, once known.
#[derive(Debug, Default)]
pub struct Expiry {
    last_arrivals: Mutex<BTreeMap<ShardId, LastArrival>>,
}

#[derive(Debug, Clone, Copy)]
enum LastArrival {
    Known(i64),
    /// None found when this node last looked (at this time).
    Unknown(i64),
}

impl Expiry {
    /// The shards of `log` that are not expired at `now_ms` under `retention_hours`.
    pub async fn listed(
        &self,
        log: &dyn StreamLog,
        retention_hours: u32,
        now_ms: i64,
    ) -> Result<Vec<ShardInfo>, ReadError> {
        let period_ms = i64::from(retention_hours) * 3_600_000;
        let mut listed = Vec::new();
        for shard in log.shards() {
            let ShardState::Closed { end } = shard.state else {
                listed.push(shard);
                continue;
            };
            let known = self.lock().get(&shard.id).copied();
            let last = match known {
                Some(LastArrival::Known(last)) => Some(last),
                Some(LastArrival::Unknown(at)) if now_ms - at < LOOK_AGAIN_MS => None,
                _ => {
                    let last = last_arrival(log, shard.id, end).await?;
                    let found = last.map_or(LastArrival::Unknown(now_ms), LastArrival::Known);
                    self.lock().insert(shard.id, found);
                    last
                }
            };
            if last.is_none_or(|last| last + period_ms >= now_ms) {
                listed.push(shard);
            }
        }
        Ok(listed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ShardId, LastArrival>> {
        self.last_arrivals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The arrival of the last record of the closed `shard` that ends at `end`, read a little way
/// back from the end (further each time nothing but seals is found); `i64::MIN` when the log
/// let go of every entry it held.
async fn last_arrival(
    log: &dyn StreamLog,
    shard: ShardId,
    end: u64,
) -> Result<Option<i64>, ReadError> {
    let mut back = FIRST_LOOK_BACK;
    loop {
        let from = end.saturating_sub(back);
        // Trimmed there: this look reads from the oldest record the log holds, the last one.
        let (mut reader, oldest) = match log.reader(shard, ReadFrom::Seq(from)).await {
            Err(ReadError::Trimmed { .. }) => (log.reader(shard, ReadFrom::Oldest).await?, true),
            other => (other?, false),
        };
        // Positions start at 0 or 1: past 1, the shard held entries, all of them let go.
        if oldest && reader.position() >= end && end > 1 {
            return Ok(Some(i64::MIN));
        }
        let limit = ReadLimit { entries: back as usize + 1, bytes: usize::MAX };
        let batch = tokio::task::spawn_blocking(move || reader.read(limit))
            .await
            .map_err(|e| ReadError::Unavailable(crate::log::Cause::new(e)))??;
        let last = (batch.entries.iter().rev()).find_map(|entry| match entry {
            Entry::Record(record) => Some(record.arrival_ms),
            _ => None,
        });
        if last.is_some() || oldest || from == 0 || back >= MOST_LOOK_BACK {
            return Ok(last);
        }
        back = (back * FIRST_LOOK_BACK).min(MOST_LOOK_BACK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Append, DiskBudget, EmbeddedLog, LogOptions, Reshard, Route};
    use bytes::Bytes;

    const HOUR_MS: i64 = 3_600_000;

    #[tokio::test]
    async fn a_closed_shard_is_listed_until_its_last_record_is_past_the_retention_period() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 2, &LogOptions::default(), &DiskBudget::new(None))
            .unwrap();
        let records = (0..40)
            .map(|i| Append { data: Bytes::from(vec![i as u8; 64]), route: Route::HashKey(1) });
        assert!(log.append(records.collect()).await.iter().all(Result::is_ok));
        let written = crate::clock::now_ms();
        // Shard 0 held records; shard 1 closes empty.
        log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 100 }).await.unwrap();
        log.reshard(Reshard::Split { shard: ShardId(1), at: (1 << 127) + 5 }).await.unwrap();
        let expiry = Expiry::default();
        let ids = |shards: Vec<ShardInfo>| shards.iter().map(|s| s.id.0).collect::<Vec<_>>();
        let now = ids(expiry.listed(&log, 24, written).await.unwrap());
        assert_eq!(now, vec![0, 1, 2, 3, 4, 5], "closed shards are listed within the period");
        let later = ids(expiry.listed(&log, 24, written + 25 * HOUR_MS).await.unwrap());
        assert_eq!(later, vec![1, 2, 3, 4, 5], "shard 0 expired; the empty one stays");
        let longer = ids(expiry.listed(&log, 48, written + 25 * HOUR_MS).await.unwrap());
        assert_eq!(longer, vec![0, 1, 2, 3, 4, 5], "a longer retention keeps it");
    }
}
