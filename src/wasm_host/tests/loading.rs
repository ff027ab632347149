//! Loading modules (the ABI check, the cache, memory caps) and the transform configuration.

use super::*;

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
    std::fs::write(&path, include_str!("../testdata/upper.wat")).unwrap();
    let a = engine().load(&path, &SandboxLimits::default()).unwrap();
    let b = engine().load(&dir.join(".").join("upper.wat"), &SandboxLimits::default()).unwrap();
    assert!(a.same_module(&b), "same canonical path hits the cache");
    std::fs::write(&path, include_str!("../testdata/counter.wat")).unwrap();
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
