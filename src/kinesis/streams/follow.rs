//! Following the changes other servers make to the catalog, when it is shared (a cluster):
//! each change is applied to this server's open streams under `changing`, so that any node
//! serves every stream within moments of its change.
//!
//! Following is idempotent: a change this server made itself, or one seen twice (a watch
//! starts again with every stream stored), finds the stream as it says and does nothing. A
//! stream marked deleted is closed here; its log is the deleter's to delete (deletions of one
//! log from several nodes at once trip over each other), or, if the deleter crashed, the next
//! node's that starts or creates the name again. Each stream's log has a name of its own in a
//! cluster, so a node that follows a deletion late never touches a stream created since under
//! the same name. Known leak: a node that opens a stream's log after its deleter deleted it
//! (a create and a delete moments apart) makes an empty log nobody deletes.

use std::sync::Arc;

use super::{settings_of, KinesisStreams};
use crate::kinesis::catalog::{CatalogChange, StoredStream};

impl KinesisStreams {
    /// Follows the catalog's changes until [`close`](Self::close); nothing to do for a catalog
    /// no other server shares.
    pub fn start_following(self: &Arc<Self>) {
        let Some(mut changes) = self.catalog.watch() else { return };
        let streams = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                let Some(streams) = streams.upgrade() else { return };
                let _changing = streams.changing.lock().await;
                match change {
                    CatalogChange::Stored(stored) => streams.follow_stored(stored).await,
                    CatalogChange::Removed(name) => drop(streams.follow_gone(&name).await),
                }
            }
        });
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }

    /// Makes this server's copy of `stored`'s stream what the catalog holds; the caller holds
    /// `changing`.
    pub(super) async fn follow_stored(&self, stored: StoredStream) {
        let name = stored.name.clone();
        let open = self.lock().get(&name).cloned();
        if let Some(stream) = &open {
            if !stream.stored().same_stream(&stored) {
                // Another stream of the name: the open one was deleted and another created
                // while this node did not look, or the change is older than the open one.
                if !self.follow_gone(&name).await {
                    return;
                }
            } else if stored.deleting {
                self.follow_removed(&stream.stored()).await;
                return;
            } else {
                let (settings, next) = (stream.settings(), settings_of(&stored));
                if settings == next {
                    return;
                }
                if settings.encryption_key != next.encryption_key {
                    let switched = match self.at_rest(next.encryption_key.as_deref()) {
                        Ok(keys) => {
                            stream.log.switch_encryption(keys).await.map_err(|e| e.to_string())
                        }
                        Err(why) => Err(why),
                    };
                    if let Err(why) = switched {
                        tracing::error!(stream = %name, error = %why,
                            "another node switched a Kinesis stream's encryption at rest and \
                             this node cannot follow (give every node the same \
                             storage.encryption keys); it keeps its old setting");
                        return;
                    }
                }
                *stream.lock_settings() = next;
                tracing::info!(stream = %name, "Kinesis stream changed by another node: following");
                return;
            }
        }
        if stored.deleting {
            return; // its deleter finishes it
        }
        match self.open_stream(&stored).await {
            Ok(stream) => {
                self.lock().insert(name.clone(), Arc::new(stream));
                tracing::info!(stream = %name, "Kinesis stream created by another node: serving it here too");
            }
            Err(e) => tracing::error!(stream = %name, error = %e,
                "cannot open a Kinesis stream another node created; it is not served here"),
        }
    }

    /// Closes the stream `name` this node has open unless the catalog still has it (a change
    /// seen late must not close a stream created since); whether it was closed. The caller
    /// holds `changing`.
    async fn follow_gone(&self, name: &str) -> bool {
        let Some(open) = self.lock().get(name).map(|s| s.stored()) else { return true };
        match self.catalog.find(name).await {
            Ok(Some(stored)) if stored.same_stream(&open) && !stored.deleting => false,
            Ok(_) => {
                self.follow_removed(&open).await;
                true
            }
            Err(e) => {
                tracing::warn!(stream = %name, error = %e,
                    "cannot look up a Kinesis stream another node changed; the upkeep looks again");
                false
            }
        }
    }

    /// Closes `open` (a stream this node has open), since the catalog no longer has it or
    /// another node deletes it; the caller holds `changing`.
    pub(super) async fn follow_removed(&self, open: &StoredStream) {
        let stream = {
            let mut streams = self.lock();
            match streams.get(&open.name) {
                Some(s) if s.stored().same_stream(open) => streams.remove(&open.name),
                _ => None,
            }
        };
        let Some(stream) = stream else { return };
        stream.log.close().await;
        tracing::info!(stream = %open.name, "Kinesis stream deleted by another node: no longer served");
    }

    /// Closes the streams the catalog no longer lists (deleted while this node's watch was
    /// broken); done by the upkeep now and then.
    pub(super) async fn forget_removed(&self) {
        if !self.catalog.shared() {
            return;
        }
        // Under `changing`: a stream created here meanwhile is listed.
        let _changing = self.changing.lock().await;
        let listed = match self.catalog.load().await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the Kinesis streams' catalog");
                return;
            }
        };
        for open in self.all().iter().map(|s| s.stored()) {
            if !listed.iter().any(|s| s.same_stream(&open)) {
                self.follow_removed(&open).await;
            }
        }
    }
}
