//! Error types of the encryption module. Every message says what failed and, where there is
//! one, what to do about it; none contains key material.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A master key, key ring or key configuration could not be built.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("invalid master key id {id:?}: an id is 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidId { id: String },

    #[error("master key {id:?}: a master key is 32 bytes (AES-256), got {len}")]
    WrongLength { id: String, len: usize },

    #[error(
        "master key {id:?}: not valid base64 (standard alphabet A-Z a-z 0-9 + /, padding \
         optional): {source}"
    )]
    InvalidBase64 {
        id: String,
        #[source]
        source: base64::DecodeError,
    },

    #[error("master key {id:?}: cannot read key file {}: {source}", path.display())]
    ReadFile {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "master key {id:?}: key file {} is {len} bytes and not text: it must hold exactly 32 \
         raw bytes or the base64 of 32 bytes",
        path.display()
    )]
    KeyFileFormat { id: String, path: PathBuf, len: usize },

    #[error(
        "master key {id:?}: key file {} is larger than {max} bytes (or never ends): it must \
         hold exactly 32 raw bytes or the base64 of 32 bytes",
        path.display()
    )]
    KeyFileTooLarge { id: String, path: PathBuf, max: usize },

    #[error("master key id {id:?} is configured twice; ids must be unique")]
    DuplicateId { id: String },

    #[error(
        "active key {active:?} is not in the key ring (configured: {configured}); add it or \
         choose one of those"
    )]
    ActiveKeyMissing { active: String, configured: String },

    #[error("the OS random number generator failed: {0}")]
    Random(String),

    /// `EncryptionConfig::key_ring` found configuration problems (as `validate` reports them).
    #[error("invalid encryption config: {}", issues_text(.0))]
    InvalidConfig(Vec<(String, String)>),
}

fn issues_text(issues: &[(String, String)]) -> String {
    issues.iter().map(|(path, msg)| format!("{path}: {msg}")).collect::<Vec<_>>().join("; ")
}

/// Encrypting failed.
#[derive(Debug, Error)]
pub enum EncryptionError {
    #[error("chunk size {0} is out of range: 1 to 16777216 (16 MiB) bytes")]
    InvalidChunkSize(u32),

    #[error("the OS random number generator failed: {0}")]
    Random(String),

    #[error("object too large: an encrypted object has at most 2^32 chunks")]
    TooManyChunks,

    #[error("AES-GCM encryption failed (input too large)")]
    Aead,

    #[error("the encrypting writer failed earlier and cannot be used any more")]
    Poisoned,

    #[error("writing encrypted output: {0}")]
    Io(#[from] io::Error),
}

impl From<EncryptionError> for io::Error {
    fn from(e: EncryptionError) -> io::Error {
        match e {
            EncryptionError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// Decrypting an object (or opening a persisted epoch key) failed. On any error the output
/// written so far must be discarded.
#[derive(Debug, Error)]
pub enum DecryptError {
    #[error("bad magic: not Hydrant encrypted data (expected it to start with {expected:?})")]
    BadMagic { expected: &'static str },

    #[error("unsupported format version {0} (this Hydrant reads version 1)")]
    UnsupportedVersion(u8),

    #[error("malformed header: {0}")]
    MalformedHeader(String),

    #[error("truncated: the data ends inside its header")]
    TruncatedHeader,

    #[error(
        "encrypted with master key {id:?}, which is not configured: add that key to the key \
         ring (hydrant.encryption.keys; configured now: {configured})"
    )]
    UnknownKeyId { id: String, configured: String },

    #[error(
        "the data key cannot be unwrapped with master key {id:?}: the key configured under \
         that id is not the one used to encrypt, or the header was modified"
    )]
    KeyMismatch { id: String },

    #[error("truncated: the object ends after {chunks} complete chunk(s) without its final chunk")]
    Truncated { chunks: u64 },

    #[error(
        "tampered chunk {index}: chunk {index} failed authentication (the object was modified, \
         or truncated inside this chunk, or its chunks were reordered)"
    )]
    TamperedChunk { index: u64 },

    #[error("object too large: more than 2^32 chunks")]
    TooManyChunks,

    #[error("reading encrypted input: {0}")]
    Read(#[source] io::Error),

    #[error("writing decrypted output: {0}")]
    Write(#[source] io::Error),
}

/// `RecordCipher::seal` refused or failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "record seq {seq} is not above seq {last}, already sealed in this epoch: sealing it \
         would reuse a nonce; start a new epoch (RecordCipher::new) before sealing reused \
         sequence numbers"
    )]
    SeqNotIncreasing { seq: u64, last: u64 },

    #[error("record seq {0} is out of range (u64::MAX cannot be sealed)")]
    SeqOutOfRange(u64),

    #[error(
        "this epoch key was opened from a persisted WrappedKey and can only open records; \
         start a new epoch (RecordCipher::new) to seal"
    )]
    ReadOnlyEpoch,

    #[error("record too large for AES-GCM")]
    Aead,
}

/// `RecordCipher::open` failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("sealed record is {len} bytes, shorter than the 20-byte minimum (truncated)")]
    TooShort { len: usize },

    #[error("sealed record is from epoch {record:08x}, this key is epoch {cipher:08x}")]
    WrongEpoch { record: u32, cipher: u32 },

    #[error(
        "record seq {seq} failed authentication: it was modified, or it is not the record \
         stored under this sequence number and epoch"
    )]
    Tampered { seq: u64 },
}
