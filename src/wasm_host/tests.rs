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
        "upper" => include_str!("testdata/upper.wat"),
        "respond" => include_str!("testdata/respond.wat"),
        "counter" => include_str!("testdata/counter.wat"),
        "trap" => include_str!("testdata/trap.wat"),
        "spin" => include_str!("testdata/spin.wat"),
        "hungry" => include_str!("testdata/hungry.wat"),
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

// ---------- the hand-written module (binary ABI, no SDK) ----------

#[test]
fn a_hand_written_wat_module_upper_cases_every_record() {
    let module = wat("upper");
    assert_eq!(module.abi(), AbiKind::Binary);
    let mut t = transform(&module);
    let input = records(&[b"hello, World 42", b"", b"\x00\xffabc"]);
    let out = t.invoke(&input).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].record_id, "id-0");
    assert_eq!(out[2].record_id, "id-2");
    assert_eq!(results(out), vec![ok(b"HELLO, WORLD 42"), ok(b""), ok(b"\x00\xffABC")]);
}

#[test]
fn the_hand_written_module_grows_its_memory_for_a_one_megabyte_batch() {
    let mut t = transform(&wat("upper"));
    let big = vec![b'x'; 2000];
    let input: Vec<InputRecord> = (0..500).map(|i| record(&i.to_string(), &big)).collect();
    let out = t.invoke(&input).unwrap();
    assert_eq!(out.len(), 500);
    assert!(out.iter().all(|o| o.result == ok(&[b'X'; 2000])));
}

#[test]
fn an_empty_batch_does_not_call_the_guest() {
    let mut t = transform(&wat("spin"));
    assert_eq!(t.invoke(&[]).unwrap(), vec![]);
    assert_eq!(t.instantiations(), 0);
}

// ---------- instance reuse and recovery ----------

fn counter_value(r: &RecordResult) -> u32 {
    match r {
        RecordResult::Ok { data, .. } => u32::from_le_bytes(data[..4].try_into().unwrap()),
        other => panic!("expected Ok, got {other:?}"),
    }
}

