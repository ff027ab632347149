//! The test vectors in docs/encryption.md, and samples for the decrypt.py interoperability test.

use super::*;

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

const DOC: &str = include_str!("../../../../docs/encryption.md");

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
