//! The stream's destination as a delivery [`Sink`].

use std::sync::Arc;

use hydrant_destinations::http::HttpDestination;
use hydrant_destinations::search::SearchDestination;
use hydrant_destinations::warehouse::{CredentialsClause, PostgresLoader, RedshiftLoader, Target};

use crate::config::{CompressionFormat, Config, DeliveryStreamConfig, DestinationBlock};
use crate::delivery::sink::Sink;
use crate::destination::{HttpSink, Loader, S3Output, S3Sink, SearchSink, WarehouseSink};
use crate::names::arn_of;

/// The stream's destination as a delivery sink; `output` is its S3 side (the destination
/// itself, the intermediate bucket, or where failed records go).
pub(super) fn build_sink(
    config: &Config,
    stream: &DeliveryStreamConfig,
    output: S3Output,
) -> Result<Arc<dyn Sink>, String> {
    fn fields<F: std::fmt::Display>(errors: Vec<(F, String)>) -> String {
        errors.into_iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; ")
    }
    Ok(match stream.destination() {
        DestinationBlock::S3(_) => Arc::new(S3Sink { output, backup: false }),
        DestinationBlock::Redshift(r) => {
            let settings = r.settings().map_err(fields)?;
            let loader = match &settings.target {
                Target::Postgres(options) => {
                    let options = options.clone();
                    let loader = PostgresLoader::new(settings).map_err(|e| e.to_string())?;
                    Loader::Postgres { loader, options }
                }
                Target::Redshift { .. } => {
                    let role = r.role_arn.as_deref().unwrap_or_default();
                    let credentials = CredentialsClause::iam_role(role)?;
                    let store = output.destination.store().clone();
                    let bucket = output.destination.bucket().to_string();
                    Loader::Redshift(RedshiftLoader::new(settings, credentials, store, bucket))
                }
            };
            Arc::new(WarehouseSink {
                gzip: r.s3_configuration.compression_format == CompressionFormat::Gzip,
                prefix: r.s3_configuration.prefix.clone().unwrap_or_default(),
                staging: output,
                loader,
            })
        }
        DestinationBlock::Search { config: c, elasticsearch } => {
            let settings =
                c.settings(elasticsearch, stream.hydrant.basic_auth.as_ref()).map_err(fields)?;
            let destination =
                SearchDestination::new(settings.clone()).map_err(|e| e.to_string())?;
            Arc::new(SearchSink { destination, settings, errors: output })
        }
        DestinationBlock::Http(h) => {
            let arn = arn_of(&config.region, &config.account_id, &stream.delivery_stream_name);
            let settings = h.settings(&arn).map_err(fields)?;
            let destination = HttpDestination::new(&settings).map_err(|e| e.to_string())?;
            Arc::new(HttpSink { destination, source_arn: arn, errors: output })
        }
    })
}
