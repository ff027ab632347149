//! `hydrant.retention_hours`: delivery streams keep delivered records for a while so that they
//! can be replayed. Retention is one more consumer of each stream's log
//! ([`DELIVERY_RETENTION_CONSUMER`]) that lets go of records older than the period
//! ([`crate::log::retention`]); the log deletes what every consumer passed, so nothing
//! undelivered ever goes. When the log comes close to full ([`Pressure`]), retention lets go
//! of every delivered record at once: keeping old records for replays never makes producers
//! wait.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::control::ControlPlane;
use crate::log::retention::{Retention, DELIVERY_RETENTION_CONSUMER, EVERY};
use crate::log::StreamLog;

/// Whether a stream's log is close to full (the composition root knows the limits: the disk
/// budget and a disk that refuses writes, JetStream's bytes per shard).
pub type Pressure = Arc<dyn Fn(&dyn StreamLog) -> bool + Send + Sync>;

/// Keeps every delivery stream's retention until `stop` is set.
pub async fn keep_retention(
    control: Arc<ControlPlane>,
    pressure: Pressure,
    mut stop: watch::Receiver<bool>,
) {
    let mut held: BTreeMap<String, (Arc<dyn StreamLog>, Retention)> = BTreeMap::new();
    let mut released: BTreeSet<String> = BTreeSet::new();
    let mut last_expiry = tokio::time::Instant::now();
    loop {
        // New streams are registered within a second, so retention holds their records from
        // (nearly) the first; records are let go once a minute.
        let expire = last_expiry.elapsed() >= EVERY;
        if expire {
            last_expiry = tokio::time::Instant::now();
        }
        let streams = control.registry().all();
        held.retain(|name, _| streams.iter().any(|s| s.name == *name));
        for stream in streams {
            let config = stream.config();
            // A Kinesis stream's log keeps its own retention period.
            if config.kinesis_stream_source_configuration.is_some() || stream.is_deleting() {
                continue;
            }
            let period = config.hydrant.retention();
            if period.is_zero() {
                held.remove(&stream.name);
                if released.insert(stream.name.clone()) {
                    // A period set before may have registered retention: it holds nothing now.
                    if let Err(e) = stream.log.forget(DELIVERY_RETENTION_CONSUMER).await {
                        tracing::warn!(stream = %stream.name, error = %e, "cannot drop retention");
                    }
                }
                continue;
            }
            released.remove(&stream.name);
            if !held.get(&stream.name).is_some_and(|(log, _)| Arc::ptr_eq(log, &stream.log)) {
                match Retention::for_consumer(stream.log.as_ref(), DELIVERY_RETENTION_CONSUMER) {
                    Ok(r) => {
                        held.insert(stream.name.clone(), (stream.log.clone(), r));
                    }
                    Err(e) => {
                        tracing::warn!(stream = %stream.name, error = %e, "cannot keep retention");
                        continue;
                    }
                }
            }
            let Some((log, retention)) = held.get_mut(&stream.name) else { continue };
            let full = pressure(log.as_ref());
            // Retention holds the records of every shard granted to it from the first second
            // (in a cluster, leases move between nodes).
            if let Err(e) = retention.adopt().await {
                tracing::warn!(stream = %stream.name, error = %e, "cannot keep retention");
            }
            let cutoff = if full {
                now_ms()
            } else if expire {
                now_ms() - period.as_millis() as i64
            } else {
                continue;
            };
            match retention.expire(log.as_ref(), cutoff).await {
                Ok(0) => {}
                Ok(expired) => tracing::debug!(stream = %stream.name, expired, full,
                    "retention let go of delivered records"),
                Err(e) => tracing::warn!(stream = %stream.name, error = %e,
                    "retention could not advance; it tries again"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
