//! The few AES-256-GCM operations everything else is built from (all via the RustCrypto
//! `aes-gcm` crate), and the OS random number generator.

use aes_gcm::aead::{Nonce, Tag};
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use rand::rngs::OsRng;
use rand::TryRngCore;
use zeroize::Zeroizing;

use super::keys::MasterKey;

pub(super) const KEY_LEN: usize = 32;
pub(super) const NONCE_LEN: usize = 12;
pub(super) const TAG_LEN: usize = 16;
/// A wrapped data key: 32 bytes of ciphertext, then the 16-byte tag.
pub(super) const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;

/// An AES-256-GCM instance for `key` (its key schedule is zeroized on drop).
pub(super) fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

pub(super) fn nonce(bytes: [u8; NONCE_LEN]) -> Nonce<Aes256Gcm> {
    Nonce::<Aes256Gcm>::from(bytes)
}

/// Splits `ciphertext || tag` into its two parts; `None` if shorter than a tag.
pub(super) fn split_tag(sealed: &mut [u8]) -> Option<(&mut [u8], Tag<Aes256Gcm>)> {
    let at = sealed.len().checked_sub(TAG_LEN)?;
    let (ct, tag) = sealed.split_at_mut(at);
    let tag = Tag::<Aes256Gcm>::try_from(&*tag).ok()?;
    Some((ct, tag))
}

/// Fills `buf` from the operating system's CSPRNG.
pub(super) fn fill_random(buf: &mut [u8]) -> Result<(), String> {
    OsRng.try_fill_bytes(buf).map_err(|e| e.to_string())
}

/// A fresh random data key.
pub(super) fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(&mut key[..])?;
    Ok(key)
}

/// Wraps `data_key` under `master`: `GCM-Encrypt(MK, nonce, DK, aad)` = 32 + 16 bytes.
pub(super) fn wrap_key(
    master: &MasterKey,
    data_key: &[u8; KEY_LEN],
    wrap_nonce: [u8; NONCE_LEN],
    aad: &[u8],
) -> Option<[u8; WRAPPED_LEN]> {
    let mut out = [0u8; WRAPPED_LEN];
    out[..KEY_LEN].copy_from_slice(data_key);
    let tag = cipher(master.bytes())
        .encrypt_inout_detached(&nonce(wrap_nonce), aad, (&mut out[..KEY_LEN]).into())
        .ok()?;
    out[KEY_LEN..].copy_from_slice(&tag);
    Some(out)
}

/// Unwraps a data key; `None` when the tag check fails (wrong master key or modified AAD).
pub(super) fn unwrap_key(
    master: &MasterKey,
    wrap_nonce: [u8; NONCE_LEN],
    wrapped: &[u8; WRAPPED_LEN],
    aad: &[u8],
) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&wrapped[..KEY_LEN]);
    let tag = Tag::<Aes256Gcm>::try_from(&wrapped[KEY_LEN..]).ok()?;
    cipher(master.bytes())
        .decrypt_inout_detached(&nonce(wrap_nonce), aad, (&mut key[..]).into(), &tag)
        .ok()?;
    Some(key)
}
