//! Following the keys of a key-value bucket that several nodes write: what the shared control
//! plane (`control/shared.rs`) and the Kinesis streams' catalog (`kinesis/catalog/kv.rs`) do
//! to learn what other nodes changed.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio::sync::mpsc;

/// Sends `change_of` of every entry of `bucket` under `filter` (those it answers `Some` for),
/// from the values stored now on, until the receiver is dropped. A broken watch is made again,
/// starting again with every value stored then: following must be idempotent, and then what a
/// broken watch missed cannot matter. `what` names the keys in logs.
pub fn follow_keys<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    bucket: kv::Store,
    filter: String,
    what: &'static str,
    change_of: fn(&kv::Entry) -> Option<T>,
) -> mpsc::UnboundedReceiver<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    runtime.spawn(async move {
        while !tx.is_closed() {
            let mut watch = match bucket.watch_with_history(filter.clone()).await {
                Ok(watch) => watch,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch {what}, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(entry) = watch.next().await {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        tracing::warn!(error = %e, "watching {what} failed, watching again");
                        break;
                    }
                };
                let Some(change) = change_of(&entry) else { continue };
                if tx.send(change).is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    rx
}
