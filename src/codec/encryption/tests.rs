use std::io::{self, Write};
use std::path::Path;

use super::*;

const C: usize = DEFAULT_CHUNK_SIZE as usize;

// ---- helpers -------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift), so that failures reproduce.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn vector_master() -> MasterKey {
    MasterKey::from_bytes("test-key-1", &(0u8..32).collect::<Vec<_>>()).unwrap()
}

fn vector_ring() -> KeyRing {
    KeyRing::new("test-key-1", [vector_master()]).unwrap()
}

fn ring(active: &str, ids: &[&str]) -> KeyRing {
    KeyRing::new(active, ids.iter().map(|id| MasterKey::generate(*id).unwrap())).unwrap()
}

const VECTOR_DK: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = 0x40 + i as u8;
        i += 1;
    }
    k
};
const VECTOR_PREFIX: [u8; 8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];
const VECTOR_WRAP_NONCE: [u8; 12] =
    [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb];

/// An object with the test-vector secrets and `chunk_size`.
fn fixed_object(ring: &KeyRing, plaintext: &[u8], chunk_size: u32) -> Vec<u8> {
    let mut w = EncryptWriter::with_fixed_secrets(
        ring,
        Vec::new(),
        chunk_size,
        VECTOR_DK,
        VECTOR_PREFIX,
        VECTOR_WRAP_NONCE,
    )
    .unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

fn small_object(ring: &KeyRing, plaintext: &[u8], chunk_size: u32) -> Vec<u8> {
    let mut w = EncryptWriter::with_chunk_size(ring, Vec::new(), chunk_size).unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// Decrypts, returning the error and whatever was written before it.
fn try_decrypt(ring: &KeyRing, object: &[u8]) -> (Result<u64, DecryptError>, Vec<u8>) {
    let mut out = Vec::new();
    let result = decrypt_stream(ring, object, &mut out);
    (result, out)
}

fn expected_len(id_len: usize, n: usize, chunk: usize) -> usize {
    78 + id_len + n + 16 * (n / chunk + 1)
}

// ---- round trips ---------------------------------------------------------------------------

#[test]
fn round_trips_at_chunk_edges_and_5_mb() {
    let ring = ring("k1", &["k1"]);
    for (i, len) in [0, 1, C - 1, C, C + 1, 3 * C + 1234, 5_000_000].into_iter().enumerate() {
        let plaintext = data(len, i as u64);
        let object = encrypt(&ring, &plaintext).unwrap();
        assert_eq!(object.len(), expected_len(2, len, C), "size of object of {len} bytes");
        assert_eq!(header_key_id(&object).unwrap(), "k1");
        let mut out = Vec::new();
        assert_eq!(decrypt_stream(&ring, object.as_slice(), &mut out).unwrap(), len as u64);
        assert!(out == plaintext, "round trip of {len} bytes");
    }
}

/// A reader that returns 1 to 7 bytes per call and an `Interrupted` error now and then.
struct Trickle<'a>(&'a [u8], usize);

impl io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 += 1;
        if self.1.is_multiple_of(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = (self.1 % 7 + 1).min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn decrypt_stream_handles_short_reads() {
    let ring = ring("k", &["k"]);
    for len in [0usize, 15, 16, 17, 100] {
        let plaintext = data(len, 5);
        let object = small_object(&ring, &plaintext, 16);
        let mut out = Vec::new();
        assert_eq!(decrypt_stream(&ring, Trickle(&object, 0), &mut out).unwrap(), len as u64);
        assert_eq!(out, plaintext);
    }
}

#[test]
fn empty_plaintext_is_header_and_one_tag() {
    let ring = vector_ring();
    let object = fixed_object(&ring, b"", 16);
    assert_eq!(object.len(), 88 + 16);
    assert_eq!(decrypt(&ring, &object).unwrap(), b"");
    // Header alone is truncated, not empty.
    assert!(matches!(decrypt(&ring, &object[..88]), Err(DecryptError::Truncated { chunks: 0 })));
}

#[test]
fn streaming_small_writes_equal_one_shot() {
    let ring = vector_ring();
    let plaintext = data(3 * C + 999, 7);
    let one_shot = fixed_object(&ring, &plaintext, DEFAULT_CHUNK_SIZE);

    let mut w = EncryptWriter::with_fixed_secrets(
        &ring,
        Vec::new(),
        DEFAULT_CHUNK_SIZE,
        VECTOR_DK,
        VECTOR_PREFIX,
        VECTOR_WRAP_NONCE,
    )
    .unwrap();
    let sizes = [1usize, 7, 0, 1000, 3, 65_535, 2, 65_537, 17];
    let mut rest = plaintext.as_slice();
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        assert_eq!(w.write(&rest[..n]).unwrap(), n);
        w.flush().unwrap();
        rest = &rest[n..];
        i += 1;
    }
    assert_eq!(w.plaintext_len(), plaintext.len() as u64);
    assert_eq!(w.key_id(), "test-key-1");
    let streamed = w.finish().unwrap();
    assert!(streamed == one_shot);
    assert!(decrypt(&ring, &streamed).unwrap() == plaintext);

    // Random secrets: the same plaintext encrypts differently each time.
    assert_ne!(encrypt(&ring, &plaintext).unwrap(), encrypt(&ring, &plaintext).unwrap());
}

#[test]
fn chunk_size_limits() {
    let ring = ring("k", &["k"]);
    assert!(matches!(
        EncryptWriter::with_chunk_size(&ring, Vec::new(), 0),
        Err(EncryptionError::InvalidChunkSize(0))
    ));
    assert!(EncryptWriter::with_chunk_size(&ring, Vec::new(), MAX_CHUNK_SIZE + 1).is_err());
    for chunk in [1u32, 2, 5, 16, MAX_CHUNK_SIZE] {
        let plaintext = data(40, chunk as u64);
        let object = small_object(&ring, &plaintext, chunk);
        assert_eq!(object.len(), expected_len(1, 40, chunk as usize));
        assert_eq!(decrypt(&ring, &object).unwrap(), plaintext);
    }
}

// ---- tampering -----------------------------------------------------------------------------

#[test]
fn every_single_byte_flip_fails_and_releases_no_unauthenticated_plaintext() {
    let ring = vector_ring();
    let plaintext = data(40, 1); // chunks of 16, 16, 8 (final)
    let object = small_object(&ring, &plaintext, 16);
    let header_len = 88;
    assert_eq!(object.len(), header_len + 40 + 3 * 16);
    for pos in 0..object.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = object.clone();
            bad[pos] ^= mask;
            let (result, out) = try_decrypt(&ring, &bad);
            assert!(result.is_err(), "flip of byte {pos} (mask {mask:#x}) was accepted");
            if pos >= header_len {
                let chunk = (pos - header_len) / 32;
                assert!(
                    matches!(result, Err(DecryptError::TamperedChunk { index }) if index == chunk as u64),
                    "byte {pos}: {result:?}"
                );
                // Only the chunks before the tampered one were released.
                assert_eq!(out, plaintext[..chunk * 16], "byte {pos}");
            } else {
                assert!(out.is_empty(), "byte {pos}: header damage released plaintext");
            }
        }
    }
}

