//! Opening a key-value bucket that every node of a cluster shares: the log's registry, leases
//! and keys (`store.rs`), the shared control plane (`control/shared.rs`) and the Kinesis
//! streams' catalog (`kinesis/catalog/kv.rs`).

use async_nats::jetstream::{self, kv, stream};

/// Opens the bucket `name`, making it (replicated `replicas` times, on file, keeping `history`
/// values of each key) when no node did yet; of two nodes making it at once, the loser opens
/// the winner's. The error is the creation's, as text.
pub async fn open_bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    history: i64,
) -> Result<kv::Store, String> {
    if let Ok(bucket) = js.get_key_value(name).await {
        return Ok(bucket);
    }
    let config = kv::Config {
        bucket: name.to_string(),
        history,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(bucket) => Ok(bucket),
        // Another node made it meanwhile.
        Err(created) => js.get_key_value(name).await.map_err(|_| created.to_string()),
    }
}
