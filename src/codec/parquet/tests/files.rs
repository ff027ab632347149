//! The files: compression codecs, writer settings, batches, empty files, bad configurations, samples and a bench.

use super::*;

#[test]
fn each_parquet_compression_produces_a_readable_file_with_that_codec() {
    for (name, expect) in
        [("UNCOMPRESSED", "UNCOMPRESSED"), ("SNAPPY", "SNAPPY"), ("GZIP", "GZIP"), ("ZSTD", "ZSTD")]
    {
        let conv = conversion("{OpenXJsonSerDe: {}}", &format!("{{Compression: {name}}}"));
        let mut enc = encoder(&conv, &[("msg", "string"), ("n", "bigint")]);
        for i in 0..1000 {
            enc.push(format!(r#"{{"msg":"hello number {i}","n":{i}}}"#).as_bytes()).unwrap();
        }
        let (metadata, out) = read_rows(&enc.finish().unwrap());
        assert_eq!(out.len(), 1000);
        assert_eq!(out[999], json!({"msg":"hello number 999","n":999}));
        for rg in metadata.row_groups() {
            for column in rg.columns() {
                let codec = match column.compression() {
                    Compression::UNCOMPRESSED => "UNCOMPRESSED",
                    Compression::SNAPPY => "SNAPPY",
                    Compression::GZIP(_) => "GZIP",
                    Compression::ZSTD(_) => "ZSTD",
                    other => panic!("{other:?}"),
                };
                assert_eq!(codec, expect);
            }
        }
    }
}

#[test]
fn writer_version_and_dictionary_settings_are_honoured() {
    let read = |parquet: &str| {
        let mut enc = encoder(&conversion("{HiveJsonSerDe: {}}", parquet), &[("k", "string")]);
        for i in 0..100 {
            enc.push(format!(r#"{{"k":"v{}"}}"#, i % 3).as_bytes()).unwrap();
        }
        read_rows(&enc.finish().unwrap()).0
    };
    let default = read("{}");
    assert_eq!(default.file_metadata().version(), 1);
    assert!(default.row_group(0).column(0).dictionary_page_offset().is_some());
    let v2 = read("{WriterVersion: V2, EnableDictionaryCompression: false}");
    assert_eq!(v2.file_metadata().version(), 2);
    assert!(v2.row_group(0).column(0).dictionary_page_offset().is_none());
}

#[test]
fn many_records_span_several_batches_and_keep_their_order() {
    let mut enc = encoder(&openx(), &[("i", "bigint"), ("s", "string")]);
    let n = super::encoder::BATCH_ROWS * 2 + 17;
    for i in 0..n {
        enc.push(format!(r#"{{"i":{i},"s":"{}"}}"#, "x".repeat(i % 50)).as_bytes()).unwrap();
        if i % 1000 == 0 {
            // failures in between do not disturb the batches
            enc.push(br#"{"i":"nope"}{"i":1}"#).unwrap_err();
        }
    }
    let (_, out) = read_rows(&enc.finish().unwrap());
    assert_eq!(out.len(), n);
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row["i"], json!(i));
    }
}

#[test]
fn an_encoder_without_rows_still_writes_a_valid_file() {
    let enc = encoder(&openx(), &[("a", "int")]);
    assert_eq!(enc.extension(), ".parquet");
    let (_, out) = read_rows(&enc.finish().unwrap());
    assert!(out.is_empty());
}

#[test]
fn the_encoder_refuses_bad_configurations_with_every_issue() {
    let orc: DataFormatConversionConfiguration = serde_yaml_ng::from_str(
        "InputFormatConfiguration: {Deserializer: {OpenXJsonSerDe: {}}}\n\
         OutputFormatConfiguration: {Serializer: {OrcSerDe: {}}}",
    )
    .unwrap();
    let err = ParquetEncoder::new(&orc, &columns(&[("a", "int")])).unwrap_err();
    assert!(err.to_string().contains("ORC output is not supported; use ParquetSerDe"), "{err}");
    let err = ParquetEncoder::new(&openx(), &columns(&[("a", "nope"), ("A", "int")])).unwrap_err();
    let ConversionConfigError::Invalid(issues) = err else { panic!() };
    assert_eq!(issues.len(), 2, "{issues:?}");
    let conv = conversion("{OpenXJsonSerDe: {ColumnToJsonKeyMappings: {a: b}}}", "{}");
    let err = ParquetEncoder::new(&conv, &columns(&[("a", "int"), ("b", "int")])).unwrap_err();
    assert!(err.to_string().contains("would both read the JSON key `b`"), "{err}");
}

/// Writes sample files for `check_parquet.py` (pyarrow) into `$HYDRANT_PARQUET_SAMPLES`.
#[test]
#[ignore = "writes files for the pyarrow cross-check; run with --ignored"]
fn write_samples_for_pyarrow() {
    let Ok(dir) = std::env::var("HYDRANT_PARQUET_SAMPLES") else {
        panic!("set HYDRANT_PARQUET_SAMPLES to a directory");
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record = r#"{"s":"héllo","vc":"abcdef","ch":"xy","ti":-128,"si":32767,"i":-5,"ig":7,
        "bi":9007199254740993,"f":1.5,"d":-2.25,"b":true,"ts":"2024-01-02T03:04:05.123456Z",
        "dt":"2024-01-02","dec":"12345678.915","bin":"aGk=","arr":[1,null,3],
        "st":{"a":"x","b":5},"m":{"k":1.5,"n":null}}"#;
    for codec in ["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] {
        for version in ["V1", "V2"] {
            let conv = conversion(
                "{OpenXJsonSerDe: {}}",
                &format!("{{Compression: {codec}, WriterVersion: {version}}}"),
            );
            let mut enc = encoder(&conv, ALL_TYPES);
            enc.push(record.as_bytes()).unwrap();
            enc.push(b"{}").unwrap();
            for i in 0..10_000 {
                enc.push(
                    format!(r#"{{"i":{i},"s":"row {i}","ts":{}}}"#, 1_700_000_000 + i).as_bytes(),
                )
                .unwrap();
            }
            let file = enc.finish().unwrap();
            std::fs::write(dir.join(format!("all_types_{codec}_{version}.parquet")), file).unwrap();
        }
    }
    let nested = [
        ("events", "array<struct<name:string,tags:map<string,array<int>>,at:timestamp>>"),
        ("meta", "struct<inner:struct<deep:array<array<string>>>,n:int>"),
        ("lookup", "map<int,struct<x:boolean>>"),
    ];
    let mut enc = encoder(&openx(), &nested);
    enc.push(
        br#"{"events":[{"name":"a","tags":{"t":[1,2]},"at":1700000000},null,{"name":null}],
            "meta":{"inner":{"deep":[["x"],[],null]},"n":3},"lookup":{"7":{"x":true},"8":null}}"#,
    )
    .unwrap();
    enc.push(br#"{"events":[],"meta":null,"lookup":{}}"#).unwrap();
    std::fs::write(dir.join("nested.parquet"), enc.finish().unwrap()).unwrap();
}

/// Throughput of ~1 KiB JSON log lines with 10 columns into SNAPPY Parquet, single core.
/// Run in release: `cargo test --release -- --ignored --nocapture bench_`.
#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn bench_json_log_lines_to_snappy_parquet() {
    let spec = [
        ("ts", "timestamp"),
        ("level", "string"),
        ("service", "string"),
        ("host", "string"),
        ("status", "int"),
        ("latency_ms", "double"),
        ("bytes", "bigint"),
        ("path", "string"),
        ("user_agent", "string"),
        ("message", "string"),
    ];
    let levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    const STATUSES: [i32; 6] = [200, 200, 200, 404, 500, 302];
    let records: Vec<String> = (0..100_000u64)
        .map(|i| {
            let filler: String = (0..(560 + (i * 7919) % 200))
                .map(|j| (b'a' + ((i * 31 + j * 17) % 26) as u8) as char)
                .collect();
            let words: Vec<&str> = filler.as_bytes().chunks(7).map(|c| std::str::from_utf8(c).unwrap()).collect();
            serde_json::to_string(&json!({
                "ts": format!("2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z", 1 + i % 28, i % 24, i % 60, (i / 60) % 60, i % 1000),
                "level": levels[(i % 4) as usize],
                "service": format!("svc-{}", i % 12),
                "host": format!("ip-10-0-{}-{}.ec2.internal", i % 8, i % 250),
                "status": STATUSES[(i % 6) as usize],
                "latency_ms": (i % 1000) as f64 * 0.37,
                "bytes": 1000 + (i * 7) % 100_000,
                "path": format!("/api/v1/items/{}/details?page={}", i % 5000, i % 20),
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
                "message": words.join(" "),
            }))
            .unwrap()
        })
        .collect();
    let input: usize = records.iter().map(String::len).sum();
    let conv = conversion("{OpenXJsonSerDe: {}}", "{Compression: SNAPPY}");
    for round in 0..3 {
        let start = std::time::Instant::now();
        let mut enc = encoder(&conv, &spec);
        for r in &records {
            enc.push(r.as_bytes()).unwrap();
        }
        let file = enc.finish().unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "round {round}: {} records, {:.1} MB JSON (avg {} B) -> {:.1} MB Parquet in {secs:.2}s: {:.0} MB/s",
            records.len(),
            input as f64 / 1e6,
            input / records.len(),
            file.len() as f64 / 1e6,
            input as f64 / 1e6 / secs
        );
    }
}

#[test]
fn the_encoder_can_move_to_a_worker_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<ParquetEncoder>();
    let mut enc = encoder(&openx(), &[("a", "int")]);
    enc.push(br#"{"a":1}"#).unwrap();
    let file = std::thread::spawn(move || enc.finish().unwrap()).join().unwrap();
    assert_eq!(read_rows(&file).1, [json!({"a":1})]);
}
