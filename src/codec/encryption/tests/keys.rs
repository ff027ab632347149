//! Keys: unknown and wrong keys, rotation, key files and sources, the config block.

use super::*;

// ---- keys, rotation ------------------------------------------------------------------------

#[test]
fn unknown_key_id_error_names_the_id() {
    let writer_ring = ring("k2", &["k1", "k2"]);
    let object = encrypt(&writer_ring, b"secret").unwrap();
    let reader_ring = ring("k1", &["k1", "k3"]);
    let err = decrypt(&reader_ring, &object).unwrap_err();
    assert!(matches!(&err, DecryptError::UnknownKeyId { id, .. } if id == "k2"));
    let msg = err.to_string();
    assert!(msg.contains("\"k2\""), "{msg}");
    assert!(msg.contains("not configured") && msg.contains("k1, k3"), "{msg}");
    assert_eq!(header_key_id(&object).unwrap(), "k2");
}

#[test]
fn wrong_key_material_under_the_right_id_is_reported() {
    let object = encrypt(&ring("k1", &["k1"]), b"secret").unwrap();
    let err = decrypt(&ring("k1", &["k1"]), &object).unwrap_err();
    assert!(matches!(&err, DecryptError::KeyMismatch { id } if id == "k1"), "{err}");
}

#[test]
fn rotation_old_objects_decrypt_after_active_key_changes() {
    let a = MasterKey::generate("key-a").unwrap();
    let b = MasterKey::generate("key-b").unwrap();
    let ring_a = KeyRing::new("key-a", [a.clone()]).unwrap();
    let old = encrypt(&ring_a, b"written under A").unwrap();

    let ring_ab = KeyRing::new("key-b", [a.clone(), b.clone()]).unwrap();
    let new = encrypt(&ring_ab, b"written under B").unwrap();
    assert_eq!(header_key_id(&old).unwrap(), "key-a");
    assert_eq!(header_key_id(&new).unwrap(), "key-b");
    assert_eq!(decrypt(&ring_ab, &old).unwrap(), b"written under A");
    assert_eq!(decrypt(&ring_ab, &new).unwrap(), b"written under B");

    // Once A is removed, its objects name it.
    let ring_b = KeyRing::new("key-b", [b]).unwrap();
    assert!(
        matches!(decrypt(&ring_b, &old), Err(DecryptError::UnknownKeyId { id, .. }) if id == "key-a")
    );
}

#[test]
fn header_key_id_needs_only_the_start() {
    let object = encrypt(&ring("abc.DEF_9-z", &["abc.DEF_9-z"]), b"x").unwrap();
    assert_eq!(header_key_id(&object[..21]).unwrap(), "abc.DEF_9-z");
    assert!(matches!(header_key_id(&object[..20]), Err(DecryptError::TruncatedHeader)));
    assert!(matches!(header_key_id(b"nope"), Err(DecryptError::BadMagic { .. })));
}

/// `file: /dev/zero` (fuzz/corpus/config/key-file-dev-zero.yaml) made the config loader read until
/// memory ran out.
#[test]
fn a_key_file_is_read_only_up_to_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.key");
    std::fs::write(&big, vec![b' '; MAX_KEY_FILE_BYTES + 1]).unwrap();
    for path in [big.as_path(), Path::new("/dev/zero")] {
        let err = MasterKey::from_file("k", path).unwrap_err();
        assert!(
            matches!(err, KeyError::KeyFileTooLarge { max: MAX_KEY_FILE_BYTES, .. }),
            "{}: {err}",
            path.display()
        );
    }
    // Whitespace around the base64 still fits.
    let padded = dir.path().join("padded.key");
    let b64 = MasterKey::from_bytes("k", &[7; 32]).unwrap().to_base64();
    std::fs::write(&padded, format!("{}{}\n", " ".repeat(MAX_KEY_FILE_BYTES - 45), *b64)).unwrap();
    assert_eq!(MasterKey::from_file("k", &padded).unwrap().bytes(), &[7; 32]);
}

#[test]
fn master_key_sources() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (100u8..132).collect();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);

    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, &bytes).unwrap();
    let text = dir.path().join("text.key");
    std::fs::write(&text, format!("{b64}\n")).unwrap();
    let unpadded = dir.path().join("unpadded.key");
    std::fs::write(&unpadded, format!("  {}\r\n", b64.trim_end_matches('='))).unwrap();

    for path in [&raw, &text, &unpadded] {
        let key = MasterKey::from_file("k", path).unwrap();
        assert_eq!(key.bytes(), &bytes[..], "{}", path.display());
        assert_eq!(key.to_base64().as_str(), b64);
    }
    assert_eq!(MasterKey::from_base64("k", &b64).unwrap().bytes(), &bytes[..]);

    let short = dir.path().join("short.key");
    std::fs::write(&short, &bytes[..31]).unwrap();
    assert!(matches!(
        MasterKey::from_file("k", &short),
        Err(KeyError::KeyFileFormat { len: 31, .. }) | Err(KeyError::InvalidBase64 { .. })
    ));
    std::fs::write(&short, [0xffu8; 33]).unwrap();
    assert!(matches!(
        MasterKey::from_file("k", &short),
        Err(KeyError::KeyFileFormat { len: 33, .. })
    ));
    assert!(matches!(
        MasterKey::from_file("k", dir.path().join("missing")),
        Err(KeyError::ReadFile { .. })
    ));
    assert!(matches!(
        MasterKey::from_base64("k", "AAAA"),
        Err(KeyError::WrongLength { len: 3, .. })
    ));
    assert!(matches!(MasterKey::from_base64("k", "***"), Err(KeyError::InvalidBase64 { .. })));
    for bad in ["", "has space", "slash/", &"x".repeat(65), "é"] {
        assert!(
            matches!(MasterKey::from_bytes(bad, &bytes), Err(KeyError::InvalidId { .. })),
            "{bad:?}"
        );
    }
    assert!(MasterKey::from_bytes("x".repeat(64), &bytes).is_ok());

    let debug = format!("{:?}", MasterKey::from_bytes("k", &bytes).unwrap());
    assert!(!debug.contains("100") && debug.contains("redacted"), "{debug}");
}

