use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Handle to the process-wide Prometheus recorder plus the metric names Hydrant records.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process-wide recorder (installed on first use; later calls share it).
    pub fn global() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("latency_seconds".into()),
                    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                .expect("non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (another test in this process) keeps using the first.
            let _ = metrics::set_global_recorder(recorder);
            handle
        });
        Self { handle: handle.clone() }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Accepted records of one put call (`IncomingRecords`, `IncomingBytes`,
    /// `IncomingPutRequests`, `PutRecordBatch.Latency`).
    pub fn incoming(
        &self,
        stream: &str,
        records: usize,
        bytes: usize,
        operation: &'static str,
        latency: Duration,
    ) {
        let s = stream.to_string();
        counter!("hydrant_incoming_records_total", "stream" => s.clone()).increment(records as u64);
        counter!("hydrant_incoming_bytes_total", "stream" => s.clone()).increment(bytes as u64);
        counter!("hydrant_incoming_put_requests_total", "stream" => s.clone(), "operation" => operation)
            .increment(1);
        histogram!("hydrant_put_latency_seconds", "stream" => s, "operation" => operation)
            .record(latency.as_secs_f64());
    }

    /// Records a Kinesis put stored (`IncomingRecords`, `IncomingBytes` of Kinesis Data
    /// Streams, and the call's latency): `hydrant_kinesis_incoming_{records,bytes}_total`,
    /// `hydrant_kinesis_put_latency_seconds{operation}`.
    pub fn kinesis_incoming(
        &self,
        stream: &str,
        records: usize,
        bytes: usize,
        operation: &'static str,
        latency: Duration,
    ) {
        let s = stream.to_string();
        counter!("hydrant_kinesis_incoming_records_total", "stream" => s.clone())
            .increment(records as u64);
        counter!("hydrant_kinesis_incoming_bytes_total", "stream" => s.clone())
            .increment(bytes as u64);
        histogram!("hydrant_kinesis_put_latency_seconds", "stream" => s, "operation" => operation)
            .record(latency.as_secs_f64());
    }

    /// Kinesis records refused for their shard's write limits (Kinesis'
    /// `WriteProvisionedThroughputExceeded`): `hydrant_kinesis_throttled_records_total`.
    pub fn kinesis_throttled(&self, stream: &str, records: usize) {
        counter!("hydrant_kinesis_throttled_records_total", "stream" => stream.to_string())
            .increment(records as u64);
    }

    /// A reshard an on-demand stream made on its own, and why (`hot`: split; `cold`: merge):
    /// `hydrant_kinesis_reshards_total{stream, reason}`.
    pub fn kinesis_reshard(&self, stream: &str, reason: &'static str) {
        counter!("hydrant_kinesis_reshards_total", "stream" => stream.to_string(), "reason" => reason)
            .increment(1);
    }

    /// Records a `GetRecords` returned (Kinesis' `GetRecords.Records`, `GetRecords.Bytes`):
    /// `hydrant_kinesis_outgoing_{records,bytes}_total`.
    pub fn kinesis_outgoing(&self, stream: &str, records: usize, bytes: usize) {
        let s = stream.to_string();
        counter!("hydrant_kinesis_outgoing_records_total", "stream" => s.clone())
            .increment(records as u64);
        counter!("hydrant_kinesis_outgoing_bytes_total", "stream" => s).increment(bytes as u64);
    }

    /// A request refused by authentication or a key's stream allow-list
    /// (`hydrant_auth_failures_total{reason}`; reasons are the API's authentication failures,
    /// `AuthError::reason`, and `access_denied`).
    pub fn auth_failure(&self, reason: &'static str) {
        counter!("hydrant_auth_failures_total", "reason" => reason).increment(1);
    }

    /// A connection closed as soon as it was accepted
    /// (`hydrant_http_connections_rejected_total{listener,reason}`; reason
    /// `client_connections`: its client address is at `http.max_connections_per_client`).
    pub fn http_connection_rejected(&self, listener: &'static str, reason: &'static str) {
        counter!("hydrant_http_connections_rejected_total", "listener" => listener, "reason" => reason)
            .increment(1);
    }

    /// A connection closed for being too slow or idle too long
    /// (`hydrant_http_connections_timed_out_total{listener,phase}`; phase `tls_handshake`,
    /// `header`, `idle` or `body`).
    pub fn http_connection_timed_out(&self, listener: &'static str, phase: &'static str) {
        counter!("hydrant_http_connections_timed_out_total", "listener" => listener, "phase" => phase)
            .increment(1);
    }

    /// A Firehose request refused before its body was read
    /// (`hydrant_http_requests_rejected_total{reason}`; reason `too_large`: over the largest
    /// request, 413; `client_inflight`: its client's in-flight allowance stayed full, 503;
    /// `inflight`: the server's in-flight memory stayed full, 503).
    pub fn http_request_rejected(&self, reason: &'static str) {
        counter!("hydrant_http_requests_rejected_total", "reason" => reason).increment(1);
    }

    /// Counts an open connection in `hydrant_http_connections_open{listener}` until the
    /// returned value is dropped.
    pub fn http_connection_open(&self, listener: &'static str) -> OpenConnection {
        gauge!("hydrant_http_connections_open", "listener" => listener).increment(1.0);
        OpenConnection { listener }
    }

    /// Records refused with ServiceUnavailableException (`ThrottledRecords`).
    pub fn throttled(&self, stream: &str, records: usize) {
        counter!("hydrant_throttled_records_total", "stream" => stream.to_string())
            .increment(records as u64);
    }

    /// One object written (`DeliveryToS3.Records`, `.Bytes`, `.Success`).
    pub fn delivered(&self, stream: &str, records: u64, bytes: u64, object_bytes: u64) {
        let s = stream.to_string();
        counter!("hydrant_delivery_to_s3_records_total", "stream" => s.clone()).increment(records);
        counter!("hydrant_delivery_to_s3_bytes_total", "stream" => s.clone()).increment(bytes);
        counter!("hydrant_delivery_to_s3_object_bytes_total", "stream" => s.clone())
            .increment(object_bytes);
        counter!("hydrant_delivery_to_s3_success_total", "stream" => s).increment(1);
    }

    /// One source-record backup object written (`BackupToS3.Records`, `.Bytes`, `.Success`).
    pub fn backed_up(&self, stream: &str, records: u64, bytes: u64) {
        let s = stream.to_string();
        counter!("hydrant_backup_to_s3_records_total", "stream" => s.clone()).increment(records);
        counter!("hydrant_backup_to_s3_bytes_total", "stream" => s.clone()).increment(bytes);
        counter!("hydrant_backup_to_s3_success_total", "stream" => s).increment(1);
    }

    /// Records written to the error output, by error-output type (`FailedConversion.Records`
    /// for `format-conversion-failed`, failed processing, failed partitioning).
    pub fn error_output(&self, stream: &str, output_type: &'static str, records: u64) {
        counter!("hydrant_error_output_records_total", "stream" => stream.to_string(), "type" => output_type)
            .increment(records);
    }

    /// A shard's delivery worker stopped on an error (1) and is restarted with a backoff, or
    /// runs again and moves (0). Alert on it staying 1: the shard's backlog grows until the
    /// cause (a full disk, a missing key) is fixed.
    pub fn worker_down(&self, stream: &str, shard: u32, down: bool) {
        gauge!("hydrant_delivery_worker_stopped", "stream" => stream.to_string(), "shard" => shard.to_string())
            .set(if down { 1.0 } else { 0.0 });
    }

    /// A failed delivery worker is started again (`hydrant_delivery_worker_restarts_total`).
    /// A replay's progress (`hydrant_replay_progress_ratio{stream,replay}`, 0 to 1; 1 once done).
    pub fn replay_progress(&self, stream: &str, replay: &str, fraction: f64) {
        gauge!("hydrant_replay_progress_ratio", "stream" => stream.to_string(), "replay" => replay.to_string())
            .set(fraction);
    }

    pub fn worker_restarted(&self, stream: &str, shard: u32) {
        counter!("hydrant_delivery_worker_restarts_total", "stream" => stream.to_string(), "shard" => shard.to_string())
            .increment(1);
    }

    /// One delivery to a warehouse, search or HTTP destination (`DeliveryToRedshift.*`,
    /// `DeliveryToAmazonOpenSearchService.*`, `DeliveryToHttpEndpoint.*`): `records` of
    /// `attempted` arrived, `bytes` before compression.
    pub fn delivered_to(
        &self,
        stream: &str,
        destination: &'static str,
        records: u64,
        attempted: u64,
        bytes: u64,
    ) {
        let s = stream.to_string();
        counter!(format!("hydrant_delivery_to_{destination}_records_total"), "stream" => s.clone())
            .increment(records);
        counter!(format!("hydrant_delivery_to_{destination}_bytes_total"), "stream" => s.clone())
            .increment(bytes);
        counter!(format!("hydrant_delivery_to_{destination}_attempted_records_total"), "stream" => s.clone())
            .increment(attempted);
        counter!(format!("hydrant_delivery_to_{destination}_success_total"), "stream" => s)
            .increment(1);
    }

    /// One failed attempt at a destination, by error code
    /// (`hydrant_delivery_to_<destination>_failures_total{stream,code}`).
    pub fn destination_failed(&self, stream: &str, destination: &'static str, code: &str) {
        counter!(format!("hydrant_delivery_to_{destination}_failures_total"),
            "stream" => stream.to_string(), "code" => code.to_string())
        .increment(1);
    }

    /// The gauges of every stream, as computed at scrape time (data freshness, backlog, log
    /// size, blocked shards).
    pub fn refresh_gauges(&self, streams: &[StreamGauges]) {
        for stream in streams {
            let s = stream.stream.clone();
            let destination = stream.destination;
            if destination == "s3" {
                gauge!("hydrant_delivery_to_s3_data_freshness_seconds", "stream" => s.clone())
                    .set(stream.freshness_seconds);
            }
            gauge!("hydrant_delivery_data_freshness_seconds", "stream" => s.clone(), "destination" => destination)
                .set(stream.freshness_seconds);
            gauge!("hydrant_shard_backlog_records", "stream" => s.clone())
                .set(stream.backlog_records as f64);
            for (shard, seconds) in &stream.blocked_seconds {
                gauge!("hydrant_delivery_blocked_seconds", "stream" => s.clone(), "shard" => shard.to_string())
                    .set(*seconds);
            }
            gauge!("hydrant_log_disk_bytes", "stream" => s).set(stream.disk_bytes as f64);
        }
    }
}

