//! Encryption at rest of a shard's records (Firehose's server-side encryption for Direct
//! PUT), with the stream's `hydrant.encryption` keys.
//!
//! Each process start opens a new *epoch*: a fresh data key, wrapped under the active master
//! key and persisted (fsync'd) in `<shard>/keys/<epoch>.key` before any record uses it. A
//! record's payload in the log is `u64 BE counter | sealed record` (docs/encryption.md, "log
//! records"); the counter is the nonce's sequence part, strictly increasing within an epoch
//! and never reused because every start gets a new data key. Older epochs stay readable as
//! long as their master key is configured.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use crate::codec::encryption::{record_epoch_id, KeyRing, RecordCipher};

/// Why a shard's keys could not be loaded or a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("log encryption keys in {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
    #[error("log encryption key file {file}: {message}")]
    Key { file: PathBuf, message: String },
    #[error("encrypting a log record failed: {0}")]
    Seal(String),
    #[error("decrypting a log record failed: {0}")]
    Open(String),
}

/// The ciphers of one shard: the current epoch (seals) and every earlier one (opens).
pub struct ShardCipher {
    writer: Mutex<(u64, RecordCipher)>,
    epochs: Vec<RecordCipher>,
}

impl std::fmt::Debug for ShardCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardCipher").field("epochs", &self.epochs.len()).finish()
    }
}

impl ShardCipher {
    /// Loads the shard's existing epochs and starts a new one.
    pub fn open(shard_dir: &Path, ring: &KeyRing) -> Result<Self, AtRestError> {
        let dir = shard_dir.join("keys");
        let io_err = |source| AtRestError::Io { dir: dir.clone(), source };
        fs::create_dir_all(&dir).map_err(io_err)?;
        let mut epochs = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err)? {
            let path = entry.map_err(io_err)?.path();
            if path.extension().is_none_or(|e| e != "key") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_err)?;
            let cipher = RecordCipher::open_existing(ring, &bytes)
                .map_err(|e| AtRestError::Key { file: path.clone(), message: e.to_string() })?;
            epochs.push(cipher);
        }
        let (current, wrapped) =
            RecordCipher::new(ring).map_err(|e| AtRestError::Seal(e.to_string()))?;
        let file = dir.join(format!("{:08x}-{}.key", current.epoch_id(), epochs.len()));
        write_durably(&dir, &file, wrapped.as_bytes()).map_err(io_err)?;
        let reader = RecordCipher::open_existing(ring, wrapped.as_bytes())
            .map_err(|e| AtRestError::Key { file: file.clone(), message: e.to_string() })?;
        epochs.push(reader);
        Ok(Self { writer: Mutex::new((0, current)), epochs })
    }

    /// Encrypts records for appending, in order.
    pub fn encrypt_all(&self, records: Vec<Bytes>) -> Result<Vec<Bytes>, AtRestError> {
        let mut guard = self.writer.lock().expect("not poisoned");
        let (counter, cipher) = &mut *guard;
        records
            .into_iter()
            .map(|record| {
                *counter += 1;
                let mut out =
                    Vec::with_capacity(8 + crate::codec::encryption::sealed_len(record.len()));
                out.extend_from_slice(&counter.to_be_bytes());
                cipher
                    .seal_into(*counter, &record, &mut out)
                    .map_err(|e| AtRestError::Seal(e.to_string()))?;
                Ok(Bytes::from(out))
            })
            .collect()
    }

    /// Decrypts one record payload read from the log.
    pub fn decrypt(&self, payload: &[u8]) -> Result<Bytes, AtRestError> {
        if payload.len() < 8 {
            return Err(AtRestError::Open(format!(
                "payload of {} bytes is too short",
                payload.len()
            )));
        }
        let counter = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
        let sealed = &payload[8..];
        let epoch =
            record_epoch_id(sealed).ok_or_else(|| AtRestError::Open("truncated record".into()))?;
        let mut last_error =
            format!("no key for epoch {epoch:08x} (is its master key still configured?)");
        for cipher in self.epochs.iter().filter(|c| c.epoch_id() == epoch) {
            match cipher.open(counter, sealed) {
                Ok(plain) => return Ok(plain.into()),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(AtRestError::Open(last_error))
    }
}

fn write_durably(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = file.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, file)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encryption::MasterKey;

    fn ring(active: &str) -> KeyRing {
        let keys = [
            MasterKey::from_bytes("k1", &[1u8; 32]).unwrap(),
            MasterKey::from_bytes("k2", &[2u8; 32]).unwrap(),
        ];
        KeyRing::new(active, keys).unwrap()
    }

    #[test]
    fn records_sealed_in_earlier_epochs_open_after_a_restart_and_key_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let first = ShardCipher::open(dir.path(), &ring("k1")).unwrap();
        let old = first.encrypt_all(vec![Bytes::from_static(b"secret one")]).unwrap();
        assert!(!old[0].windows(6).any(|w| w == b"secret"));
        drop(first);
        let second = ShardCipher::open(dir.path(), &ring("k2")).unwrap();
        let new = second.encrypt_all(vec![Bytes::from_static(b"secret two")]).unwrap();
        assert_eq!(second.decrypt(&old[0]).unwrap(), Bytes::from_static(b"secret one"));
        assert_eq!(second.decrypt(&new[0]).unwrap(), Bytes::from_static(b"secret two"));
    }

    #[test]
    fn a_tampered_record_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let cipher = ShardCipher::open(dir.path(), &ring("k1")).unwrap();
        let mut sealed =
            cipher.encrypt_all(vec![Bytes::from_static(b"hello")]).unwrap()[0].to_vec();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(cipher.decrypt(&sealed).is_err());
    }
}