#[test]
fn the_instance_is_reused_across_invocations_and_recreated_after_a_trap() {
    let mut t = transform(&wat("counter"));
    for expected in 1..=3 {
        let out = t.invoke(&records(&[b"a", b"b"])).unwrap();
        assert_eq!(counter_value(&out[1].result), expected, "guest state survives");
    }
    assert_eq!(t.instantiations(), 1);

    let err = t.invoke(&records(&[b"a", b"!trap"])).unwrap_err();
    assert!(matches!(err, InvocationError::Trap { .. }), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert_eq!(err.code(), codes::FUNCTION_ERROR);
    assert!(err.is_retryable());

    let out = t.invoke(&records(&[b"a"])).unwrap();
    assert_eq!(counter_value(&out[0].result), 1, "a fresh instance starts counting again");
    assert_eq!(t.instantiations(), 2);
}

#[test]
fn a_trap_message_carries_the_guest_stderr() {
    let mut t = transform(&wat("trap"));
    let err = t.invoke(&records(&[b"x"])).unwrap_err();
    let InvocationError::Trap { message } = &err else { panic!("{err:?}") };
    println!("trap message: {message}");
    assert!(message.contains("panicked at src/lib.rs:7: boom"), "{message}");
    // and again: the next invocation starts a fresh instance and traps the same way
    assert!(matches!(t.invoke(&records(&[b"x"])), Err(InvocationError::Trap { .. })));
    assert_eq!(t.instantiations(), 2);
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_quickly_and_the_next_invocation_works() {
    let limits = SandboxLimits { fuel: 200_000_000, ..SandboxLimits::default() };
    let mut t = Transform::new(&wat("spin"), context(), limits);
    let start = Instant::now();
    let err = t.invoke(&records(&[b"x"])).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(err, InvocationError::Timeout { fuel: 200_000_000 });
    assert_eq!(err.code(), codes::FUNCTION_ERROR);
    assert!(err.is_retryable());
    assert!(matches!(t.invoke(&records(&[b"x"])), Err(InvocationError::Timeout { .. })));
    assert_eq!(t.instantiations(), 2);
}

#[test]
fn the_default_fuel_budget_ends_an_infinite_loop_within_seconds() {
    // Burn a tenth of the default budget and extrapolate, to keep the test short.
    let limits = SandboxLimits { fuel: DEFAULT_FUEL / 10, ..SandboxLimits::default() };
    let mut t = Transform::new(&wat("spin"), context(), limits);
    let start = Instant::now();
    let err = t.invoke(&records(&[b"x"])).unwrap_err();
    let full = start.elapsed() * 10;
    println!("the default fuel budget ({DEFAULT_FUEL}) lasts about {full:?} in a tight loop");
    assert!(matches!(err, InvocationError::Timeout { .. }));
    assert!(full < Duration::from_secs(60), "{full:?}");
}

#[test]
fn a_guest_that_allocates_past_the_cap_fails_with_a_memory_error_and_recovers() {
    let limits = SandboxLimits { memory_bytes: 8 << 20, ..SandboxLimits::default() };
    let mut t = Transform::new(&wat("hungry"), context(), limits);
    let err = t.invoke(&records(&[b"x"])).unwrap_err();
    assert_eq!(err, InvocationError::MemoryLimitExceeded { limit_bytes: 8 << 20 });
    assert_eq!(err.code(), codes::FUNCTION_ERROR);

    // The same worker then runs a batch fine once the instance is fresh: use the upper
    // module under the same cap to show the cap itself is not sticky.
    let mut t = Transform::new(&wat("upper"), context(), limits);
    assert!(t.invoke(&records(&[b"x"])).is_ok());
    // A request bigger than the cap fails in hydrant_alloc (memory.grow refused).
    let big = vec![0u8; 9 << 20];
    let err = t.invoke(&[record("big", &big)]).unwrap_err();
    assert!(matches!(err, InvocationError::MemoryLimitExceeded { .. }), "{err:?}");
    assert!(t.invoke(&records(&[b"y"])).is_ok());
}

// ---------- Firehose's response rules, through the binary ABI ----------

/// Builds a binary response by hand.
struct Resp(Vec<u8>);

impl Resp {
    fn new(count: u32) -> Self {
        Resp(count.to_le_bytes().to_vec())
    }
    fn entry(mut self, index: u32, result: u8, data: Option<&[u8]>, keys: &[(&str, &str)]) -> Self {
        self.0.extend(index.to_le_bytes());
        self.0.push(result);
        match data {
            Some(d) => {
                self.0.extend((d.len() as u32).to_le_bytes());
                self.0.extend(d);
            }
            None => self.0.extend(u32::MAX.to_le_bytes()),
        }
        self.0.extend((keys.len() as u32).to_le_bytes());
        for (k, v) in keys {
            for s in [k, v] {
                self.0.extend((s.len() as u32).to_le_bytes());
                self.0.extend(s.as_bytes());
            }
        }
        self
    }
}

/// Runs `respond.wat`, which answers with the first record's data verbatim.
fn respond(response: &[u8], batch_len: usize) -> Result<Vec<RecordOutcome>, InvocationError> {
    let mut input = vec![record("r0", response)];
    input.extend((1..batch_len).map(|i| record(&format!("r{i}"), b"x")));
    transform(&wat("respond")).invoke(&input)
}

#[test]
fn missing_duplicated_unknown_and_foreign_entries_follow_firehose_rules() {
    let response = Resp::new(7)
        .entry(0, 0, Some(b"zero"), &[("customer", "42"), ("year", "2024")])
        .entry(1, 1, None, &[])
        .entry(2, 2, None, &[])
        .entry(3, 2, Some(b"bad json"), &[])
        .entry(4, 9, Some(b"?"), &[])
        .entry(5, 0, None, &[])
        .entry(99, 0, Some(b"not in the batch"), &[]);
    let response = response.entry(6, 0, Some(b"once"), &[]).entry(6, 0, Some(b"twice"), &[]);
    let mut raw = response.0;
    raw[..4].copy_from_slice(&9u32.to_le_bytes());
    let out = respond(&raw, 8).unwrap();
    assert_eq!(out.len(), 8);
    let keys: BTreeMap<String, String> =
        [("customer".into(), "42".into()), ("year".into(), "2024".into())].into();
    assert_eq!(
        out[0].result,
        RecordResult::Ok { data: Bytes::from_static(b"zero"), partition_keys: keys }
    );
    assert_eq!(out[1].result, RecordResult::Dropped);
    assert_eq!(
        out[2].result,
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: PROCESSING_FAILED_MESSAGE.into(),
        }
    );
    assert_eq!(
        out[3].result,
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "bad json".into(),
        }
    );
    assert_eq!(failed_code(&out[4].result), codes::INVALID_RETURN_FORMAT, "unknown result");
    assert_eq!(failed_code(&out[5].result), codes::INVALID_RETURN_FORMAT, "Ok without data");
    assert_eq!(failed_code(&out[6].result), codes::DUPLICATED_RECORD_ID);
    assert_eq!(failed_code(&out[7].result), codes::MISSING_RECORD_ID);
    assert_eq!(out[7].record_id, "r7");
}