#[test]
fn header_damage_is_named() {
    let ring = vector_ring();
    let object = fixed_object(&ring, b"abc", 16);
    let with = |pos: usize, value: u8| {
        let mut bad = object.clone();
        bad[pos] = value;
        decrypt(&ring, &bad).unwrap_err()
    };
    assert!(matches!(with(0, b'X'), DecryptError::BadMagic { .. }));
    assert!(matches!(with(4, 2), DecryptError::UnsupportedVersion(2)));
    assert!(matches!(with(9, 0), DecryptError::MalformedHeader(_)));
    assert!(matches!(with(9, 65), DecryptError::MalformedHeader(_)));
    assert!(matches!(with(10, b'/'), DecryptError::MalformedHeader(_)));
    // Another valid id that is not configured.
    assert!(matches!(with(10, b'b'), DecryptError::UnknownKeyId { .. }));
    // Nonce prefix, wrap nonce and wrapped key are the wrap's AAD or input.
    for pos in [20, 30, 40, 87] {
        assert!(matches!(with(pos, object[pos] ^ 1), DecryptError::KeyMismatch { .. }));
    }
    // Chunk size changed to another valid value: it is part of the wrap's AAD.
    let mut bad = object.clone();
    bad[8] ^= 1;
    assert!(matches!(decrypt(&ring, &bad), Err(DecryptError::KeyMismatch { .. })));
    assert!(matches!(decrypt(&ring, b"PK\x03\x04 a zip file"), Err(DecryptError::BadMagic { .. })));
    assert!(matches!(decrypt(&ring, b"HYD"), Err(DecryptError::TruncatedHeader)));
    assert!(decrypt(&ring, b"").is_err());
}

