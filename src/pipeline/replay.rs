//! A replay's workers: one stream's records of a time range, read through a
//! [`RangeView`](crate::log::range::RangeView) of its log, delivered again by a pipeline built
//! like a stream's (its own definition with another `Prefix`, or another stream's), under the
//! replay's own consumer, whose checkpoints make it resumable.

use std::sync::Arc;

use super::{BuildContext, Pipeline, StartError};
use crate::config::{Config, DeliveryStreamConfig};
use crate::delivery::Workers;
use crate::log::StreamLog;
use crate::plan::StreamPlan;
use crate::registry::Owner;
use crate::telemetry::Metrics;

/// What a replay's workers are built from.
pub struct ReplayOpening<'a> {
    pub config: &'a Config,
    /// The definition that delivers the replay (checked: `plan` is its plan).
    pub stream: &'a DeliveryStreamConfig,
    pub plan: &'a StreamPlan,
    pub owner: Owner,
    pub build: &'a BuildContext,
    /// The stream whose records are replayed: object ids derive from its name and the records'
    /// positions, as its own delivery's do, so running the replay again names every object the
    /// same, and a replay into another stream never takes the name of one of that stream's own
    /// objects.
    pub source: &'a str,
    /// The version object names carry.
    pub version: u64,
    /// The replay's consumer of the source's log.
    pub consumer: &'a str,
}

/// Starts one worker per shard of `view` the replay's consumer is granted, now and later.
pub fn start_replay(
    opening: ReplayOpening<'_>,
    view: &Arc<dyn StreamLog>,
    metrics: &Metrics,
) -> Result<Workers, StartError> {
    let ReplayOpening { config, stream, plan, owner, build, source, version, consumer } = opening;
    let pipeline = Pipeline::prepare(config, stream, plan, owner, build)?;
    let name = stream.delivery_stream_name.clone();
    let assignments = view
        .assignments(consumer)
        .map_err(|source| StartError::Consume { stream: name.clone(), source })?;
    // Each worker builds its stages when it starts (a replay has no start-up to report to).
    let factory = pipeline.delivery_factory(source, view, version, metrics, Vec::new());
    let mut workers = Workers::new();
    if let Err(source) = workers.consume(consumer, assignments, factory) {
        workers.abandon();
        return Err(StartError::Threads { stream: name, source });
    }
    Ok(workers)
}
