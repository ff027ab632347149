//! Client-side envelope encryption of objects, and encryption at rest of shard-log records.
//!
//! The formats are specified in `docs/encryption.md`; everything is AES-256-GCM from the
//! RustCrypto `aes-gcm` crate, with keys from the OS random number generator.
//!
//! * Objects: [`encrypt_writer`] / [`EncryptWriter`] (streaming) or [`encrypt`], and
//!   [`decrypt_stream`] / [`decrypt`]. A fresh data key per object, wrapped under the key
//!   ring's active master key, whose id the header names ([`header_key_id`]).
//! * Log records: [`RecordCipher`], one per shard per process start (epoch).
//! * Configuration: [`EncryptionConfig`] (`hydrant: { encryption: ... }`) → [`KeyRing`].

mod config;
mod error;
mod keys;
mod object;
mod primitives;
mod record;

#[cfg(test)]
mod tests;

pub use config::{EncryptionConfig, KeySource, REDACTED};
pub use error::{DecryptError, EncryptionError, KeyError, RecordError, SealError};
pub use keys::{is_valid_key_id, KeyRing, MasterKey, MAX_KEY_FILE_BYTES, MAX_KEY_ID_LEN};
pub use object::{
    decrypt, decrypt_stream, encrypt, encrypt_writer, header_key_id, EncryptWriter,
    DEFAULT_CHUNK_SIZE, MAGIC, MAX_CHUNK_SIZE, VERSION,
};
pub use record::{
    record_epoch_id, sealed_len, RecordCipher, WrappedKey, RECORD_OVERHEAD, RECORD_VERSION,
    WRAPPED_KEY_MAGIC,
};
