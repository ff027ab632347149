//! Log-record format v1 (docs/encryption.md): each shard-log record payload sealed on its own
//! with the epoch's data key; nonce = epoch id || seq.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::{AeadInOut, Aes256Gcm};
use zeroize::Zeroizing;

use super::error::{DecryptError, EncryptionError, RecordError, SealError};
use super::keys::{is_valid_key_id, KeyRing, MAX_KEY_ID_LEN};
use super::primitives::{self, KEY_LEN, NONCE_LEN, TAG_LEN, WRAPPED_LEN};

/// First four bytes of a persisted [`WrappedKey`].
pub const WRAPPED_KEY_MAGIC: [u8; 4] = *b"HYDK";
/// Version of the wrapped-key and sealed-record formats.
pub const RECORD_VERSION: u8 = 1;
/// Bytes a sealed record has beyond its plaintext: 4-byte epoch id and 16-byte tag.
pub const RECORD_OVERHEAD: usize = EPOCH_ID_LEN + TAG_LEN;

const EPOCH_ID_LEN: usize = 4;
/// magic, version, key_id_len.
const WK_PREFIX_LEN: usize = 4 + 1 + 1;

/// An epoch's data key wrapped under a master key: the bytes to persist (once per epoch) so
/// that the epoch's records can be opened after a restart. Not secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    bytes: Vec<u8>,
    key_id: String,
    epoch_id: u32,
}

impl WrappedKey {
    /// Parses persisted bytes (does not unwrap anything).
    pub fn parse(bytes: &[u8]) -> Result<WrappedKey, DecryptError> {
        let magic_seen = bytes.len().min(4);
        if bytes[..magic_seen] != WRAPPED_KEY_MAGIC[..magic_seen] {
            return Err(DecryptError::BadMagic { expected: "HYDK" });
        }
        if bytes.len() < WK_PREFIX_LEN {
            return Err(DecryptError::TruncatedHeader);
        }
        if bytes[4] != RECORD_VERSION {
            return Err(DecryptError::UnsupportedVersion(bytes[4]));
        }
        let id_len = bytes[5] as usize;
        if !(1..=MAX_KEY_ID_LEN).contains(&id_len) {
            return Err(DecryptError::MalformedHeader(format!(
                "key id length {id_len} is out of range 1..={MAX_KEY_ID_LEN}"
            )));
        }
        let expected = WK_PREFIX_LEN + id_len + EPOCH_ID_LEN + NONCE_LEN + WRAPPED_LEN;
        if bytes.len() < expected {
            return Err(DecryptError::TruncatedHeader);
        }
        if bytes.len() > expected {
            return Err(DecryptError::MalformedHeader(format!(
                "wrapped key is {} bytes, expected {expected}",
                bytes.len()
            )));
        }
        let key_id = match std::str::from_utf8(&bytes[WK_PREFIX_LEN..WK_PREFIX_LEN + id_len]) {
            Ok(id) if is_valid_key_id(id) => id.to_owned(),
            _ => {
                return Err(DecryptError::MalformedHeader(
                    "the key id has characters outside A-Z a-z 0-9 . _ -".to_owned(),
                ))
            }
        };
        let at = WK_PREFIX_LEN + id_len;
        let epoch_id = u32::from_be_bytes(bytes[at..at + EPOCH_ID_LEN].try_into().expect("4"));
        Ok(WrappedKey { bytes: bytes.to_vec(), key_id, epoch_id })
    }

    /// The bytes to persist.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Id of the master key the data key is wrapped under.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The epoch's id (the first 4 bytes of each of its sealed records).
    pub fn epoch_id(&self) -> u32 {
        self.epoch_id
    }

    /// `AAD` of the wrap: everything before the wrap nonce.
    fn wrap_aad(&self) -> &[u8] {
        &self.bytes[..WK_PREFIX_LEN + self.key_id.len() + EPOCH_ID_LEN]
    }

    fn wrap_nonce(&self) -> [u8; NONCE_LEN] {
        let at = self.wrap_aad().len();
        self.bytes[at..at + NONCE_LEN].try_into().expect("12 bytes")
    }

