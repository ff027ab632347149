//! Hot reload (SIGHUP): the config file is read and validated again, and the difference is
//! applied to the streams it owns:
//!
//! - a stream added to the file is opened;
//! - a stream removed from the file is closed to puts, drained (what it buffered is
//!   delivered, up to `shutdown_timeout_seconds`) and stopped; its log stays in the data
//!   directory, so adding it back resumes it;
//! - a stream whose definition changed is replaced: new workers with the next version on the
//!   same log. A change of the object store it uses (or of `functions:` when it runs a
//!   transform) replaces it too, keeping its version.
//!
//! - a stream whose only change is `hydrant.shards` keeps its version and workers: its log is
//!   split or merged in place, and the workers are granted each new shard once its parents
//!   are delivered.
//!
//! Settings that cannot change while serving (`listen`, `admin_listen`, `http`, `data_dir`,
//! `storage`, `region`, `account_id`, `auth`) are reported as needing a restart and keep their
//! running values. A change of the encryption of a stream's log at rest
//! applies from the next appended record (records already in the log stay readable). A file that does
//! not validate, or that conflicts with the streams created through the API, is rejected as a
//! whole and the running configuration stays.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{ControlError, ControlPlane};
use crate::config::{Config, DeliveryStreamConfig, Issue};
use crate::pipeline::{open_stream, Opening, StartError};
use crate::registry::Owner;

use super::delete::Removal;
use super::update::Source;
use super::{issues_message, persist};
use crate::plan::{check_stream, plan_stream, ServerPlan, StreamPlan};

/// Why a new config file was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// It conflicts with streams created through the API (paths name the file or the
    /// `api-streams/` file concerned).
    #[error("{}", issues_message(.0))]
    Conflicts(Vec<Issue>),
}

/// Why a reload did not apply the change of one stream (it keeps running as it was).
#[derive(Debug, thiserror::Error)]
pub enum NotApplied {
    /// An added stream has the name of a removed one that is still draining.
    #[error(
        "a stream of this name is still being removed (draining); reload again once it is gone"
    )]
    StillRemoving,
    /// A changed stream's new pipeline could not be prepared or started.
    #[error(transparent)]
    Replace(ControlError),
    /// A changed or added stream fails its checks with the settings that stay live.
    #[error("{}", issues_message(.0))]
    Invalid(Vec<Issue>),
    /// An added stream's version file cannot be read or written.
    #[error("{0}")]
    Version(std::io::Error),
    /// An added stream cannot start.
    #[error(transparent)]
    Start(StartError),
    /// The task that opened an added stream ended without an answer (it panicked).
    #[error("{0}")]
    Task(tokio::task::JoinError),
}

/// One outcome of a reload, logged one line each.
#[derive(Debug)]
pub enum Change {
    Added {
        stream: String,
    },
    Removed {
        stream: String,
    },
    Replaced {
        stream: String,
        version: u64,
    },
    /// Only `hydrant.shards` changed: the log was split or merged in place, and the stream
    /// runs on with its version and workers.
    Resharded {
        stream: String,
        shards: u32,
    },
    /// A setting that takes effect only after a restart.
    NeedsRestart {
        setting: String,
    },
    /// A change that could not be applied; the stream keeps running as it was (or, for an
    /// added stream, is not running).
    Failed {
        stream: String,
        error: NotApplied,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added { stream } => write!(f, "delivery stream {stream} added"),
            Change::Removed { stream } => write!(
                f,
                "delivery stream {stream} removed: it accepts no more records, delivers what it \
                 buffered and stops (its log is kept)"
            ),
            Change::Replaced { stream, version } => {
                write!(f, "delivery stream {stream} changed: restarted with version {version}")
            }
            Change::Resharded { stream, shards } => write!(
                f,
                "delivery stream {stream} resharded to {shards} shards (its version and \
                 delivery workers stay)"
            ),
            Change::NeedsRestart { setting } => write!(
                f,
                "{setting} changed in the config file but cannot change while serving; it takes \
                 effect at the next restart"
            ),
            Change::Failed { stream, error } => {
                write!(f, "delivery stream {stream}: change not applied: {error}")
            }
        }
    }
}

