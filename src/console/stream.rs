//! `GET /console/api/streams/{kind}/{name}`: one stream in detail. A delivery stream: its
//! definition (secrets hidden), per-shard backlog, checkpoint and (in a cluster) lease owner,
//! its last delivered objects, its last error-output documents with the failed records, and
//! its transform's counts. A Kinesis stream: its settings and shards.

use std::collections::BTreeMap;

use serde::Serialize;

use super::errors::{self, ErrorObjectView};
use super::sampler::{self, Columns, Kind, Totals};
use super::status::{self, Status};
use super::{Console, ConsoleError};
use crate::delivery::worker::CONSUMER;
use crate::log::ShardState;
use crate::telemetry::recent::DeliveredObject;
use crate::telemetry::Recent;

/// One stream in detail.
#[derive(Debug, Serialize)]
pub struct StreamDetail {
    pub name: String,
    pub kind: Kind,
    pub arn: Option<String>,
    pub destination: &'static str,
    pub status: Status,
    pub version: Option<u64>,
    pub last_error: Option<String>,
    /// The definition as YAML, secrets shown as `<redacted>`.
    pub definition: String,
    pub shards: Vec<ShardView>,
    pub objects: Vec<ObjectView>,
    pub errors: Vec<ErrorObjectView>,
    /// Records the transform returned Ok / Dropped / ProcessingFailed (`None`: no transform ran).
    pub transform: Option<TransformCounts>,
    pub totals: Totals,
    pub series: Columns,
    /// Kinesis streams: the delivery streams reading it.
    pub readers: Vec<String>,
}

/// One shard.
#[derive(Debug, Serialize)]
pub struct ShardView {
    pub shard: u32,
    pub open: bool,
    /// One past the last record stored.
    pub end: u64,
    /// The delivery checkpoint (first record not yet delivered), where this node delivers it.
    pub checkpoint: Option<u64>,
    pub backlog_records: Option<u64>,
    pub bytes: u64,
    pub blocked_seconds: f64,
    pub problem: Option<String>,
    /// In a cluster: the node holding the shard's delivery lease, when this node knows it.
    pub lease_owner: Option<String>,
}

/// One delivered object.
#[derive(Debug, Serialize)]
pub struct ObjectView {
    pub at: f64,
    pub shard: u32,
    pub key: String,
    pub bytes: u64,
    pub records: u64,
}

impl From<DeliveredObject> for ObjectView {
    fn from(o: DeliveredObject) -> Self {
        Self {
            at: o.at_ms as f64 / 1000.0,
            shard: o.shard,
            key: o.key,
            bytes: o.bytes,
            records: o.records,
        }
    }
}

/// What the transform did with records (since the process started).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct TransformCounts {
    pub ok: f64,
    pub dropped: f64,
    pub processing_failed: f64,
    pub invocations: f64,
    pub failed_invocations: f64,
}

/// The detail of stream `name` of `kind`.
pub fn detail(console: &Console, kind: &str, name: &str) -> Result<StreamDetail, ConsoleError> {
    let not_found = || ConsoleError::NotFound(format!("no {kind} stream named {name:?}"));
    if name.is_empty() || name.len() > 256 {
        return Err(not_found());
    }
    match kind {
        "firehose" => firehose(console, name).ok_or_else(not_found),
        "kinesis" => kinesis(console, name).ok_or_else(not_found),
        _ => Err(ConsoleError::NotFound(format!("no stream kind {kind:?}; firehose or kinesis"))),
    }
}

fn firehose(console: &Console, name: &str) -> Option<StreamDetail> {
    let app = &console.app;
    let stream = app.registry.get(name)?;
    let text = app.metrics.render();
    let totals =
        sampler::totals(&text).remove(&(Kind::Firehose, name.to_string())).unwrap_or_default();
    let health = status::health(&stream, totals.error_records);
    let owners = lease_owners(&text, name);
    let statuses: BTreeMap<u32, _> =
        stream.worker_statuses().into_iter().map(|(id, s)| (id.0, s)).collect();
    let mut problems: BTreeMap<u32, (f64, String)> = BTreeMap::new();
    for (consumer, shard, p) in stream.delivery_problems() {
        let blocked = p.blocked_for.as_secs_f64();
        let entry = problems.entry(shard).or_insert((0.0, String::new()));
        if blocked >= entry.0 {
            *entry = (blocked, format!("{consumer}: {}", p.detail));
        }
    }
    let open: BTreeMap<u32, bool> =
        (stream.log.shards().into_iter()).map(|s| (s.id.0, s.state == ShardState::Open)).collect();
    let cluster = app.control.config().core.kind == crate::config::CoreType::Jetstream;
    let shards = stream
        .shard_stats()
        .into_iter()
        .map(|s| {
            let id = s.shard.0;
            let checkpoint = statuses.get(&id).map(|st| st.next_seq());
            let problem = problems.get(&id);
            ShardView {
                shard: id,
                open: open.get(&id).copied().unwrap_or(true),
                end: s.next_seq,
                checkpoint,
                backlog_records: checkpoint.map(|c| s.next_seq.saturating_sub(c)),
                bytes: s.bytes,
                blocked_seconds: problem.map_or(0.0, |p| p.0),
                problem: problem.map(|p| p.1.clone()),
                lease_owner: owners.get(&id).cloned().or(cluster.then(|| "another node".into())),
            }
        })
        .collect();
    let config = stream.config();
    let definition = super::definition::redacted_yaml(&config)
        .unwrap_or_else(|e| format!("# the definition could not be shown: {e}\n"));
    Some(StreamDetail {
        kind: Kind::Firehose,
        arn: Some(stream.arn.clone()),
        destination: stream.definition().metric,
        status: health.status,
        version: Some(stream.version()),
        last_error: health.last_error,
        definition,
        shards,
        objects: Recent::global().objects(name).into_iter().map(ObjectView::from).collect(),
        errors: Recent::global().errors(name).into_iter().map(errors::view).collect(),
        transform: transform_counts(&text, name),
        totals,
        series: console.sampler.columns(Kind::Firehose, name),
        readers: Vec::new(),
        name: name.to_string(),
    })
}