#[test]
fn an_empty_response_means_every_record_is_missing() {
    let out = respond(&Resp::new(0).0, 3).unwrap();
    assert!(out.iter().all(|o| failed_code(&o.result) == codes::MISSING_RECORD_ID));
    assert_eq!(out.len(), 3);
}

#[test]
fn a_truncated_or_overlong_binary_response_is_unparseable_and_not_retried() {
    let full = Resp::new(1).entry(0, 0, Some(b"data"), &[]).0;
    let err = respond(&full[..full.len() - 2], 1).unwrap_err();
    assert!(matches!(err, InvocationError::ResponseUnparseable { .. }), "{err:?}");
    assert_eq!(err.code(), codes::JSON_PROCESSING_EXCEPTION);
    assert!(!err.is_retryable());
    let mut long = full.clone();
    long.push(0);
    assert!(matches!(respond(&long, 1), Err(InvocationError::ResponseUnparseable { .. })));
}

#[test]
fn a_response_over_the_limit_is_rejected_and_not_retried() {
    let response = Resp::new(1).entry(0, 0, Some(&[b'a'; 300]), &[]).0;
    let limits = SandboxLimits { max_response_bytes: 200, ..SandboxLimits::default() };
    let mut t = Transform::new(&wat("respond"), context(), limits);
    let err = t.invoke(&[record("r0", &response)]).unwrap_err();
    assert_eq!(err, InvocationError::ResponseTooLarge { size: response.len() as u64, limit: 200 });
    assert!(!err.is_retryable());
    assert_eq!(err.code(), codes::MISSING_RECORD_ID);
    // not a reason to restart the instance
    assert!(t.invoke(&[record("r0", &Resp::new(0).0)]).is_ok());
    assert_eq!(t.instantiations(), 1);
}

#[test]
fn a_response_outside_guest_memory_is_an_abi_error() {
    let err = respond(b"", 1).unwrap_err();
    assert!(matches!(err, InvocationError::Abi { .. }), "{err:?}");
    assert_eq!(err.code(), codes::FUNCTION_ERROR);
}

// ---------- Firehose's response rules, through the JSON form ----------

fn json_rules(response: &str, ids: &[&str]) -> Result<Vec<RecordResult>, InvocationError> {
    let input: Vec<InputRecord> = ids.iter().map(|id| record(id, b"x")).collect();
    decode_json_response(response.as_bytes(), &input).map(results)
}