/// What a reload does, decided before anything changes.
#[derive(Debug, Default)]
pub struct Plan {
    pub added: Vec<DeliveryStreamConfig>,
    pub removed: Vec<String>,
    /// New definition, and whether the stream's own block changed (the version goes up).
    pub changed: Vec<(DeliveryStreamConfig, bool)>,
    /// Streams whose only change is `hydrant.shards`: resharded in place. Not a new version,
    /// so objects keep their names, and on a cluster, nodes that reload at different moments
    /// name every object alike.
    pub resharded: Vec<DeliveryStreamConfig>,
    /// Changes that cannot be applied.
    pub refused: Vec<Change>,
}

/// The server settings of `new` with the ones that need a restart taken from `current`, and
/// a [`Change::NeedsRestart`] for each of those that differ.
pub fn live_settings(current: &Config, new: &Config) -> (Config, Vec<Change>) {
    let mut effective = new.clone();
    let mut notes = Vec::new();
    let mut keep = |setting: &str, differs: bool| {
        if differs {
            notes.push(Change::NeedsRestart { setting: setting.to_string() });
        }
    };
    keep("listen", new.listen != current.listen);
    keep("data_dir", new.data_dir != current.data_dir);
    keep("storage", new.storage != current.storage);
    keep("region", new.region != current.region);
    keep("account_id", new.account_id != current.account_id);
    keep("auth", new.auth != current.auth);
    keep("admin_listen", new.admin_listen != current.admin_listen);
    keep("http", new.http != current.http);
    effective.listen = current.listen;
    effective.data_dir = current.data_dir.clone();
    effective.storage = current.storage.clone();
    effective.region = current.region.clone();
    effective.account_id = current.account_id.clone();
    effective.auth = current.auth.clone();
    effective.admin_listen = current.admin_listen;
    effective.http = current.http.clone();
    (effective, notes)
}

/// Compares the running config-file streams with the new file's.
pub fn plan(
    current: &Config,
    running: &BTreeMap<String, DeliveryStreamConfig>,
    new: &Config,
) -> Plan {
    let mut plan = Plan::default();
    let wanted: BTreeMap<&str, &DeliveryStreamConfig> =
        new.delivery_streams.iter().map(|s| (s.delivery_stream_name.as_str(), s)).collect();
    for name in running.keys() {
        if !wanted.contains_key(name.as_str()) {
            plan.removed.push(name.clone());
        }
    }
    for (name, stream) in wanted {
        let Some(old) = running.get(name) else {
            plan.added.push(stream.clone());
            continue;
        };
        let own = !persist::same_but_shards(old, stream);
        let store = &stream.hydrant.object_store;
        let store_changed = current.object_stores.get(store) != new.object_stores.get(store);
        let transform = stream.s3().processing_configuration.as_ref().is_some_and(|p| {
            p.processors.iter().any(|p| p.processor_type == crate::config::ProcessorType::Lambda)
        });
        let functions_changed = transform && current.functions != new.functions;
        if !(own || store_changed || functions_changed) {
            if old.hydrant.shards != stream.hydrant.shards {
                plan.resharded.push(stream.clone());
            }
            continue;
        }
        plan.changed.push((stream.clone(), own));
    }
    plan
}