#[test]
fn truncation_at_every_length_fails() {
    let ring = vector_ring();
    for len in [40usize, 48] {
        // 48 = 3 full chunks and an empty final chunk.
        let plaintext = data(len, 2);
        let object = small_object(&ring, &plaintext, 16);
        for cut in 0..object.len() {
            let (result, out) = try_decrypt(&ring, &object[..cut]);
            let err = result.expect_err(&format!("object cut to {cut} bytes was accepted"));
            if cut >= 88 {
                let body = cut - 88;
                let (full_chunks, partial) = (body / 32, body % 32);
                match err {
                    DecryptError::Truncated { chunks } => {
                        assert!(partial < 16, "cut {cut}");
                        assert_eq!(chunks, full_chunks as u64, "cut {cut}");
                    }
                    DecryptError::TamperedChunk { index } => {
                        assert!(partial >= 16, "cut {cut}");
                        assert_eq!(index, full_chunks as u64, "cut {cut}");
                    }
                    other => panic!("cut {cut}: {other}"),
                }
                assert_eq!(out, plaintext[..full_chunks * 16], "cut {cut}");
                assert!(err.to_string().contains("truncated"), "{err}");
            } else {
                assert!(matches!(err, DecryptError::TruncatedHeader), "cut {cut}: {err}");
            }
        }
    }
}

#[test]
fn dropping_the_final_chunk_fails() {
    let ring = vector_ring();
    // Short final chunk (40 = 16 + 16 + 8), and empty final chunk (32 = 16 + 16 + 0).
    for (len, final_len) in [(40usize, 8 + 16), (32, 16)] {
        let object = small_object(&ring, &data(len, 3), 16);
        let err = decrypt(&ring, &object[..object.len() - final_len]).unwrap_err();
        assert!(matches!(err, DecryptError::Truncated { chunks: 2 }), "{err}");
        assert_eq!(
            err.to_string(),
            "truncated: the object ends after 2 complete chunk(s) without its final chunk"
        );
    }
}

#[test]
fn reordered_duplicated_or_appended_chunks_fail() {
    let ring = vector_ring();
    let object = small_object(&ring, &data(56, 4), 16); // chunks 0, 1, 2 of 32 bytes; final 24
    let (header, body) = object.split_at(88);
    let chunk = |i: usize| &body[i * 32..(i + 1) * 32];
    let final_chunk = &body[96..];
    let build = |parts: &[&[u8]]| {
        [header].iter().chain(parts).flat_map(|p| p.to_vec()).collect::<Vec<u8>>()
    };

    let swapped = build(&[chunk(1), chunk(0), chunk(2), final_chunk]);
    assert!(matches!(decrypt(&ring, &swapped), Err(DecryptError::TamperedChunk { index: 0 })));
    let swapped_later = build(&[chunk(0), chunk(2), chunk(1), final_chunk]);
    assert!(matches!(
        decrypt(&ring, &swapped_later),
        Err(DecryptError::TamperedChunk { index: 1 })
    ));
    let duplicated = build(&[chunk(0), chunk(0), chunk(1), chunk(2), final_chunk]);
    assert!(matches!(decrypt(&ring, &duplicated), Err(DecryptError::TamperedChunk { index: 1 })));
    let dropped_middle = build(&[chunk(0), chunk(2), final_chunk]);
    assert!(decrypt(&ring, &dropped_middle).is_err());
    let mut appended = object.clone();
    appended.push(0);
    assert!(matches!(decrypt(&ring, &appended), Err(DecryptError::TamperedChunk { index: 3 })));
    // A chunk of another object (same key ring, same position) does not fit.
    let other = small_object(&ring, &data(56, 4), 16);
    let mixed = build(&[&other[88..120], chunk(1), chunk(2), final_chunk]);
    assert!(decrypt(&ring, &mixed).is_err());
}

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

// ---- writer errors -------------------------------------------------------------------------

