//! Logs and metrics.
//!
//! Logs: `tracing`, lowercase messages with key=value fields, text or JSON. Metrics: Prometheus
//! text at `/metrics`, named after Firehose's CloudWatch metrics in Prometheus form
//! (`IncomingRecords` -> `hydrant_incoming_records_total{stream}`) so dashboards move over.

mod metrics;
pub mod recent;

pub use self::metrics::{Metrics, StreamGauges};
pub use self::recent::Recent;

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