fn kinesis(console: &Console, name: &str) -> Option<StreamDetail> {
    let app = &console.app;
    let stream = app.kinesis.as_ref()?.all().into_iter().find(|s| s.name == name)?;
    let text = app.metrics.render();
    let totals =
        sampler::totals(&text).remove(&(Kind::Kinesis, name.to_string())).unwrap_or_default();
    let settings = stream.settings();
    let definition = format!(
        "StreamName: {name}\nStreamMode: {}\nRetentionPeriodHours: {}\nEncryption: {}\n",
        match settings.mode {
            crate::kinesis::StreamMode::Provisioned => "PROVISIONED",
            crate::kinesis::StreamMode::OnDemand => "ON_DEMAND",
        },
        settings.retention_hours,
        if settings.encryption_key.is_some() { "KMS" } else { "NONE" },
    );
    let open: BTreeMap<u32, bool> =
        (stream.log.shards().into_iter()).map(|s| (s.id.0, s.state == ShardState::Open)).collect();
    let shards = (stream.log.stats().into_iter())
        .map(|s| ShardView {
            shard: s.shard.0,
            open: open.get(&s.shard.0).copied().unwrap_or(false),
            end: s.next_seq,
            checkpoint: None,
            backlog_records: None,
            bytes: s.bytes,
            blocked_seconds: 0.0,
            problem: None,
            lease_owner: None,
        })
        .collect();
    Some(StreamDetail {
        name: name.to_string(),
        kind: Kind::Kinesis,
        arn: None,
        destination: "kinesis",
        status: Status::Active,
        version: None,
        last_error: None,
        definition,
        shards,
        objects: Vec::new(),
        errors: Vec::new(),
        transform: None,
        totals,
        series: console.sampler.columns(Kind::Kinesis, name),
        readers: stream.readers(),
    })
}

/// Shard -> the node holding `stream`'s delivery lease, as this node's
/// `hydrant_lease_owner` gauge says (only the leases this node holds are 1 here).
fn lease_owners(text: &str, stream: &str) -> BTreeMap<u32, String> {
    super::prom::samples(text, |n| n == "hydrant_lease_owner")
        .filter(|s| s.value >= 1.0)
        .filter(|s| s.label("stream") == Some(stream) && s.label("consumer") == Some(CONSUMER))
        .filter_map(|s| Some((s.label("shard")?.parse().ok()?, s.label("node")?.to_string())))
        .collect()
}

/// The transform's counters of `stream`, if it ran.
pub fn transform_counts(text: &str, stream: &str) -> Option<TransformCounts> {
    let wanted = |n: &str| {
        n.ends_with("_processing_records_total") || n == "hydrant_execute_processing_total"
    };
    let mut counts = TransformCounts::default();
    let mut seen = false;
    for s in super::prom::samples(text, wanted).filter(|s| s.label("stream") == Some(stream)) {
        seen = true;
        match s.name {
            "hydrant_succeed_processing_records_total" => counts.ok += s.value,
            "hydrant_dropped_processing_records_total" => counts.dropped += s.value,
            "hydrant_failed_processing_records_total" => counts.processing_failed += s.value,
            "hydrant_execute_processing_total" => {
                counts.invocations += s.value;
                if s.label("success") == Some("false") {
                    counts.failed_invocations += s.value;
                }
            }
            _ => {}
        }
    }
    seen.then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_counts_and_lease_owners_are_read_from_the_metrics() {
        let text = "\
hydrant_succeed_processing_records_total{stream=\"t\"} 8
hydrant_dropped_processing_records_total{stream=\"t\"} 1
hydrant_failed_processing_records_total{stream=\"t\"} 2
hydrant_execute_processing_total{stream=\"t\",success=\"true\"} 3
hydrant_execute_processing_total{stream=\"t\",success=\"false\"} 1
hydrant_succeed_processing_records_total{stream=\"other\"} 100
hydrant_lease_owner{stream=\"t\",consumer=\"delivery\",shard=\"1\",node=\"n1\"} 1
hydrant_lease_owner{stream=\"t\",consumer=\"delivery\",shard=\"2\",node=\"n1\"} 0
hydrant_lease_owner{stream=\"t\",consumer=\"backup\",shard=\"0\",node=\"n1\"} 1
";
        let counts = transform_counts(text, "t").unwrap();
        assert_eq!(
            counts,
            TransformCounts {
                ok: 8.0,
                dropped: 1.0,
                processing_failed: 2.0,
                invocations: 4.0,
                failed_invocations: 1.0
            }
        );
        assert_eq!(transform_counts(text, "none"), None);
        assert_eq!(lease_owners(text, "t"), BTreeMap::from([(1, "n1".to_string())]));
    }
}