struct FailAfter(usize);

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0 < buf.len() {
            return Err(io::Error::other("disk full"));
        }
        self.0 -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_is_poisoned_after_an_inner_error() {
    let ring = ring("k", &["k"]);
    assert!(matches!(
        EncryptWriter::with_chunk_size(&ring, FailAfter(10), 16),
        Err(EncryptionError::Io(_))
    ));
    let mut w = EncryptWriter::with_chunk_size(&ring, FailAfter(80), 16).unwrap(); // header 79
    assert_eq!(w.write(&[1; 15]).unwrap(), 15); // buffered
    assert_eq!(w.write(&[1; 1]).unwrap_err().to_string(), "disk full");
    assert!(w.write(&[1]).unwrap_err().to_string().contains("failed earlier"));
    assert!(matches!(w.finish(), Err(EncryptionError::Poisoned)));
}

// ---- log records ---------------------------------------------------------------------------

#[test]
fn record_seal_open_round_trip() {
    let ring = ring("k1", &["k1"]);
    let (cipher, wrapped) = RecordCipher::new(&ring).unwrap();
    assert!(cipher.can_seal());
    assert_eq!(wrapped.key_id(), "k1");
    assert_eq!(wrapped.epoch_id(), cipher.epoch_id());
    for (seq, len) in [(0u64, 0usize), (1, 1), (2, 100), (10, 70_000)] {
        let payload = data(len, seq);
        let sealed = cipher.seal(seq, &payload).unwrap();
        assert_eq!(sealed.len(), len + RECORD_OVERHEAD);
        assert_eq!(sealed.len(), sealed_len(len));
        assert_eq!(record_epoch_id(&sealed), Some(cipher.epoch_id()));
        assert_eq!(cipher.open(seq, &sealed).unwrap(), payload);
    }
    let mut group = b"frame header".to_vec();
    cipher.seal_into(11, b"appended", &mut group).unwrap();
    assert_eq!(cipher.open(11, &group[12..]).unwrap(), b"appended");
}

#[test]
fn record_wrong_seq_or_any_flip_fails() {
    let ring = ring("k1", &["k1"]);
    let (cipher, _) = RecordCipher::new(&ring).unwrap();
    let sealed = cipher.seal(5, b"payload").unwrap();
    assert_eq!(cipher.open(6, &sealed), Err(RecordError::Tampered { seq: 6 }));
    assert_eq!(cipher.open(4, &sealed), Err(RecordError::Tampered { seq: 4 }));
    for pos in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[pos] ^= 1;
        assert!(cipher.open(5, &bad).is_err(), "flip at {pos}");
    }
    assert_eq!(cipher.open(5, &sealed[..19]), Err(RecordError::TooShort { len: 19 }));
    assert!(cipher.open(5, &sealed[..sealed.len() - 1]).is_err());
}

#[test]
fn record_seq_must_increase_within_an_epoch() {
    let ring = ring("k1", &["k1"]);
    let (cipher, _) = RecordCipher::new(&ring).unwrap();
    cipher.seal(0, b"a").unwrap();
    cipher.seal(1, b"b").unwrap();
    assert_eq!(cipher.seal(1, b"other"), Err(SealError::SeqNotIncreasing { seq: 1, last: 1 }));
    assert_eq!(cipher.seal(0, b"other"), Err(SealError::SeqNotIncreasing { seq: 0, last: 1 }));
    let mut out = b"kept".to_vec();
    assert!(cipher.seal_into(1, b"x", &mut out).is_err());
    assert_eq!(out, b"kept");
    cipher.seal(7, b"gaps are fine").unwrap();
    assert!(cipher.seal(6, b"but not going back").is_err());
    assert_eq!(cipher.seal(u64::MAX, b""), Err(SealError::SeqOutOfRange(u64::MAX)));
}

