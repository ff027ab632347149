//! `cargo bench --bench pipeline`: how much the delivery pipeline's own code (processing in log
//! order, per-partition buffers, sealing) costs next to the codec it drives. Each case pushes the
//! same ~1 KiB JSON records through an `Assembler` and compares with feeding the bare encoder, so
//! "overhead" is Hydrant's share. Prints numbers; asserts nothing.

use std::sync::Arc;
use std::time::Instant;

use hydrant::codec::{compression_for, ObjectCodec};
use hydrant::config::{CompressionFormat, ProcessingConfig};
use hydrant::delivery::assembler::{Assembler, Partitioning, Stages};
use hydrant::delivery::buffers::{Layout, Markers};
use hydrant::delivery::BatchPolicy;
use hydrant::log::Record;
use hydrant::naming::ObjectNamer;

const RECORDS: usize = 200_000;

fn records() -> Vec<Record> {
    let lines = hydrant::bench::sample_records(RECORDS, 1024);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, data)| Record {
            seq: i as u64,
            arrival_ms: 1_000 + (i / 1000) as i64,
            data: data.into(),
        })
        .collect()
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn bare(codec: &ObjectCodec, records: &[Record], max_bytes: usize) -> f64 {
    let t = Instant::now();
    let mut encoder = codec.encoder();
    let mut held = 0;
    for r in records {
        if held + r.data.len() > max_bytes {
            std::hint::black_box(codec.seal(encoder.finish().unwrap().into()).unwrap());
            encoder = codec.encoder();
            held = 0;
        }
        encoder.push(&r.data).unwrap();
        held += r.data.len();
    }
    std::hint::black_box(encoder.finish().unwrap());
    t.elapsed().as_secs_f64()
}

fn through_assembler(
    stages: Stages,
    codec: &ObjectCodec,
    records: &[Record],
    policy: BatchPolicy,
) -> (f64, usize) {
    let t = Instant::now();
    let mut assembler =
        Assembler::new(stages, codec, 0, Layout::Object, policy, Markers::default(), 0);
    let mut objects = 0;
    for r in records {
        assembler.push(r).unwrap();
        objects += assembler.take_sealed().len();
    }
    objects += assembler.finish().unwrap().len();
    (t.elapsed().as_secs_f64(), objects)
}

fn partitioned_stages() -> Stages {
    let processing: ProcessingConfig = serde_json::from_value(serde_json::json!({
        "Enabled": true,
        "Processors": [{"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{path: .path}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]
    }))
    .unwrap();
    let processors = hydrant::processors::Processors::from_config(&processing).unwrap();
    let namer = ObjectNamer::new(
        "bench",
        Some("p/path=!{partitionKeyFromQuery:path}/"),
        Some("e/!{firehose:error-output-type}/"),
        "",
        chrono_tz::UTC,
    )
    .unwrap();
    Stages {
        processors: Some(Arc::new(processors)),
        transform: None,
        partitioning: Some(Partitioning::for_prefix(
            Arc::new(namer),
            500,
            Arc::new(hydrant_destinations::s3::KeyRules::S3),
            1,
        )),
        catalog: serde_json::Value::Null,
    }
}

fn main() {
    let records = records();
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    let policy = BatchPolicy { max_bytes: 64 << 20, interval_ms: 60_000 };
    println!("pipeline: {RECORDS} records, {:.0} MB, 64 MiB buffers", bytes as f64 / 1e6);
    for format in [CompressionFormat::Uncompressed, CompressionFormat::Gzip] {
        let codec = ObjectCodec::concatenated(Arc::from(compression_for(format)), "");
        let raw = bare(&codec, &records, 64 << 20);
        let (ours, objects) = through_assembler(Stages::plain(), &codec, &records, policy);
        println!(
            "  {format:<12} bare encoder {:7.1} MB/s | through the assembler {:7.1} MB/s ({objects} objects) | overhead {:+.1}%",
            mbps(bytes, raw),
            mbps(bytes, ours),
            100.0 * (ours - raw) / raw
        );
    }
    let codec =
        ObjectCodec::concatenated(Arc::from(compression_for(CompressionFormat::Uncompressed)), "");
    let (jq, objects) = through_assembler(partitioned_stages(), &codec, &records, policy);
    println!(
        "  jq partitioning by .path (6 partitions), UNCOMPRESSED: {:.1} MB/s, {:.0} records/s ({objects} objects)",
        mbps(bytes, jq),
        RECORDS as f64 / jq
    );
}