/// What the scrape-time gauges of one delivery stream show; the registry computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGauges {
    pub stream: String,
    /// The destination's name in metrics (`s3`, `redshift`, ...).
    pub destination: &'static str,
    /// How old the oldest record not yet delivered is (0: none waits).
    pub freshness_seconds: f64,
    /// Records appended but not yet delivered, over all shards.
    pub backlog_records: u64,
    /// Bytes of the stream's log on disk.
    pub disk_bytes: u64,
    /// Per shard id: how long it has not moved (0: it moves), the longest of its consumers.
    pub blocked_seconds: std::collections::BTreeMap<u32, f64>,
}

/// An open connection, counted in `hydrant_http_connections_open` while it lives.
#[derive(Debug)]
pub struct OpenConnection {
    listener: &'static str,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!("hydrant_http_connections_open", "listener" => self.listener).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_gauges_are_rendered_per_stream_and_shard() {
        let metrics = Metrics::global();
        metrics.refresh_gauges(&[StreamGauges {
            stream: "gauged".into(),
            destination: "s3",
            freshness_seconds: 2.5,
            backlog_records: 7,
            disk_bytes: 4096,
            blocked_seconds: [(0, 0.0), (1, 30.0)].into(),
        }]);
        let text = metrics.render();
        for line in [
            r#"hydrant_delivery_to_s3_data_freshness_seconds{stream="gauged"} 2.5"#,
            r#"hydrant_delivery_data_freshness_seconds{stream="gauged",destination="s3"} 2.5"#,
            r#"hydrant_shard_backlog_records{stream="gauged"} 7"#,
            r#"hydrant_delivery_blocked_seconds{stream="gauged",shard="1"} 30"#,
            r#"hydrant_log_disk_bytes{stream="gauged"} 4096"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