#[test]
fn key_ring_rules() {
    let k = |id: &str| MasterKey::generate(id).unwrap();
    assert!(matches!(KeyRing::new("a", [k("a"), k("a")]), Err(KeyError::DuplicateId { .. })));
    let err = KeyRing::new("c", [k("a"), k("b")]).unwrap_err();
    assert!(err.to_string().contains("\"c\"") && err.to_string().contains("a, b"), "{err}");
    let ring = KeyRing::new("b", [k("b"), k("a")]).unwrap();
    assert_eq!(ring.active_id(), "b");
    assert_eq!(ring.active().id(), "b");
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["a", "b"]);
}

// ---- config --------------------------------------------------------------------------------

#[test]
fn config_parses_validates_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/k1.key"), [7u8; 32]).unwrap();
    let k2 = MasterKey::generate("k2").unwrap();
    let yaml = format!(
        "active_key: k2\nkeys:\n  - id: k1\n    file: keys/k1.key\n  - id: k2\n    base64: {}\n",
        k2.to_base64().as_str()
    );
    let config: EncryptionConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let ring = config.key_ring(dir.path()).unwrap();
    assert_eq!(ring.active_id(), "k2");
    assert_eq!(ring.get("k1").unwrap().bytes(), &[7u8; 32]);
    assert_eq!(ring.get("k2").unwrap().bytes(), k2.bytes());

    // Keys never appear in Debug or serialized output.
    let secret = k2.to_base64();
    let debug = format!("{config:?}");
    let json = serde_json::to_string(&config).unwrap();
    assert!(!debug.contains(secret.as_str()) && !json.contains(secret.as_str()));
    assert!(json.contains(REDACTED), "{json}");

    // Unknown fields are rejected.
    let typo = "active_key: k\nkeys:\n  - id: k\n    bas64: AAAA\n";
    let err = serde_yaml_ng::from_str::<EncryptionConfig>(typo).unwrap_err().to_string();
    assert!(err.contains("bas64"), "{err}");

    // A missing key file is an error naming the key and the path.
    let missing = EncryptionConfig {
        active_key: "k".into(),
        keys: vec![KeySource { id: "k".into(), file: Some("nope.key".into()), base64: None }],
    };
    let err = missing.key_ring(dir.path()).unwrap_err().to_string();
    assert!(err.contains("\"k\"") && err.contains("nope.key"), "{err}");
}

#[test]
fn config_validation_reports_every_problem() {
    let src = |id: &str, file: Option<&str>, b64: Option<&str>| KeySource {
        id: id.into(),
        file: file.map(Into::into),
        base64: b64.map(Into::into),
    };
    let config = EncryptionConfig {
        active_key: "missing".into(),
        keys: vec![
            src("ok", Some("a.key"), None),
            src("ok", Some("b.key"), None),
            src("bad id", Some("c.key"), None),
            src("none", None, None),
            src("both", Some("d.key"), Some("AAAA")),
            src("short", None, Some("AAAA")),
            src("empty", None, Some("")),
            src("junk", None, Some("not base64!")),
            src("echoed", None, Some(REDACTED)),
        ],
    };
    let issues = config.validate();
    let paths: Vec<&str> = issues.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "keys[1].id",
            "keys[2].id",
            "keys[3]",
            "keys[4]",
            "keys[5].base64",
            "keys[6].base64",
            "keys[7].base64",
            "keys[8].base64",
            "active_key"
        ],
        "{issues:#?}"
    );
    assert!(issues[4].1.contains("decodes to 3 bytes"), "{}", issues[4].1);
    assert!(issues[8].1.contains("\"missing\""), "{}", issues[8].1);
    assert!(!issues.iter().any(|(_, m)| m.contains("not base64!")), "messages quote no key");
    assert!(
        matches!(config.key_ring(Path::new(".")), Err(KeyError::InvalidConfig(v)) if v.len() == 9)
    );

    let empty = EncryptionConfig { active_key: "k".into(), keys: vec![] };
    let paths: Vec<String> = empty.validate().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["keys", "active_key"]);
}
