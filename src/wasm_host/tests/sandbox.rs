//! The hand-written module through the binary ABI, instance reuse, and recovery from traps, fuel and memory limits.

use super::*;

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
