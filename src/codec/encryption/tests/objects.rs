//! Objects: round trips at chunk edges, tampering of every kind, writer errors.

use super::*;

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
