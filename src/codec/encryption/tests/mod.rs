//! Tests of envelope encryption, by subject; the helpers and fixed keys they share are here.

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

mod keys;
mod objects;
mod records;
mod vectors;
