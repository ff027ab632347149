//! The example modules of the guest workspace (skipped with a note when not built).

use super::*;

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
