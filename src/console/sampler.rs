//! The last hour of every stream's rates: a task reads the process's counters every
//! [`INTERVAL`] (one render of `/metrics`' text, nothing on the ingest path) and keeps
//! [`POINTS`] points per stream in a ring.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;

use super::prom;
use crate::telemetry::recent::Ring;
use crate::telemetry::Metrics;

/// How often the counters are read.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Points kept per stream: one hour at [`INTERVAL`].
pub const POINTS: usize = 360;

/// Which API a stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Firehose,
    Kinesis,
}

/// A stream's counters at one moment (since the process started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub records_in: f64,
    pub bytes_in: f64,
    pub records_out: f64,
    pub bytes_out: f64,
    /// Records written to the error output (every type).
    pub error_records: f64,
}

/// Per-destination delivery counters, before choosing which count as "delivered".
#[derive(Debug, Default)]
struct Delivered {
    /// `hydrant_delivery_to_s3_*` (the S3 destination, or a warehouse's staged objects).
    s3: (f64, f64),
    /// Every other destination's `hydrant_delivery_to_<d>_*`.
    other: (f64, f64),
}

/// Every stream's totals in `text` (Prometheus text of this process).
pub fn totals(text: &str) -> BTreeMap<(Kind, String), Totals> {
    let wanted = |name: &str| {
        name.starts_with("hydrant_incoming_")
            || name.starts_with("hydrant_kinesis_")
            || name.starts_with("hydrant_delivery_to_")
            || name == "hydrant_error_output_records_total"
    };
    let mut all: BTreeMap<(Kind, String), Totals> = BTreeMap::new();
    let mut delivered: BTreeMap<String, Delivered> = BTreeMap::new();
    for sample in prom::samples(text, wanted) {
        let Some(stream) = sample.label("stream") else { continue };
        let v = sample.value;
        let mut add = |kind: Kind, f: &dyn Fn(&mut Totals) -> &mut f64| {
            *f(all.entry((kind, stream.to_string())).or_default()) += v;
        };
        match sample.name {
            "hydrant_incoming_records_total" => add(Kind::Firehose, &|t| &mut t.records_in),
            "hydrant_incoming_bytes_total" => add(Kind::Firehose, &|t| &mut t.bytes_in),
            "hydrant_kinesis_incoming_records_total" => add(Kind::Kinesis, &|t| &mut t.records_in),
            "hydrant_kinesis_incoming_bytes_total" => add(Kind::Kinesis, &|t| &mut t.bytes_in),
            "hydrant_kinesis_outgoing_records_total" => add(Kind::Kinesis, &|t| &mut t.records_out),
            "hydrant_kinesis_outgoing_bytes_total" => add(Kind::Kinesis, &|t| &mut t.bytes_out),
            "hydrant_error_output_records_total" => add(Kind::Firehose, &|t| &mut t.error_records),
            name => {
                let Some(rest) = name.strip_prefix("hydrant_delivery_to_") else { continue };
                let (destination, is_bytes) = match rest.strip_suffix("_bytes_total") {
                    Some(d) => (d, true),
                    None => match rest.strip_suffix("_records_total") {
                        Some(d) => (d, false),
                        None => continue,
                    },
                };
                if destination.ends_with("_object") || destination.ends_with("_attempted") {
                    continue;
                }
                let d = delivered.entry(stream.to_string()).or_default();
                let slot = if destination == "s3" { &mut d.s3 } else { &mut d.other };
                if is_bytes {
                    slot.1 += v;
                } else {
                    slot.0 += v;
                }
            }
        }
    }
    for (stream, d) in delivered {
        // A warehouse counts its staged objects as S3 deliveries too: its own counts win.
        let (records, bytes) = if d.other != (0.0, 0.0) { d.other } else { d.s3 };
        let t = all.entry((Kind::Firehose, stream)).or_default();
        t.records_out = records;
        t.bytes_out = bytes;
    }
    all
}

/// One point of a stream's chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// End of the interval (epoch seconds).
    pub t: f64,
    pub records_per_s: f64,
    pub in_mb_per_s: f64,
    pub out_mb_per_s: f64,
}

/// A stream's points as columns (what uPlot draws), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Columns {
    pub t: Vec<f64>,
    pub records_per_s: Vec<f64>,
    pub in_mb_per_s: Vec<f64>,
    pub out_mb_per_s: Vec<f64>,
}

/// One stream's ring of points and the counters it last read.
#[derive(Debug, Clone)]
pub struct Series {
    points: Ring<Point>,
    last: Option<(f64, Totals)>,
}

impl Default for Series {
    fn default() -> Self {
        Self { points: Ring::new(POINTS), last: None }
    }
}

impl Series {
    /// Counters read at `t` (epoch seconds): the rates since the previous reading become a
    /// point. A counter that went down (the stream was re-created) counts as 0.
    pub fn observe(&mut self, t: f64, now: Totals) {
        if let Some((t0, before)) = self.last {
            let dt = t - t0;
            if dt > 0.0 {
                let rate = |a: f64, b: f64| ((b - a) / dt).max(0.0);
                self.points.push(Point {
                    t,
                    records_per_s: rate(before.records_in, now.records_in),
                    in_mb_per_s: rate(before.bytes_in, now.bytes_in) / 1e6,
                    out_mb_per_s: rate(before.bytes_out, now.bytes_out) / 1e6,
                });
            }
        }
        self.last = Some((t, now));
    }