#[test]
fn record_epochs_open_their_own_records() {
    let a = MasterKey::generate("a").unwrap();
    let b = MasterKey::generate("b").unwrap();
    let ring_a = KeyRing::new("a", [a.clone()]).unwrap();
    let (epoch1, wrapped1) = RecordCipher::new(&ring_a).unwrap();
    let r1 = epoch1.seal(0, b"epoch one").unwrap();
    let persisted = wrapped1.clone().into_bytes();
    drop(epoch1);

    // "Restart" with a rotated ring: new epoch under b, old epoch reopened under a.
    let ring_ab = KeyRing::new("b", [a, b]).unwrap();
    let (epoch2, wrapped2) = RecordCipher::new(&ring_ab).unwrap();
    assert_eq!(wrapped2.key_id(), "b");
    let r2 = epoch2.seal(0, b"epoch two").unwrap(); // seq 0 again: another key
    let old = RecordCipher::open_existing(&ring_ab, &persisted).unwrap();
    assert_eq!(old.key_id(), "a");
    assert_eq!(old.epoch_id(), wrapped1.epoch_id());
    assert_eq!(old.open(0, &r1).unwrap(), b"epoch one");
    assert_eq!(epoch2.open(0, &r2).unwrap(), b"epoch two");
    assert!(old.open(0, &r2).is_err());
    assert!(epoch2.open(0, &r1).is_err());
    if old.epoch_id() != epoch2.epoch_id() {
        assert!(matches!(old.open(0, &r2), Err(RecordError::WrongEpoch { .. })));
    }
    // A reopened epoch cannot seal.
    assert!(!old.can_seal());
    assert_eq!(old.seal(1, b"x"), Err(SealError::ReadOnlyEpoch));

    // Its master key must be configured, and be the right one.
    let ring_b_only = KeyRing::new("b", [MasterKey::generate("b").unwrap()]).unwrap();
    let err = RecordCipher::open_existing(&ring_b_only, &persisted).unwrap_err();
    assert!(matches!(&err, DecryptError::UnknownKeyId { id, .. } if id == "a"), "{err}");
    let ring_wrong_a = KeyRing::new("a", [MasterKey::generate("a").unwrap()]).unwrap();
    assert!(matches!(
        RecordCipher::open_existing(&ring_wrong_a, &persisted),
        Err(DecryptError::KeyMismatch { .. })
    ));
    // Any change to the persisted bytes is caught.
    for pos in 0..persisted.len() {
        let mut bad = persisted.clone();
        bad[pos] ^= 1;
        assert!(RecordCipher::open_existing(&ring_ab, &bad).is_err(), "flip at {pos}");
    }
    for cut in 0..persisted.len() {
        assert!(RecordCipher::open_existing(&ring_ab, &persisted[..cut]).is_err());
    }
    let mut longer = persisted.clone();
    longer.push(0);
    assert!(WrappedKey::parse(&longer).is_err());
}

// ---- test vectors --------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_block(bytes: &[u8]) -> String {
    let h = hex(bytes);
    let lines: Vec<&str> =
        h.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "```text\n{}\n```\n",
        if lines.is_empty() { "(empty)".to_owned() } else { lines.join("\n") }
    )
}

const OBJECT_VECTORS: [(&str, &[u8]); 3] = [
    ("empty plaintext", b""),
    ("three chunks (16 + 16 + 7)", b"Hydrant encrypts objects chunk by chunk"),
    ("exact multiple of the chunk size: empty final chunk", b"0123456789abcdef0123456789ABCDEF"),
];

const RECORD_VECTOR_EPOCH: u32 = 0x0102_0304;
const RECORD_VECTOR_SEQ: u64 = 42;
const RECORD_VECTOR_PAYLOAD: &[u8] = b"hello, log";

