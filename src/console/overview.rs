//! `GET /console/api/overview`: every stream (delivery streams of the file and of the API,
//! and the Kinesis streams) with its destination, state, shards, counters, the last hour of
//! rates, DataFreshness, backlog and last error; the stream in the worst trouble first.

use std::collections::BTreeMap;

use serde::Serialize;

use super::sampler::{self, Columns, Kind, Totals};
use super::status::{self, Status};
use super::Console;
use crate::registry::Owner;

/// The whole overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// When it was computed (epoch seconds).
    pub now: f64,
    /// `embedded` or `jetstream` (a cluster).
    pub core: &'static str,
    pub node: Option<String>,
    /// Whether writes must be signed (`auth: sigv4`), and the region to sign for.
    pub auth: bool,
    pub region: String,
    /// How often the charts get a point (seconds).
    pub sample_seconds: u64,
    pub streams: Vec<StreamRow>,
}

/// One stream's line.
#[derive(Debug, Serialize)]
pub struct StreamRow {
    pub name: String,
    pub kind: Kind,
    /// `file` or `api` for delivery streams; `api` for Kinesis streams.
    pub origin: &'static str,
    /// The destination (`s3`, `redshift`, `opensearch`, `http`...), or `kinesis`.
    pub destination: &'static str,
    pub status: Status,
    pub rank: u8,
    pub shards: usize,
    /// Seconds the oldest undelivered record has waited (0: none waits).
    pub freshness_seconds: f64,
    pub backlog_records: u64,
    pub blocked_seconds: f64,
    pub last_error: Option<String>,
    pub totals: Totals,
    pub series: Columns,
}

/// The overview now.
pub fn overview(console: &Console) -> Overview {
    let app = &console.app;
    let totals = sampler::totals(&app.metrics.render());
    let total = |kind: Kind, name: &str| totals.get(&(kind, name.to_string())).copied();
    let gauges: BTreeMap<String, _> =
        app.registry.gauges().into_iter().map(|g| (g.stream.clone(), g)).collect();
    let mut streams = Vec::new();
    for stream in app.registry.all() {
        let t = total(Kind::Firehose, &stream.name).unwrap_or_default();
        let health = status::health(&stream, t.error_records);
        let gauge = gauges.get(&stream.name);
        streams.push(StreamRow {
            kind: Kind::Firehose,
            origin: match stream.owner {
                Owner::ConfigFile => "file",
                Owner::Api => "api",
            },
            destination: stream.definition().metric,
            rank: health.status.rank(),
            status: health.status,
            shards: stream.shard_stats().len(),
            freshness_seconds: gauge.map_or(0.0, |g| g.freshness_seconds),
            backlog_records: gauge.map_or(0, |g| g.backlog_records),
            blocked_seconds: health.blocked_seconds,
            last_error: health.last_error,
            totals: t,
            series: console.sampler.columns(Kind::Firehose, &stream.name),
            name: stream.name.clone(),
        });
    }
    if let Some(kinesis) = &app.kinesis {
        for stream in kinesis.all() {
            streams.push(StreamRow {
                kind: Kind::Kinesis,
                origin: "api",
                destination: "kinesis",
                status: Status::Active,
                rank: Status::Active.rank(),
                shards: stream.open_shard_count() as usize,
                freshness_seconds: 0.0,
                backlog_records: 0,
                blocked_seconds: 0.0,
                last_error: None,
                totals: total(Kind::Kinesis, &stream.name).unwrap_or_default(),
                series: console.sampler.columns(Kind::Kinesis, &stream.name),
                name: stream.name.clone(),
            });
        }
    }
    sort(&mut streams);
    let config = app.control.config();
    let cluster = config.core.kind == crate::config::CoreType::Jetstream;
    Overview {
        now: crate::clock::now_ms() as f64 / 1000.0,
        core: if cluster { "jetstream" } else { "embedded" },
        node: cluster.then(|| crate::config::node_id(&config)),
        auth: app.auth.is_some(),
        region: config.region.clone(),
        sample_seconds: sampler::INTERVAL.as_secs(),
        streams,
    }
}

/// Worst trouble first, then the shard blocked longest, then the oldest waiting record, then
/// by name.
fn sort(streams: &mut [StreamRow]) {
    streams.sort_by(|a, b| {
        (b.rank.cmp(&a.rank))
            .then(b.blocked_seconds.total_cmp(&a.blocked_seconds))
            .then(b.freshness_seconds.total_cmp(&a.freshness_seconds))
            .then((a.kind, &a.name).cmp(&(b.kind, &b.name)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: Status, blocked: f64) -> StreamRow {
        StreamRow {
            name: name.into(),
            kind: Kind::Firehose,
            origin: "file",
            destination: "s3",
            status,
            rank: status.rank(),
            shards: 1,
            freshness_seconds: 0.0,
            backlog_records: 0,
            blocked_seconds: blocked,
            last_error: None,
            totals: Totals::default(),
            series: Columns::default(),
        }
    }

    #[test]
    fn the_stream_in_trouble_is_on_top() {
        let mut rows = vec![
            row("a", Status::Active, 0.0),
            row("b", Status::DeliveryFailing, 5.0),
            row("c", Status::ActiveWithErrors, 0.0),
            row("d", Status::DeliveryFailing, 50.0),
        ];
        sort(&mut rows);
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["d", "b", "c", "a"]);
    }
}