    pub fn columns(&self) -> Columns {
        let mut points = self.points.newest_first();
        points.reverse();
        Columns {
            t: points.iter().map(|p| p.t.round()).collect(),
            records_per_s: points.iter().map(|p| significant(p.records_per_s)).collect(),
            in_mb_per_s: points.iter().map(|p| significant(p.in_mb_per_s)).collect(),
            out_mb_per_s: points.iter().map(|p| significant(p.out_mb_per_s)).collect(),
        }
    }
}

/// `x` to 4 significant digits: what a chart shows, in a few bytes of JSON.
fn significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// Every stream's series.
#[derive(Debug, Default)]
pub struct Sampler {
    series: Mutex<BTreeMap<(Kind, String), Series>>,
}

impl Sampler {
    /// A sampler reading `metrics` every [`INTERVAL`] on the current Tokio runtime, until it
    /// is dropped.
    pub fn start(metrics: Metrics) -> Arc<Self> {
        let sampler = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&sampler);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(sampler) = weak.upgrade() else { return };
                let t = crate::clock::now_ms() as f64 / 1000.0;
                sampler.observe(t, &totals(&metrics.render()));
            }
        });
        sampler
    }

    /// Adds a reading of every stream's counters at `t`.
    pub fn observe(&self, t: f64, totals: &BTreeMap<(Kind, String), Totals>) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (key, now) in totals {
            series.entry(key.clone()).or_default().observe(t, *now);
        }
    }

    /// The chart of one stream (empty before two readings).
    pub fn columns(&self, kind: Kind, stream: &str) -> Columns {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series.get(&(kind, stream.to_string())).map(Series::columns).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
hydrant_incoming_records_total{stream=\"a\"} 100
hydrant_incoming_bytes_total{stream=\"a\"} 2000000
hydrant_delivery_to_s3_bytes_total{stream=\"a\"} 1000000
hydrant_delivery_to_s3_object_bytes_total{stream=\"a\"} 9
hydrant_delivery_to_s3_records_total{stream=\"a\"} 50
hydrant_delivery_to_s3_bytes_total{stream=\"w\"} 70
hydrant_delivery_to_redshift_bytes_total{stream=\"w\"} 60
hydrant_delivery_to_redshift_attempted_records_total{stream=\"w\"} 99
hydrant_delivery_to_redshift_records_total{stream=\"w\"} 3
hydrant_kinesis_incoming_records_total{stream=\"a\"} 7
hydrant_error_output_records_total{stream=\"a\",type=\"processing-failed\"} 4
hydrant_error_output_records_total{stream=\"a\",type=\"partitioning-failed\"} 1
";

    #[test]
    fn totals_are_read_per_stream_and_api_without_double_counting() {
        let all = totals(TEXT);
        let a = all[&(Kind::Firehose, "a".to_string())];
        assert_eq!((a.records_in, a.bytes_in, a.records_out, a.bytes_out), (100.0, 2e6, 50.0, 1e6));
        assert_eq!(a.error_records, 5.0);
        let w = all[&(Kind::Firehose, "w".to_string())];
        assert_eq!((w.records_out, w.bytes_out), (3.0, 60.0), "the warehouse's own counts");
        assert_eq!(all[&(Kind::Kinesis, "a".to_string())].records_in, 7.0);
    }

    #[test]
    fn readings_become_rates_in_a_ring_of_an_hour() {
        let mut series = Series::default();
        let at = |i: u64| Totals {
            records_in: (i * 100) as f64,
            bytes_in: (i * 1_000_000) as f64,
            records_out: 0.0,
            bytes_out: (i * 500_000) as f64,
            error_records: 0.0,
        };
        series.observe(0.0, at(0));
        assert!(series.columns().t.is_empty(), "one reading is no rate");
        for i in 1..=(POINTS as u64 + 10) {
            series.observe(i as f64 * 10.0, at(i));
        }
        let c = series.columns();
        assert_eq!(c.t.len(), POINTS);
        assert_eq!(c.t[0], 110.0, "oldest first, the first 10 points dropped");
        assert_eq!(*c.t.last().unwrap(), (POINTS as f64 + 10.0) * 10.0);
        assert_eq!(c.records_per_s[5], 10.0);
        assert_eq!(c.in_mb_per_s[5], 0.1);
        assert_eq!(c.out_mb_per_s[5], 0.05);
        assert_eq!(significant(909.800_000_000_1), 909.8);
        assert_eq!(significant(0.012_345_6), 0.01235);
        assert_eq!(significant(f64::NAN), 0.0);
        // A stream re-created from zero: no negative rate.
        series.observe(1e6, Totals::default());
        assert_eq!(*series.columns().records_per_s.last().unwrap(), 0.0);
    }
}