/// The markdown of the test-vector sections, as docs/encryption.md must contain it.
fn vectors_markdown() -> (String, String) {
    let ring = vector_ring();
    let mut objects = String::new();
    for (i, (name, plaintext)) in OBJECT_VECTORS.iter().enumerate() {
        let object = fixed_object(&ring, plaintext, 16);
        let (header, chunks) = object.split_at(88);
        objects += &format!("### Vector {}: {name}\n\n", i + 1);
        objects += &if plaintext.is_empty() {
            "Plaintext: empty (0 bytes).\n\n".to_owned()
        } else {
            format!(
                "Plaintext, {} bytes (ASCII): `{}`\n\n",
                plaintext.len(),
                std::str::from_utf8(plaintext).unwrap()
            )
        };
        objects += &format!("Header `H` (88 bytes):\n\n{}\n", hex_block(header));
        for (j, chunk) in chunks.chunks(32).enumerate() {
            let last = j == chunks.len().div_ceil(32) - 1;
            objects += &format!(
                "Chunk {j} ({} bytes{}):\n\n{}\n",
                chunk.len(),
                if last { ", final" } else { "" },
                hex_block(chunk)
            );
        }
        objects += &format!("Whole object ({} bytes):\n\n{}\n", object.len(), hex_block(&object));
    }

    let (cipher, wrapped) =
        RecordCipher::with_fixed_secrets(&ring, VECTOR_DK, RECORD_VECTOR_EPOCH, VECTOR_WRAP_NONCE)
            .unwrap();
    let sealed = cipher.seal(RECORD_VECTOR_SEQ, RECORD_VECTOR_PAYLOAD).unwrap();
    let record = format!(
        "Master key as above (`test-key-1`, bytes `00 .. 1f`), data key `40 .. 5f`, epoch id \
         `{RECORD_VECTOR_EPOCH:08x}`, wrap nonce `b0 .. bb`.\n\n\
         WrappedKey ({} bytes):\n\n{}\n\
         Record seq {RECORD_VECTOR_SEQ}, payload `{}` ({} bytes), sealed ({} bytes):\n\n{}",
        wrapped.as_bytes().len(),
        hex_block(wrapped.as_bytes()),
        std::str::from_utf8(RECORD_VECTOR_PAYLOAD).unwrap(),
        RECORD_VECTOR_PAYLOAD.len(),
        sealed.len(),
        hex_block(&sealed),
    );
    (objects, record)
}

const DOC: &str = include_str!("../../../docs/encryption.md");

#[test]
fn doc_test_vectors_match_the_code() {
    let (objects, record) = vectors_markdown();
    assert!(DOC.contains(&objects), "object vectors differ; run `print_test_vectors`");
    assert!(DOC.contains(&record), "record vector differs; run `print_test_vectors`");
    // And they decrypt.
    let ring = vector_ring();
    for (_, plaintext) in OBJECT_VECTORS {
        assert_eq!(decrypt(&ring, &fixed_object(&ring, plaintext, 16)).unwrap(), plaintext);
    }
}

/// `cargo test print_test_vectors -- --ignored --nocapture` prints the doc's vector sections.
#[test]
#[ignore]
fn print_test_vectors() {
    let (objects, record) = vectors_markdown();
    println!("=====OBJECTS=====\n{objects}=====RECORD=====\n{record}=====END=====");
}

// ---- interoperability with decrypt.py ------------------------------------------------------

/// Writes sample objects for `check_python.sh`: `NAME.hye` (encrypted), `NAME.plain`
/// (expected), `master.key` (base64 text) and `master.raw` (32 bytes), into
/// `$HYDRANT_INTEROP_DIR`.
#[test]
#[ignore]
fn write_interop_samples() {
    let dir = std::env::var_os("HYDRANT_INTEROP_DIR").expect("set HYDRANT_INTEROP_DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let master = MasterKey::generate("interop-key").unwrap();
    std::fs::write(dir.join("master.key"), format!("{}\n", master.to_base64().as_str())).unwrap();
    std::fs::write(dir.join("master.raw"), master.bytes()).unwrap();
    let ring = KeyRing::new("interop-key", [master]).unwrap();

    let mut samples: Vec<(String, Vec<u8>, u32)> =
        [0usize, 1, C - 1, C, C + 1, 3 * C + 1234, 5_000_000]
            .into_iter()
            .map(|n| (format!("size-{n}"), data(n, n as u64), DEFAULT_CHUNK_SIZE))
            .collect();
    samples.push(("chunk16-40".into(), data(40, 9), 16));
    samples.push(("chunk16-48".into(), data(48, 10), 16));
    samples.push(("chunk1-5".into(), data(5, 11), 1));
    for (name, plaintext, chunk) in samples {
        let object = small_object(&ring, &plaintext, chunk);
        std::fs::write(dir.join(format!("{name}.hye")), object).unwrap();
        std::fs::write(dir.join(format!("{name}.plain")), plaintext).unwrap();
    }
    // The doc's vectors too, with their key.
    let vring = vector_ring();
    std::fs::write(dir.join("vector.raw"), vector_master().bytes()).unwrap();
    for (i, (_, plaintext)) in OBJECT_VECTORS.iter().enumerate() {
        std::fs::write(
            dir.join(format!("vector-{}.hye", i + 1)),
            fixed_object(&vring, plaintext, 16),
        )
        .unwrap();
        std::fs::write(dir.join(format!("vector-{}.plain", i + 1)), plaintext).unwrap();
    }
}