impl ControlPlane {
    /// Applies a loaded and checked config file; returns what was done, one entry per
    /// change. Rejects the whole file when it conflicts with streams created through the API.
    pub async fn reload(self: &Arc<Self>, new: ServerPlan) -> Result<Vec<Change>, ReloadError> {
        let _guard = self.lock.lock().await;
        let current = self.config();
        let (new, plans) = new.into_parts();
        let (effective, mut changes) = live_settings(&current, &new);
        // The file's streams were planned with the file's settings. When one that needs a
        // restart differs, the running value stays, and the streams are planned again with it.
        let mut planned = StreamPlans {
            plans: if changes.is_empty() { plans } else { HashMap::new() },
            server: effective.clone(),
        };

        // The API's streams must still be valid and keep their names.
        let mut conflicts = Vec::new();
        for stream in self.registry.all().into_iter().filter(|s| s.owner == Owner::Api) {
            let label =
                persist::api_file(std::path::Path::new(""), &stream.name).display().to_string();
            if let Some(i) = effective
                .delivery_streams
                .iter()
                .position(|s| s.delivery_stream_name == stream.name)
            {
                conflicts.push(Issue::new(
                    format!("delivery_streams[{i}].DeliveryStreamName"),
                    format!(
                        "{:?} is the name of a stream created through the API ({label}); \
                         rename this one or delete that stream first",
                        stream.name
                    ),
                ));
            }
            conflicts.extend(
                check_stream(&effective, &stream.config(), &label).err().unwrap_or_default(),
            );
        }
        if !conflicts.is_empty() {
            return Err(ReloadError::Conflicts(conflicts));
        }

        let running: BTreeMap<String, DeliveryStreamConfig> = self
            .registry
            .all()
            .into_iter()
            .filter(|s| s.owner == Owner::ConfigFile && !s.is_deleting())
            .map(|s| (s.name.clone(), (*s.config()).clone()))
            .collect();
        let plan = plan(&current, &running, &effective);
        changes.extend(plan.refused);
        self.set_config(effective.clone());

        for name in plan.removed {
            if let Some(stream) = self.registry.get(&name) {
                stream.close().await;
                self.spawn_removal(stream, Removal::Unconfigure);
                changes.push(Change::Removed { stream: name });
            }
        }
        for (config, own) in plan.changed {
            let name = config.delivery_stream_name.clone();
            let Some(stream) = self.registry.get(&name) else { continue };
            let version = stream.version() + u64::from(own);
            let plan = match planned.take(&config) {
                Ok(plan) => plan,
                Err(issues) => {
                    changes
                        .push(Change::Failed { stream: name, error: NotApplied::Invalid(issues) });
                    continue;
                }
            };
            match self.replace(&stream, config, plan, version, None, Source::Here).await {
                Ok(()) => changes.push(Change::Replaced { stream: name, version }),
                Err(e) => {
                    changes.push(Change::Failed { stream: name, error: NotApplied::Replace(e) })
                }
            }
        }
        for config in plan.resharded {
            let name = config.delivery_stream_name.clone();
            let Some(stream) = self.registry.get(&name) else { continue };
            let shards = config.hydrant.shards;
            match crate::pipeline::rescale(stream.log.as_ref(), &name, shards).await {
                Ok(()) => {
                    // New shards are granted to the running workers as their parents finish.
                    let mut definition = stream.definition();
                    definition.config = Arc::new(config);
                    stream.set_definition(definition);
                    changes.push(Change::Resharded { stream: name, shards });
                }
                Err(e) => changes.push(Change::Failed {
                    stream: name,
                    error: NotApplied::Replace(ControlError::StartFailed(e)),
                }),
            }
        }
        for config in plan.added {
            let name = config.delivery_stream_name.clone();
            if self.registry.get(&name).is_some() {
                changes.push(Change::Failed { stream: name, error: NotApplied::StillRemoving });
                continue;
            }
            let this = self.clone();
            let server = self.config();
            let plan = planned.take(&config);
            let opened = tokio::task::spawn_blocking(move || {
                let plan = plan.map_err(NotApplied::Invalid)?;
                let version =
                    this.definitions.file_stream_version(&config).map_err(NotApplied::Version)?;
                let opening = Opening {
                    config: &server,
                    plan: &plan,
                    build: &this.build,
                    stream: &config,
                    owner: Owner::ConfigFile,
                    version,
                    created_at: crate::clock::now_ms() as f64 / 1000.0,
                    last_update: None,
                };
                open_stream(opening, &this.logs, &this.metrics).map_err(NotApplied::Start)
            })
            .await;
            match opened {
                Ok(Ok(stream)) => {
                    self.registry.insert(Arc::new(stream));
                    changes.push(Change::Added { stream: name });
                }
                Ok(Err(error)) => changes.push(Change::Failed { stream: name, error }),
                Err(e) => changes.push(Change::Failed { stream: name, error: NotApplied::Task(e) }),
            }
        }
        Ok(changes)
    }
}

/// The plans of a reloaded file's streams, or, when none may be used, what to plan them with.
struct StreamPlans {
    plans: HashMap<String, StreamPlan>,
    /// The settings the streams run with.
    server: Config,
}

