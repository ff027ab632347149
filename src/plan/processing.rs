//! What happens to records before they are written: `ProcessingConfiguration` (processors,
//! the Lambda transform and its sandbox), dynamic partitioning's limits, and the conversion to
//! Parquet (`DataFormatConversionConfiguration` with `hydrant.schema`).

use std::sync::Arc;

use crate::codec::parquet::Column;
use crate::config::{CompressionFormat, Config, DeliveryStreamConfig, Issue, ProcessingConfig};
use crate::processors::Processors;

/// `ProcessingConfiguration` (processors, the Lambda transform) and dynamic partitioning.
/// Returns the processors the stream runs (`None` inside when processing is off), when they
/// are valid.
pub(super) fn check_processing(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<Option<Arc<Processors>>> {
    let Some((block, processing)) = processing_block(stream) else { return Some(None) };
    let ext_path = format!("{path}.{block}");
    let enabled = processing.and_then(|p| p.enabled).unwrap_or(false);
    let mut lambda = None;
    let mut planned = Some(None);
    if let Some(processing) = processing {
        match Processors::from_config(processing) {
            Ok(processors) => {
                lambda = processors.lambda().cloned();
                planned = Some(enabled.then(|| Arc::new(processors)));
            }
            Err(problems) => {
                planned = None;
                for (field, message) in problems {
                    issues.push(Issue::new(
                        format!("{ext_path}.ProcessingConfiguration.{field}"),
                        message,
                    ));
                }
            }
        }
    }
    if let Some(spec) = lambda.filter(|_| enabled) {
        // Streams created through the API are held to DefinedBy::Api by their own policy
        // (control::api_policy) before they get here.
        if let Err(message) = crate::wasm_host::resolve_module(
            &spec.lambda_arn,
            &config.functions,
            &config.base_dir,
            crate::wasm_host::DefinedBy::ConfigFile,
        ) {
            issues.push(Issue::new(
                format!("{ext_path}.ProcessingConfiguration.Processors"),
                message.to_string(),
            ));
        }
    }
    if let Some(Err(message)) = stream.hydrant.transform.map(|t| t.validate()) {
        // `field: what is wrong`
        let (field, message) = message.split_once(": ").unwrap_or(("", &message));
        issues.push(Issue::new(format!("{path}.hydrant.transform.{field}"), message));
    }
    if stream.hydrant.max_partitions == 0 {
        issues.push(Issue::new(
            format!("{path}.hydrant.max_partitions"),
            "must be at least 1, got 0",
        ));
    }
    planned
}

/// The destination block that holds the stream's `ProcessingConfiguration`, and that block.
pub(crate) fn processing_block(
    stream: &DeliveryStreamConfig,
) -> Option<(&'static str, Option<&ProcessingConfig>)> {
    stream.destination().processing()
}

/// `DataFormatConversionConfiguration` (JSON to Parquet) with its `hydrant.schema`. Returns
/// the schema's columns, read once here, when records are converted (`None` inside when they
/// are not), when they are valid.
pub(super) fn check_conversion(
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<Option<Vec<Column>>> {
    let Some(ext) = &stream.extended_s3_destination_configuration else { return Some(None) };
    let ext_path = format!("{path}.ExtendedS3DestinationConfiguration");
    let Some(conversion) = &ext.data_format_conversion_configuration else {
        if stream.hydrant.schema.is_some() {
            issues.push(Issue::new(
                format!("{path}.hydrant.schema"),
                "a schema is only used by DataFormatConversionConfiguration; add one or remove the schema",
            ));
        }
        return Some(None);
    };
    let (columns, problems) =
        crate::codec::parquet::load_and_validate(conversion, stream.hydrant.schema.as_ref());
    let valid = problems.is_empty();
    for (field, message) in problems {
        let full = if field.starts_with(crate::codec::parquet::config::SCHEMA_PATH) {
            format!("{path}.{field}")
        } else {
            format!("{ext_path}.DataFormatConversionConfiguration.{field}")
        };
        issues.push(Issue::new(full.trim_end_matches('.').to_string(), message));
    }
    if conversion.is_enabled() && ext.compression_format != CompressionFormat::Uncompressed {
        issues.push(Issue::new(
            format!("{ext_path}.CompressionFormat"),
            format!(
                "must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled (got {}); \
                 compress inside Parquet with OutputFormatConfiguration.Serializer.ParquetSerDe.Compression",
                ext.compression_format
            ),
        ));
    }
    if !conversion.is_enabled() {
        return Some(None);
    }
    // Enabled without a schema, or with one that cannot be read, is an issue above.
    columns.filter(|_| valid).map(Some)
}