#[test]
fn json_responses_follow_the_same_rules() {
    let out = json_rules(
        r#"{"records":[
            {"recordId":"a","result":"Ok","data":"aGk=","metadata":{"partitionKeys":{"k":"v"}}},
            {"recordId":"b","result":"Dropped"},
            {"recordId":"c","result":"ProcessingFailed","data":"eA=="},
            {"recordId":"d","result":"Ok"},
            {"recordId":"e","result":"Maybe","data":"eA=="},
            {"recordId":"f","result":"Ok","data":"eA=="},
            {"recordId":"f","result":"Ok","data":"eA=="},
            {"recordId":"h","result":"Ok","data":"!!!"},
            {"recordId":"i","result":"Ok","data":"eA==","metadata":{"partitionKeys":{"n":1}}},
            {"recordId":"j","result":"ProcessingFailed","errorMessage":"mine"},
            {"recordId":"zzz","result":"Ok","data":"eA=="},
            {"result":"Ok","data":"eA=="},
            42
        ]}"#,
        &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    )
    .unwrap();
    let keys: BTreeMap<String, String> = [("k".into(), "v".into())].into();
    assert_eq!(out[0], RecordResult::Ok { data: Bytes::from_static(b"hi"), partition_keys: keys });
    assert_eq!(out[1], RecordResult::Dropped);
    assert_eq!(failed_code(&out[2]), codes::PROCESSING_FAILED_STATUS);
    assert_eq!(failed_code(&out[3]), codes::INVALID_RETURN_FORMAT, "Ok without data");
    assert_eq!(failed_code(&out[4]), codes::INVALID_RETURN_FORMAT, "unknown result");
    assert_eq!(failed_code(&out[5]), codes::DUPLICATED_RECORD_ID);
    assert_eq!(failed_code(&out[6]), codes::MISSING_RECORD_ID);
    assert_eq!(failed_code(&out[7]), codes::INVALID_RETURN_FORMAT, "bad base64");
    assert_eq!(failed_code(&out[8]), codes::INVALID_RETURN_FORMAT, "non-string key");
    assert_eq!(
        out[9],
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "mine".into()
        }
    );
}

#[test]
fn a_json_response_without_a_records_array_means_every_record_is_missing() {
    for response in [r#"{}"#, r#"{"records":null}"#, r#"{"records":{}}"#, "[]", "null"] {
        let out = json_rules(response, &["a", "b"]).unwrap();
        assert!(out.iter().all(|r| failed_code(r) == codes::MISSING_RECORD_ID), "{response}");
    }
}

#[test]
fn a_response_that_is_not_json_fails_the_invocation_without_retry() {
    let err = json_rules(r#"{"records":[{"recordId":"#, &["a"]).unwrap_err();
    assert!(matches!(err, InvocationError::ResponseUnparseable { .. }));
    assert_eq!(err.code(), codes::JSON_PROCESSING_EXCEPTION);
    assert!(!err.is_retryable());
}

#[test]
fn the_json_event_has_firehoses_shape() {
    let ctx = RequestContext {
        invocation_id: "inv-1",
        delivery_stream_arn: "arn:s",
        region: "eu-west-1",
    };
    let mut out = Vec::new();
    encode_json_request(&mut out, &ctx, &[record("4954", b"Hello World")]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"invocationId":"inv-1","deliveryStreamArn":"arn:s","region":"eu-west-1","records":[{"recordId":"4954","approximateArrivalTimestamp":1510772160000,"data":"SGVsbG8gV29ybGQ="}]}"#
    );
}

// ---------- loading ----------

