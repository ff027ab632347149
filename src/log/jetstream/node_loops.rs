//! The two tasks of a node (`node.rs`): the watch of the leases bucket and the rounds.

use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt;

use super::node::Node;

/// Follows the leases bucket until the node is dropped, starting again after an error.
pub(super) async fn watch(node: Weak<Node>) {
    loop {
        let watched = match node.upgrade() {
            Some(node) => node.leases.watch_with_history(">").await,
            None => return,
        };
        let mut watched = match watched {
            Ok(watched) => watched,
            Err(e) => {
                tracing::debug!(error = %e, "cannot watch the leases bucket now");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let next = tokio::time::timeout(Duration::from_secs(1), watched.next()).await;
            let Some(node) = node.upgrade() else { return };
            match next {
                Err(_) => continue,
                Ok(Some(Ok(entry))) => node.observe(entry),
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "the watch of the leases bucket failed");
                    break;
                }
                Ok(None) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs rounds until the node is dropped.
pub(super) async fn rounds(node: Weak<Node>) {
    loop {
        let every = match node.upgrade() {
            Some(node) => node.timing.round,
            None => return,
        };
        let jitter = rand::random_range(0.8..1.2);
        let sleep = tokio::time::sleep(every.mul_f64(jitter));
        let woken = async {
            match node.upgrade() {
                Some(node) => node.wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = woken => {}
        }
        let Some(node) = node.upgrade() else { return };
        node.round().await;
    }
}
