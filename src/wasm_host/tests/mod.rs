//! Tests of the transform host: hand-written WAT modules against the documented ABI, the
//! example modules of the guest workspace (skipped with a note when not built), the
//! sandbox limits, Firehose's response rules, and the configuration helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::abi::{decode_json_response, encode_json_request, RequestContext};
use super::*;

fn engine() -> &'static TransformEngine {
    static ENGINE: OnceLock<TransformEngine> = OnceLock::new();
    ENGINE.get_or_init(|| TransformEngine::new().expect("engine"))
}

fn wat(name: &str) -> TransformModule {
    let text = match name {
        "upper" => include_str!("../testdata/upper.wat"),
        "respond" => include_str!("../testdata/respond.wat"),
        "counter" => include_str!("../testdata/counter.wat"),
        "trap" => include_str!("../testdata/trap.wat"),
        "spin" => include_str!("../testdata/spin.wat"),
        "hungry" => include_str!("../testdata/hungry.wat"),
        other => panic!("no fixture {other}"),
    };
    engine()
        .compile(Path::new(name), text.as_bytes(), &SandboxLimits::default())
        .expect("fixture compiles")
}

fn context() -> TransformContext {
    TransformContext {
        delivery_stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/test".into(),
        region: "us-east-1".into(),
    }
}

fn transform(module: &TransformModule) -> Transform {
    Transform::new(module, context(), SandboxLimits::default())
}

fn record(id: &str, data: &[u8]) -> InputRecord {
    InputRecord {
        record_id: id.to_string(),
        approximate_arrival_timestamp: 1_510_772_160_000,
        data: Bytes::copy_from_slice(data),
    }
}

fn records(data: &[&[u8]]) -> Vec<InputRecord> {
    data.iter().enumerate().map(|(i, d)| record(&format!("id-{i}"), d)).collect()
}

fn ok(data: &[u8]) -> RecordResult {
    RecordResult::Ok { data: Bytes::copy_from_slice(data), partition_keys: BTreeMap::new() }
}

fn failed_code(r: &RecordResult) -> &str {
    match r {
        RecordResult::ProcessingFailed { error_code, .. } => error_code,
        other => panic!("expected ProcessingFailed, got {other:?}"),
    }
}

fn results(outcomes: Vec<RecordOutcome>) -> Vec<RecordResult> {
    outcomes.into_iter().map(|o| o.result).collect()
}

// The cases, by subject.
mod examples;
mod loading;
mod responses;
mod sandbox;