#[test]
fn modules_that_do_not_follow_the_abi_are_rejected_at_load() {
    let cases = [
        ("(module)", "memory"),
        (r#"(module (memory (export "memory") 1))"#, "hydrant_alloc"),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "hydrant_alloc") (param i32) (result i32) (i32.const 0)))"#,
            "hydrant_transform",
        ),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "hydrant_alloc") (param i32) (result i32) (i32.const 0))
                 (func (export "hydrant_transform") (param i32 i32) (result i32) (i32.const 0)))"#,
            "(i32, i32) -> i64",
        ),
        (
            r#"(module (import "env" "now" (func)) (memory (export "memory") 1)
                 (func (export "hydrant_alloc") (param i32) (result i32) (i32.const 0))
                 (func (export "hydrant_transform") (param i32 i32) (result i64) (i64.const 0)))"#,
            "env",
        ),
        (
            r#"(module (memory (export "memory") 1)
                 (func (export "hydrant_abi_version") (result i32) (i32.const 2))
                 (func (export "hydrant_alloc") (param i32) (result i32) (i32.const 0))
                 (func (export "hydrant_transform") (param i32 i32) (result i64) (i64.const 0)))"#,
            "version 2",
        ),
    ];
    for (text, expected) in cases {
        let err = engine()
            .compile(Path::new("bad"), text.as_bytes(), &SandboxLimits::default())
            .unwrap_err();
        assert!(matches!(err, LoadError::Abi { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{err} should mention {expected}");
    }
    let err = engine()
        .compile(Path::new("junk"), b"\0asm\x01\0\0\0\xff", &SandboxLimits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
}

#[test]
fn a_module_is_compiled_once_and_again_after_the_file_changes() {
    let dir = std::env::temp_dir().join(format!("hydrant-transform-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upper.wat");
    std::fs::write(&path, include_str!("testdata/upper.wat")).unwrap();
    let a = engine().load(&path, &SandboxLimits::default()).unwrap();
    let b = engine().load(&dir.join(".").join("upper.wat"), &SandboxLimits::default()).unwrap();
    assert!(a.same_module(&b), "same canonical path hits the cache");
    std::fs::write(&path, include_str!("testdata/counter.wat")).unwrap();
    let c = engine().load(&path, &SandboxLimits::default()).unwrap();
    assert!(!a.same_module(&c), "a changed file is recompiled");
    let err = engine().load(&dir.join("missing.wasm"), &SandboxLimits::default()).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A module whose initial memory (256 MiB, with data at its end) is far above a 16 MiB cap.
const BIG_INITIAL_MEMORY: &str = r#"(module
  (memory (export "memory") 4096)
  (data (i32.const 268435000) "touches the last page")
  (func (export "hydrant_abi_version") (result i32) (i32.const 1))
  (func (export "hydrant_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "hydrant_transform") (param i32 i32) (result i64) (i64.const 0)))"#;

fn mib(n: u64) -> SandboxLimits {
    SandboxLimits { memory_bytes: n << 20, ..SandboxLimits::default() }
}

#[test]
fn the_abi_check_instantiates_under_the_memory_cap() {
    let err =
        engine().compile(Path::new("big"), BIG_INITIAL_MEMORY.as_bytes(), &mib(16)).unwrap_err();
    assert!(
        matches!(err, LoadError::MemoryLimit { limit_bytes, .. } if limit_bytes == 16 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains("hydrant.transform.memory_mib"), "{err}");
    // The same module fits a cap above its initial memory.
    engine().compile(Path::new("big"), BIG_INITIAL_MEMORY.as_bytes(), &mib(512)).unwrap();
    // Without hydrant_abi_version the module is instantiated under the cap all the same.
    let no_version = BIG_INITIAL_MEMORY
        .replace(r#"(func (export "hydrant_abi_version") (result i32) (i32.const 1))"#, "");
    let err = engine().compile(Path::new("big"), no_version.as_bytes(), &mib(16)).unwrap_err();
    assert!(matches!(err, LoadError::MemoryLimit { .. }), "{err:?}");
}

#[test]
fn a_cached_module_is_checked_against_the_limits_of_each_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.wat");
    std::fs::write(&path, BIG_INITIAL_MEMORY).unwrap();
    engine().load(&path, &mib(512)).unwrap();
    let err = engine().load(&path, &mib(16)).unwrap_err();
    assert!(matches!(err, LoadError::MemoryLimit { .. }), "{err:?}");
}

// ---------- the example modules of the guest workspace ----------

fn examples_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("HYDRANT_TRANSFORMS_DIR").map(PathBuf::from),
        Some(root.join("transforms/target/wasm32-wasip1/release")),
        Some(root.join("../transforms/target/wasm32-wasip1/release")),
        Some(root.join("transforms/dist")),
        Some(root.join("../transforms/dist")),
    ];
    candidates.into_iter().flatten().find(|d| d.join("noop.wasm").is_file())
}

fn example(name: &str) -> Option<TransformModule> {
    let Some(dir) = examples_dir() else {
        // scripts/test.sh builds them and sets HYDRANT_REQUIRE_SERVICES: then missing is a failure.
        assert!(
            std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "example modules not built (run transforms/build.sh)"
        );
        println!("skipped: example modules not built (run transforms/build.sh)");
        return None;
    };
    let path = dir.join(format!("{name}.wasm"));
    if !path.is_file() {
        println!("skipped: {} not built (run transforms/build.sh)", path.display());
        return None;
    }
    Some(engine().load(&path, &SandboxLimits::default()).unwrap())
}

#[test]
fn the_noop_example_returns_every_record_unchanged() {
    let Some(m) = example("noop") else { return };
    let mut t = transform(&m);
    let input = records(&[b"a", b"", &[0, 1, 2, 255], &vec![7u8; 100_000]]);
    let out = t.invoke(&input).unwrap();
    let expected: Vec<RecordResult> = input.iter().map(|r| ok(&r.data)).collect();
    assert_eq!(results(out), expected);
    // reused for a second batch
    assert_eq!(t.invoke(&records(&[b"again"])).unwrap()[0].result, ok(b"again"));
    assert_eq!(t.instantiations(), 1);
}

#[test]
fn the_append_newline_example_adds_a_newline_only_where_missing() {
    let Some(m) = example("append_newline") else { return };
    let out = transform(&m).invoke(&records(&[b"a", b"b\n", b""])).unwrap();
    assert_eq!(results(out), vec![ok(b"a\n"), ok(b"b\n"), ok(b"\n")]);
}

#[test]
fn the_json_filter_redact_example_drops_redacts_and_fails_non_json() {
    let Some(m) = example("json_filter_redact") else { return };
    let out = transform(&m)
        .invoke(&records(&[
            br#"{"level":"debug","msg":"x"}"#,
            br#"{"level":"info","password":"hunter2","user":{"email":"a@b.c","id":7}}"#,
            b"{\"level\":\"info\",  \"msg\":\"nothing to hide\"}\n",
            b"not json",
            b"[1,2]",
        ]))
        .unwrap();
    let out = results(out);
    assert_eq!(out[0], RecordResult::Dropped);
    assert_eq!(
        out[1],
        ok(br#"{"level":"info","password":"[REDACTED]","user":{"email":"[REDACTED]","id":7}}"#)
    );
    assert_eq!(out[2], ok(b"{\"level\":\"info\",  \"msg\":\"nothing to hide\"}\n"), "untouched");
    assert_eq!(failed_code(&out[3]), codes::PROCESSING_FAILED_STATUS);
    assert_eq!(failed_code(&out[4]), codes::PROCESSING_FAILED_STATUS);
}

#[test]
fn the_partition_by_field_example_sets_keys_from_the_record_and_its_arrival_date() {
    let Some(m) = example("partition_by_field") else { return };
    let mut input = records(&[br#"{"customer_id":"acme","v":1}"#, br#"{"customer_id":17}"#, b"{}"]);
    input[1].approximate_arrival_timestamp = 951_782_400_000; // 2000-02-29T00:00:00Z
    let out = results(transform(&m).invoke(&input).unwrap());
    let RecordResult::Ok { data, partition_keys } = &out[0] else { panic!("{:?}", out[0]) };
    assert_eq!(data, &input[0].data);
    assert_eq!(partition_keys["customer_id"], "acme");
    assert_eq!(
        (
            partition_keys["year"].as_str(),
            partition_keys["month"].as_str(),
            partition_keys["day"].as_str()
        ),
        ("2017", "11", "15")
    );
    let RecordResult::Ok { partition_keys, .. } = &out[1] else { panic!("{:?}", out[1]) };
    assert_eq!(partition_keys["customer_id"], "17");
    assert_eq!(partition_keys["day"], "29");
    assert_eq!(partition_keys["month"], "02");
    assert_eq!(failed_code(&out[2]), codes::PROCESSING_FAILED_STATUS);
}

#[test]
fn the_csv_to_json_example_names_the_columns() {
    let Some(m) = example("csv_to_json") else { return };
    let out = transform(&m)
        .invoke(&records(&[b"1,Alice,9.50,EUR\n", b"2,\"Smith, \"\"Bob\"\"\",-3,USD", b"3,short"]))
        .unwrap();
    let out = results(out);
    assert_eq!(out[0], ok(b"{\"id\":1,\"name\":\"Alice\",\"amount\":9.5,\"currency\":\"EUR\"}\n"));
    assert_eq!(
        out[1],
        ok(b"{\"id\":2,\"name\":\"Smith, \\\"Bob\\\"\",\"amount\":-3,\"currency\":\"USD\"}\n")
    );
    let RecordResult::ProcessingFailed { error_message, .. } = &out[2] else { panic!() };
    assert_eq!(error_message, "expected 4 fields, got 2");
}

#[test]
fn the_fail_some_example_fails_and_drops_by_content() {
    let Some(m) = example("fail_some") else { return };
    let out =
        results(transform(&m).invoke(&records(&[b"ok", b"please fail", b"drop me"])).unwrap());
    assert_eq!(out[0], ok(b"ok"));
    assert_eq!(
        out[1],
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "record id-1 asked to fail".into(),
        }
    );
    assert_eq!(out[2], RecordResult::Dropped);
}

#[test]
fn a_panicking_sdk_module_fails_the_invocation_with_the_panic_message_and_recovers() {
    let Some(m) = example("fail_some") else { return };
    let mut t = transform(&m);
    let err = t.invoke(&records(&[b"ok", b"please panic"])).unwrap_err();
    let InvocationError::Trap { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("record id-1 asked to panic"), "{message}");
    assert_eq!(results(t.invoke(&records(&[b"ok"])).unwrap()), vec![ok(b"ok")]);
    assert_eq!(t.instantiations(), 2);
}

#[test]
fn the_lambda_port_example_speaks_the_json_form() {
    let Some(m) = example("lambda_port") else { return };
    assert_eq!(m.abi(), AbiKind::Json);
    let mut t = transform(&m);
    let out = results(t.invoke(&records(&[br#"{"a":1,"partition":"p7"}"#, b"nope"])).unwrap());
    let mut keys = BTreeMap::new();
    keys.insert("partition".to_string(), "p7".to_string());
    assert_eq!(
        out[0],
        RecordResult::Ok {
            data: Bytes::from_static(b"{\"a\":1,\"partition\":\"p7\",\"processed\":true}\n"),
            partition_keys: keys
        }
    );
    assert_eq!(
        out[1],
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "not a JSON object".into(),
        }
    );
}

#[test]
fn a_memory_hungry_batch_fails_an_sdk_module_and_the_next_batch_succeeds() {
    let Some(m) = example("noop") else { return };
    let limits = SandboxLimits { memory_bytes: 4 << 20, ..SandboxLimits::default() };
    let mut t = Transform::new(&m, context(), limits);
    let big = vec![1u8; 3 << 20];
    let err = t.invoke(&[record("big", &big)]).unwrap_err();
    assert!(matches!(err, InvocationError::MemoryLimitExceeded { .. }), "{err:?}");
    assert_eq!(t.invoke(&records(&[b"small"])).unwrap()[0].result, ok(b"small"));
}

// ---------- configuration ----------

#[test]
fn lambda_arns_resolve_through_functions_file_urls_and_relative_paths() {
    let base = Path::new("/etc/hydrant");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:redact";
    let functions: BTreeMap<String, PathBuf> = [
        (arn.to_string(), PathBuf::from("transforms/redact.wasm")),
        ("by-name".to_string(), PathBuf::from("/opt/t/n.wasm")),
    ]
    .into();
    let r = |s: &str| resolve_module(s, &functions, base, DefinedBy::ConfigFile);
    assert_eq!(r(arn).unwrap(), Path::new("/etc/hydrant/transforms/redact.wasm"));
    assert_eq!(
        r(&format!("{arn}:prod")).unwrap(),
        Path::new("/etc/hydrant/transforms/redact.wasm")
    );
    assert_eq!(
        r(&format!("{arn}:$LATEST")).unwrap(),
        Path::new("/etc/hydrant/transforms/redact.wasm")
    );
    assert_eq!(r("by-name").unwrap(), Path::new("/opt/t/n.wasm"));
    assert_eq!(r("file:///srv/m.wasm").unwrap(), Path::new("/srv/m.wasm"));
    let err = r("file://srv/m.wasm").unwrap_err();
    assert_eq!(err, ResolveError::RelativeFileUrl { arn: "file://srv/m.wasm".into() });
    assert!(err.to_string().contains("absolute"));
    assert_eq!(r("m/x.wasm").unwrap(), Path::new("/etc/hydrant/m/x.wasm"));
    assert_eq!(r("/abs/x.wasm").unwrap(), Path::new("/abs/x.wasm"));
    let err = r("arn:aws:lambda:us-east-1:123456789012:function:other").unwrap_err();
    assert!(matches!(err, ResolveError::NotInFunctions { .. }), "{err}");
    assert!(err.to_string().contains("functions:"), "{err}");
    assert_eq!(r("  ").unwrap_err(), ResolveError::Blank);
}

#[test]
fn an_api_stream_may_name_only_functions_entries_and_errors_say_nothing_of_files() {
    let base = Path::new("/etc/hydrant");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:redact";
    let functions: BTreeMap<String, PathBuf> =
        [(arn.to_string(), PathBuf::from("transforms/redact.wasm"))].into();
    let r = |s: &str| resolve_module(s, &functions, base, DefinedBy::Api);
    assert_eq!(r(arn).unwrap(), Path::new("/etc/hydrant/transforms/redact.wasm"));
    assert_eq!(
        r(&format!("{arn}:prod")).unwrap(),
        Path::new("/etc/hydrant/transforms/redact.wasm")
    );
    for refused in [
        "file:///proc/self/environ",
        "file:///srv/transforms/redact.wasm",
        "/etc/passwd",
        "../x.wasm",
        "transforms/redact.wasm",
        "x.wasm",
        "arn:aws:lambda:us-east-1:123456789012:function:other",
        "",
    ] {
        let err = r(refused).unwrap_err().to_string();
        assert!(err.contains("`functions:`"), "{refused}: {err}");
        assert!(!err.contains("/etc/hydrant"), "{refused}: the error names a server path: {err}");
    }
    let long = format!("arn:{}", "x".repeat(5000));
    assert!(r(&long).unwrap_err().to_string().len() < 600, "a long value is cut short");
}

#[test]
fn transform_limits_parse_from_yaml_and_override_the_defaults() {
    let limits: TransformLimits = serde_yaml_ng::from_str("fuel: 5000\nmemory_mib: 16").unwrap();
    limits.validate().unwrap();
    let applied = limits.apply(SandboxLimits::default());
    assert_eq!(applied.fuel, 5000);
    assert_eq!(applied.memory_bytes, 16 << 20);
    assert_eq!(applied.max_response_bytes, MAX_RESPONSE_BYTES);
    let empty: TransformLimits = serde_yaml_ng::from_str("{}").unwrap();
    assert_eq!(empty.apply(SandboxLimits::default()), SandboxLimits::default());
    assert!(serde_yaml_ng::from_str::<TransformLimits>("memory_mb: 1").is_err());
    let zero = TransformLimits { memory_mib: Some(0), ..TransformLimits::default() };
    assert!(zero.validate().unwrap_err().starts_with("memory_mib"));
}

#[test]
fn a_transform_can_move_to_a_blocking_thread_and_the_engine_can_be_shared() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Transform>();
    send_sync::<TransformEngine>();
    send_sync::<TransformModule>();
    send_sync::<InvocationError>();
}