    fn wrapped(&self) -> [u8; WRAPPED_LEN] {
        let at = self.wrap_aad().len() + NONCE_LEN;
        self.bytes[at..at + WRAPPED_LEN].try_into().expect("48 bytes")
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("key_id", &self.key_id)
            .field("epoch_id", &format_args!("{:08x}", self.epoch_id))
            .finish_non_exhaustive()
    }
}

/// The epoch id of a sealed record (its first 4 bytes), to pick the epoch key that opens it.
pub fn record_epoch_id(sealed: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(sealed.get(..EPOCH_ID_LEN)?.try_into().ok()?))
}

/// Length of a sealed record of a `plaintext_len`-byte payload.
pub const fn sealed_len(plaintext_len: usize) -> usize {
    plaintext_len + RECORD_OVERHEAD
}

/// Seals and opens the records of one shard's log in one epoch.
///
/// Create one with [`RecordCipher::new`] per shard at every process start (and again after a
/// failed write whose sequence numbers will be reused), persist its [`WrappedKey`], and keep
/// the ciphers of older epochs (from [`RecordCipher::open_existing`]) to read their records.
/// Never share one between shards: their sequence numbers overlap.
pub struct RecordCipher {
    cipher: Aes256Gcm,
    epoch_id: u32,
    key_id: String,
    /// Whether this epoch was created here (and so may seal).
    sealable: bool,
    /// Lowest `seq` that may be sealed next: one more than the highest sealed so far.
    next_seq: AtomicU64,
}

impl RecordCipher {
    /// A new epoch: a fresh random data key, wrapped under the ring's active key.
    pub fn new(ring: &KeyRing) -> Result<(RecordCipher, WrappedKey), EncryptionError> {
        let data_key = primitives::random_key().map_err(EncryptionError::Random)?;
        let mut epoch = [0u8; EPOCH_ID_LEN];
        let mut wrap_nonce = [0u8; NONCE_LEN];
        primitives::fill_random(&mut epoch).map_err(EncryptionError::Random)?;
        primitives::fill_random(&mut wrap_nonce).map_err(EncryptionError::Random)?;
        RecordCipher::with_secrets(ring, data_key, u32::from_be_bytes(epoch), wrap_nonce)
    }

    /// Fixed secrets, for test vectors only.
    #[cfg(test)]
    pub(super) fn with_fixed_secrets(
        ring: &KeyRing,
        data_key: [u8; KEY_LEN],
        epoch_id: u32,
        wrap_nonce: [u8; NONCE_LEN],
    ) -> Result<(RecordCipher, WrappedKey), EncryptionError> {
        RecordCipher::with_secrets(ring, Zeroizing::new(data_key), epoch_id, wrap_nonce)
    }

    fn with_secrets(
        ring: &KeyRing,
        data_key: Zeroizing<[u8; KEY_LEN]>,
        epoch_id: u32,
        wrap_nonce: [u8; NONCE_LEN],
    ) -> Result<(RecordCipher, WrappedKey), EncryptionError> {
        let master = ring.active();
        let key_id = master.id();
        let mut bytes = Vec::with_capacity(WK_PREFIX_LEN + key_id.len() + 4 + 12 + WRAPPED_LEN);
        bytes.extend_from_slice(&WRAPPED_KEY_MAGIC);
        bytes.push(RECORD_VERSION);
        bytes.push(key_id.len() as u8); // 1..=64: checked by MasterKey
        bytes.extend_from_slice(key_id.as_bytes());
        bytes.extend_from_slice(&epoch_id.to_be_bytes());
        let wrapped = primitives::wrap_key(master, &data_key, wrap_nonce, &bytes)
            .ok_or(EncryptionError::Aead)?;
        bytes.extend_from_slice(&wrap_nonce);
        bytes.extend_from_slice(&wrapped);
        let cipher = RecordCipher {
            cipher: primitives::cipher(&data_key),
            epoch_id,
            key_id: key_id.to_owned(),
            sealable: true,
            next_seq: AtomicU64::new(0),
        };
        Ok((cipher, WrappedKey { bytes, key_id: key_id.to_owned(), epoch_id }))
    }

