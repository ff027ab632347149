//! Following the changes other servers make to the streams of the API, when the definitions
//! are shared ([`DefinitionStore::watch`](super::DefinitionStore::watch), a cluster): each
//! change is applied to this server's registry, under the control plane's lock, so that any
//! node answers for every stream within moments of its change.
//!
//! Following is idempotent: a change this server made itself, or one seen twice (a watch
//! starts again with every stream stored), finds the registry as it says and does nothing.
//! A stream's version only goes up: a change with the version this server runs, or an older
//! one, updates no pipeline.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::delete::Removal;
use super::encryption::switch_log_encryption;
use super::persist::StoredStream;
use super::update::Source;
use super::{ControlPlane, SharedChange};
use crate::plan::check_stream;
use crate::registry::Owner;

impl ControlPlane {
    /// Follows the shared definitions' changes until the control plane shuts down; nothing
    /// to do for a store no other server shares.
    pub fn follow_shared_changes(self: &Arc<Self>) {
        let Some(changes) = self.definitions.watch() else { return };
        let this = self.clone();
        let handle = tokio::spawn(async move { this.follow(changes).await });
        *self.follower.lock().expect("not poisoned") = Some(handle);
    }

    async fn follow(self: Arc<Self>, mut changes: mpsc::UnboundedReceiver<SharedChange>) {
        let mut stopping = self.abort.subscribe();
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = stopping.changed() => None,
            };
            let Some(change) = change else { return };
            if *self.abort.borrow() {
                return;
            }
            match change {
                SharedChange::Stored(stored) => self.follow_stored(*stored).await,
                SharedChange::Removed(name) => self.follow_removed(&name).await,
            }
        }
    }

    /// Makes this server's copy of `stored`'s stream what the shared store holds.
    async fn follow_stored(self: &Arc<Self>, stored: StoredStream) {
        let _guard = self.lock.lock().await;
        let name = stored.config.delivery_stream_name.clone();
        let Some(stream) = self.registry.get(&name) else {
            if stored.deleting {
                return; // being deleted elsewhere: nothing to stop here
            }
            let this = self.clone();
            let label = format!("the shared definition of {name}");
            let opened =
                tokio::task::spawn_blocking(move || this.open_stored(&label, &stored)).await;
            match opened {
                Ok(Ok(stream)) => {
                    self.registry.insert(Arc::new(stream));
                    tracing::info!(stream = %name, "delivery stream created by another node: serving it here too");
                }
                Ok(Err(e)) => tracing::error!(stream = %name, error = %e,
                    "cannot open a delivery stream another node created; it is not served here"),
                Err(e) => {
                    tracing::error!(stream = %name, error = %e, "opening a delivery stream failed")
                }
            }
            return;
        };
        if stream.owner == Owner::ConfigFile {
            tracing::error!(stream = %name,
                "another node created a stream through the API with the name of a stream of this \
                 node's config file; this node serves its config file's stream: rename one");
            return;
        }
        if stream.is_deleting() {
            return; // its removal is under way here already
        }
        if stored.deleting {
            stream.close().await;
            self.spawn_removal(stream, Removal::Followed);
            return;
        }
        let definition = stream.definition();
        if stored.version > definition.version {
            let plan = match check_stream(&self.config(), &stored.config, "") {
                Ok(plan) => plan,
                Err(issues) => {
                    tracing::error!(stream = %name, issues = %super::issues_message(&issues),
                        "another node changed a delivery stream to a definition this node refuses; it keeps the old one");
                    return;
                }
            };
            let (version, last_update) = (stored.version, stored.last_update);
            let followed = self
                .replace(&stream, stored.config, plan, version, last_update, Source::Shared)
                .await;
            match followed {
                Ok(()) => tracing::info!(stream = %name, version,
                    "delivery stream changed by another node: following"),
                Err(e) => tracing::error!(stream = %name, version, error = %e,
                    "cannot follow a change another node made to a delivery stream"),
            }
        } else if stored.version == definition.version && stored.config != *definition.config {
            // Same version, other members: tags, or encryption at rest (which keep the
            // version). A switch of encryption applies to this node's appends too.
            let switched = stored.config.delivery_stream_encryption_configuration_input
                != definition.config.delivery_stream_encryption_configuration_input;
            if switched {
                let keys = match self.log_keys(&stored.config).await {
                    Ok(keys) => keys,
                    Err(e) => {
                        tracing::error!(stream = %name, error = %e,
                            "another node switched the log's encryption at rest, and this node \
                             cannot load the key: give every node the same key files");
                        return;
                    }
                };
                if let Err(e) = switch_log_encryption(stream.as_ref(), &keys).await {
                    tracing::error!(stream = %name, error = %e,
                        "cannot follow a switch of the log's encryption at rest");
                    return;
                }
                tracing::info!(stream = %name, encrypted = keys.encrypt,
                    "encryption at rest switched by another node: following");
            }
            let mut definition = definition;
            definition.config = Arc::new(stored.config);
            definition.last_update = stored.last_update;
            stream.set_definition(definition);
        }
    }

    /// A stream whose deletion finished elsewhere: stop it here if it still runs.
    async fn follow_removed(self: &Arc<Self>, name: &str) {
        let _guard = self.lock.lock().await;
        let Some(stream) = self.registry.get(name) else { return };
        if stream.owner == Owner::Api && !stream.is_deleting() {
            stream.close().await;
            self.spawn_removal(stream, Removal::Followed);
        }
    }
}