impl StreamPlans {
    /// The plan of `stream`, one of the file's streams.
    fn take(&mut self, stream: &DeliveryStreamConfig) -> Result<StreamPlan, Vec<Issue>> {
        match self.plans.remove(&stream.delivery_stream_name) {
            Some(plan) => Ok(plan),
            None => plan_stream(&self.server, stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::plan::parse(yaml, std::path::Path::new("/tmp")).expect("valid").into_config()
    }

    fn stream(name: &str, prefix: &str, shards: u32) -> String {
        format!(
            "  - DeliveryStreamName: {name}\n    ExtendedS3DestinationConfiguration:\n      \
             BucketARN: arn:aws:s3:::b\n      Prefix: {prefix}\n    hydrant: {{ shards: {shards} }}\n"
        )
    }

    fn running(c: &Config) -> BTreeMap<String, DeliveryStreamConfig> {
        c.delivery_streams.iter().map(|s| (s.delivery_stream_name.clone(), s.clone())).collect()
    }

    #[test]
    fn a_plan_adds_removes_and_replaces_by_name() {
        let old = config(&format!(
            "delivery_streams:\n{}{}{}",
            stream("keep", "k/", 1),
            stream("change", "c/", 1),
            stream("drop", "d/", 1)
        ));
        let new = config(&format!(
            "delivery_streams:\n{}{}{}",
            stream("keep", "k/", 1),
            stream("change", "c2/", 1),
            stream("add", "a/", 1)
        ));
        let plan = plan(&old, &running(&old), &new);
        assert_eq!(plan.removed, vec!["drop".to_string()]);
        assert_eq!(
            plan.added.iter().map(|s| s.delivery_stream_name.as_str()).collect::<Vec<_>>(),
            ["add"]
        );
        assert_eq!(plan.changed.len(), 1);
        assert_eq!(plan.changed[0].0.delivery_stream_name, "change");
        assert!(plan.changed[0].1, "its own block changed: the version goes up");
        assert!(plan.refused.is_empty());
    }

    #[test]
    fn a_changed_object_store_replaces_its_streams_without_a_new_version() {
        let streams = format!(
            "delivery_streams:\n{}",
            stream("s", "p/", 1)
                .replace("hydrant: { shards: 1 }", "hydrant: { shards: 1, object_store: local }",)
        );
        let old =
            config(&format!("object_stores:\n  local: {{ type: local, root: /tmp/a }}\n{streams}"));
        let new =
            config(&format!("object_stores:\n  local: {{ type: local, root: /tmp/b }}\n{streams}"));
        let plan = plan(&old, &running(&old), &new);
        assert_eq!(plan.changed.len(), 1);
        assert!(!plan.changed[0].1);
    }

    #[test]
    fn a_shard_count_change_alone_reshards_in_place_and_with_another_change_replaces() {
        let old = config(&format!("delivery_streams:\n{}", stream("s", "p/", 1)));
        let new = config(&format!("delivery_streams:\n{}", stream("s", "p/", 2)));
        let only = plan(&old, &running(&old), &new);
        assert!(only.refused.is_empty() && only.changed.is_empty());
        assert_eq!(only.resharded.len(), 1, "not a new version");
        let both = config(&format!("delivery_streams:\n{}", stream("s", "q/", 2)));
        let both = plan(&old, &running(&old), &both);
        assert!(both.resharded.is_empty());
        assert_eq!(both.changed.len(), 1);
        assert!(both.changed[0].1, "its own block changed: the version goes up");
    }

    #[test]
    fn settings_that_need_a_restart_keep_their_running_values() {
        let old = config("listen: 127.0.0.1:4000\nshutdown_timeout_seconds: 5\n");
        let new = config("listen: 127.0.0.1:4001\nshutdown_timeout_seconds: 9\n");
        let (effective, notes) = live_settings(&old, &new);
        assert_eq!(effective.listen, old.listen);
        assert_eq!(effective.shutdown_timeout_seconds, 9);
        assert!(
            matches!(&notes[..], [Change::NeedsRestart { setting }] if setting == "listen"),
            "{notes:?}"
        );
    }
}