    /// An earlier epoch's cipher, from its persisted [`WrappedKey`] bytes. It can only
    /// [`open`](RecordCipher::open): sealing with an old epoch's key after a restart could
    /// reuse nonces.
    pub fn open_existing(ring: &KeyRing, wrapped: &[u8]) -> Result<RecordCipher, DecryptError> {
        let wrapped = WrappedKey::parse(wrapped)?;
        let master = ring.get(wrapped.key_id()).ok_or_else(|| DecryptError::UnknownKeyId {
            id: wrapped.key_id.clone(),
            configured: ring.id_list(),
        })?;
        let data_key = primitives::unwrap_key(
            master,
            wrapped.wrap_nonce(),
            &wrapped.wrapped(),
            wrapped.wrap_aad(),
        )
        .ok_or_else(|| DecryptError::KeyMismatch { id: wrapped.key_id.clone() })?;
        Ok(RecordCipher {
            cipher: primitives::cipher(&data_key),
            epoch_id: wrapped.epoch_id,
            key_id: wrapped.key_id,
            sealable: false,
            next_seq: AtomicU64::new(u64::MAX),
        })
    }

    pub fn epoch_id(&self) -> u32 {
        self.epoch_id
    }

    /// Id of the master key this epoch's data key is wrapped under.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether this cipher may seal (it was created by `new`, not `open_existing`).
    pub fn can_seal(&self) -> bool {
        self.sealable
    }

    /// Seals the payload of record `seq`: `epoch id || ciphertext || tag`
    /// ([`sealed_len`] bytes). `seq` must be greater than every `seq` sealed before by this
    /// cipher.
    pub fn seal(&self, seq: u64, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::with_capacity(sealed_len(plaintext.len()));
        self.seal_into(seq, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`seal`](RecordCipher::seal), appending to `out` (e.g. a group-commit buffer). On
    /// error `out` is unchanged.
    pub fn seal_into(
        &self,
        seq: u64,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        if !self.sealable {
            return Err(SealError::ReadOnlyEpoch);
        }
        let next = seq.checked_add(1).ok_or(SealError::SeqOutOfRange(seq))?;
        let floor = self.next_seq.fetch_max(next, Ordering::AcqRel);
        if seq < floor {
            return Err(SealError::SeqNotIncreasing { seq, last: floor - 1 });
        }
        let start = out.len();
        out.extend_from_slice(&self.epoch_id.to_be_bytes());
        out.extend_from_slice(plaintext);
        let aad = seq.to_be_bytes();
        match self.cipher.encrypt_inout_detached(
            &primitives::nonce(self.nonce(seq)),
            &aad,
            (&mut out[start + EPOCH_ID_LEN..]).into(),
        ) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(SealError::Aead)
            }
        }
    }

    /// Opens the sealed payload of record `seq`.
    pub fn open(&self, seq: u64, sealed: &[u8]) -> Result<Vec<u8>, RecordError> {
        if sealed.len() < RECORD_OVERHEAD {
            return Err(RecordError::TooShort { len: sealed.len() });
        }
        let record = record_epoch_id(sealed).expect("length checked");
        if record != self.epoch_id {
            return Err(RecordError::WrongEpoch { record, cipher: self.epoch_id });
        }
        let mut body = sealed[EPOCH_ID_LEN..].to_vec();
        let (ciphertext, tag) = primitives::split_tag(&mut body).expect("length checked");
        self.cipher
            .decrypt_inout_detached(
                &primitives::nonce(self.nonce(seq)),
                &seq.to_be_bytes(),
                ciphertext.into(),
                &tag,
            )
            .map_err(|_| RecordError::Tampered { seq })?;
        body.truncate(body.len() - TAG_LEN);
        Ok(body)
    }

    fn nonce(&self, seq: u64) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..EPOCH_ID_LEN].copy_from_slice(&self.epoch_id.to_be_bytes());
        nonce[EPOCH_ID_LEN..].copy_from_slice(&seq.to_be_bytes());
        nonce
    }
}

impl fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordCipher")
            .field("key_id", &self.key_id)
            .field("epoch_id", &format_args!("{:08x}", self.epoch_id))
            .field("can_seal", &self.sealable)
            .finish_non_exhaustive()
    }
}
