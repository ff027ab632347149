//! Running one replay: checking what it asks for, building its pipeline on a view of the
//! stream's log, waiting until every shard of the range is delivered, then letting the log
//! forget the replay's consumer.

use std::sync::Arc;
use std::time::Duration;

use super::job::{ReplayRequest, ReplayState, ReplayTarget};
use super::{ReplayError, Replays};
use crate::clock::now_ms;
use crate::config::DeliveryStreamConfig;
use crate::control::{issues_message, ControlPlane};
use crate::delivery::StopMode;
use crate::log::range::{RangeView, TimeRange};
use crate::log::StreamLog;
use crate::pipeline::{start_replay, ReplayOpening};
use crate::plan::StreamPlan;
use crate::registry::{DeliveryStream, Owner};

/// How often a running replay looks whether it is finished.
const POLL: Duration = Duration::from_millis(250);

/// What delivers a replay: the definition, its plan and owner, and the version names carry.
struct Delivering {
    config: DeliveryStreamConfig,
    plan: StreamPlan,
    owner: Owner,
    version: u64,
}

/// Checks `request` and returns the version its objects are named with.
pub(super) async fn check(
    control: &ControlPlane,
    request: &ReplayRequest,
) -> Result<u64, ReplayError> {
    let invalid = |field, message: String| ReplayError::Invalid { field, message };
    if request.from_ms > request.to_ms {
        return Err(invalid("From", "From is after To; give the range's start first".into()));
    }
    if request.to_ms > now_ms() {
        return Err(invalid(
            "To",
            "To is in the future: a replay re-delivers records the stream already holds; give a \
             time that has passed"
                .into(),
        ));
    }
    let source = (control.registry().get(&request.stream))
        .ok_or_else(|| ReplayError::StreamNotFound(request.stream.clone()))?;
    Ok(delivering(control, &source, &request.target).await?.version)
}

/// What delivers a replay of `source` to `target`.
async fn delivering(
    control: &ControlPlane,
    source: &DeliveryStream,
    target: &ReplayTarget,
) -> Result<Delivering, ReplayError> {
    let invalid = |field, message: String| ReplayError::Invalid { field, message };
    let (config, owner, version) = match target {
        ReplayTarget::Prefix(prefix) => {
            let mut config = (*source.config()).clone();
            let Some(s3) = config.extended_s3_destination_configuration.as_mut() else {
                return Err(invalid(
                    "Prefix",
                    format!(
                        "delivery stream {} does not deliver to S3, so it has no prefix to \
                         replace; replay into another stream with TargetDeliveryStreamName \
                         (--to-stream)",
                        source.name
                    ),
                ));
            };
            if prefix.is_empty() || s3.prefix.as_deref() == Some(prefix.as_str()) {
                return Err(invalid(
                    "Prefix",
                    format!(
                        "{prefix:?} is not a new prefix of delivery stream {}: a replay writes \
                         beside what was delivered; give another, e.g. \"replay/{}/\"",
                        source.name, source.name
                    ),
                ));
            }
            s3.prefix = Some(prefix.clone());
            (config, source.owner, source.version())
        }
        ReplayTarget::Stream(name) => {
            if *name == source.name {
                return Err(invalid(
                    "TargetDeliveryStreamName",
                    "is the replayed stream itself; to replay into its own destination give a \
                     new Prefix instead"
                        .into(),
                ));
            }
            let target = (control.registry().get(name))
                .ok_or_else(|| ReplayError::StreamNotFound(name.clone()))?;
            ((*target.config()).clone(), target.owner, target.version())
        }
    };
    let server = control.config();
    let checked = config.clone();
    let plan = tokio::task::spawn_blocking(move || crate::plan::plan_stream(&server, &checked))
        .await
        .map_err(|e| invalid("DeliveryStreamName", e.to_string()))?;
    let field = match target {
        ReplayTarget::Prefix(_) => "Prefix",
        ReplayTarget::Stream(_) => "TargetDeliveryStreamName",
    };
    let plan = plan.map_err(|issues| invalid(field, issues_message(&issues)))?;
    Ok(Delivering { config, plan, owner, version })
}

/// Runs replay `id` until it is finished, fails, or the server stops; stores how it ended.
pub(super) async fn run(replays: Arc<Replays>, id: String) {
    let outcome = run_job(&replays, &id).await;
    let Some(mut job) = replays.job(&id) else { return };
    match outcome {
        // Stopped with the server: it stays running on disk and resumes at the next start.
        Ok(None) => return,
        Ok(Some((records, bytes, shards))) => {
            job.state = ReplayState::Done;
            (job.records, job.bytes, job.shards) = (records, bytes, shards);
            tracing::info!(replay = %id, records, bytes, "replay finished");
        }
        Err(message) => {
            tracing::warn!(replay = %id, error = %message, "replay failed");
            job.state = ReplayState::Failed;
            job.error = Some(message);
        }
    }
    job.finished_ms = Some(now_ms());
    if let Err(e) = replays.save(job) {
        tracing::error!(replay = %id, error = %e, "cannot store how the replay ended");
    }
}

/// The records, bytes and shards replayed, `None` when the server stopped first.
async fn run_job(replays: &Arc<Replays>, id: &str) -> Result<Option<(u64, u64, usize)>, String> {
    let job = replays.job(id).ok_or("the replay is gone")?;
    let control = &replays.control;
    let source = (control.registry().get(&job.stream))
        .ok_or_else(|| format!("delivery stream {} no longer exists", job.stream))?;
    let delivering = delivering(control, &source, &job.target).await.map_err(|e| e.to_string())?;
    let range = TimeRange { from_ms: job.from_ms, to_ms: job.to_ms };
    let view = RangeView::new(source.log.clone(), range);
    let progress = view.progress();
    let view: Arc<dyn StreamLog> = Arc::new(view);
    replays.track(id, progress.clone());
    let consumer = job.consumer();
    let workers = {
        let (control, view, consumer) = (control.clone(), view.clone(), consumer.clone());
        let source_name = job.stream.clone();
        let version = job.version;
        tokio::task::spawn_blocking(move || {
            let opening = ReplayOpening {
                config: &control.config(),
                stream: &delivering.config,
                plan: &delivering.plan,
                owner: delivering.owner,
                build: control.build_context(),
                source: &source_name,
                version,
                consumer: &consumer,
            };
            start_replay(opening, &view, control.metrics())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    let mut stop = replays.stop.subscribe();
    let metrics = control.metrics().clone();
    let finished = loop {
        metrics.replay_progress(&job.stream, id, progress.summary().fraction);
        if progress.finished() {
            metrics.replay_progress(&job.stream, id, 1.0);
            break Ok(true);
        }
        if *stop.borrow() {
            break Ok(false);
        }
        let current = control.registry().get(&job.stream);
        if current.is_none_or(|s| s.is_deleting()) {
            break Err(format!("delivery stream {} was deleted during the replay", job.stream));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    workers.stop(StopMode::Stop, deadline, tokio::sync::watch::channel(false).1).await;
    if !finished? {
        return Ok(None);
    }
    // The range is delivered: the log need not keep anything for the replay any more (once
    // the view's assignments are gone, no lease of the consumer is taken again).
    tokio::task::yield_now().await;
    if let Err(e) = view.forget(&consumer).await {
        tracing::warn!(replay = %id, error = %e, "cannot drop the replay's checkpoints");
    }
    let summary = progress.summary();
    Ok(Some((summary.records, summary.bytes, summary.shards_total)))
}
