//! Each shard's processing stages (processors, the WebAssembly transform, partitioning),
//! built from what the stream's shards share.

use std::sync::Arc;

use serde_json::Value;

use super::StartError;
use crate::config::{Config, DeliveryStreamConfig};
use crate::delivery::assembler::{Partitioning, Stages, StoreKeys, TransformStage};
use crate::naming::ObjectNamer;
use crate::processors::Processors;
use crate::wasm_host::{
    resolve_module, DefinedBy, SandboxLimits, Transform, TransformContext, TransformEngine,
    TransformModule,
};

/// What every shard's [`Stages`] share: validated processors and the compiled transform.
pub(super) struct StageBuilder {
    stream: String,
    pub(super) processors: Option<Arc<Processors>>,
    transform:
        Option<(TransformModule, TransformContext, SandboxLimits, crate::processors::LambdaSpec)>,
    partitioned: bool,
    max_partitions: usize,
    catalog: Value,
}

impl StageBuilder {
    /// `processors` are the stream's, compiled by its plan; `defined_by` decides what a
    /// `LambdaArn` may name ([`resolve_module`]).
    pub(super) fn new(
        config: &Config,
        stream: &DeliveryStreamConfig,
        processors: Option<Arc<Processors>>,
        arn: &str,
        defined_by: DefinedBy,
        engine: &TransformEngine,
    ) -> Result<Self, StartError> {
        let name = &stream.delivery_stream_name;
        let s3 = stream.s3();
        let transform = match processors.as_ref().and_then(|p| p.lambda()) {
            None => None,
            Some(spec) => {
                let path = resolve_module(
                    &spec.lambda_arn,
                    &config.functions,
                    &config.base_dir,
                    defined_by,
                )
                .map_err(|source| StartError::Resolve { stream: name.clone(), source })?;
                let limits =
                    stream.hydrant.transform.unwrap_or_default().apply(SandboxLimits::default());
                let module =
                    engine.load(&path, &limits).map_err(|error| StartError::Transform {
                        stream: name.clone(),
                        lambda_arn: spec.lambda_arn.clone(),
                        error,
                    })?;
                let context = TransformContext {
                    delivery_stream_arn: arn.to_string(),
                    region: config.region.clone(),
                };
                Some((module, context, limits, spec.clone()))
            }
        };
        let catalog = match &s3.data_format_conversion_configuration {
            Some(c) => serde_json::to_value(&c.schema_configuration).unwrap_or(Value::Null),
            None => Value::Null,
        };
        Ok(Self {
            stream: stream.delivery_stream_name.clone(),
            processors,
            transform,
            partitioned: s3.dynamic_partitioning_enabled(),
            max_partitions: stream.hydrant.max_partitions,
            catalog,
        })
    }

    /// One shard's stages (each gets its own transform instance).
    pub(super) fn stages(
        &self,
        namer: &Arc<ObjectNamer>,
        rules: &Arc<dyn StoreKeys>,
        version: u64,
    ) -> Result<Stages, String> {
        Ok(Stages {
            processors: self.processors.clone(),
            transform: self.transform.as_ref().map(|(module, context, limits, spec)| {
                TransformStage {
                    stream: self.stream.clone(),
                    transform: Transform::new(module, context.clone(), *limits),
                    lambda_arn: spec.lambda_arn.clone(),
                    retries: spec.number_of_retries,
                    chunk_bytes: spec.buffer_size_bytes(),
                    chunk_interval_ms: i64::from(spec.buffer_interval_seconds) * 1000,
                }
            }),
            partitioning: self.partitioned.then(|| {
                Partitioning::for_prefix(namer.clone(), self.max_partitions, rules.clone(), version)
            }),
            catalog: self.catalog.clone(),
        })
    }
}
