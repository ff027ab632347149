//! Encryption at rest of a shard's records (Firehose's server-side encryption for Direct
//! PUT), which can be switched on and off while the stream runs
//! (Start/StopDeliveryStreamEncryption).
//!
//! Whether a record is sealed is a function of its sequence number: `<shard>/keys/ranges.json`
//! lists the sequence numbers where sealing starts and stops. A switch is written (and
//! fsync'd) before the first record in the new mode, with no append in flight
//! ([`EmbeddedLog`](super::stream_log::EmbeddedLog) makes sure), so every record's mode is known
//! exactly and a log can hold plaintext and sealed records side by side.
//!
//! Each start of sealing (a process start with encryption on, or a switch on or to another
//! key) opens a new *epoch*: a fresh data key, wrapped under the active master key and
//! persisted (fsync'd) in `<shard>/keys/<epoch>-<n>.key` before any record uses it. A sealed
//! record's payload is `u64 BE counter | sealed record` (docs/encryption.md, "log records");
//! the counter is the nonce's sequence part, strictly increasing within an epoch and never
//! reused because every epoch has its own data key. Older epochs stay readable as long as
//! their master key is configured.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::encryption::{record_epoch_id, sealed_len, KeyRing, RecordCipher};

const RANGES_FILE: &str = "ranges.json";

/// Why a shard's keys could not be loaded or a record could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("log encryption keys in {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
    #[error("log encryption file {file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("encrypting a log record failed: {0}")]
    Seal(String),
    #[error("decrypting log record {seq} failed: {message}")]
    Open { seq: u64, message: String },
}

/// From `from_seq` on (until the next switch), records are sealed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    from_seq: u64,
    encrypted: bool,
}

/// What reading needs: where sealing was on, and every epoch's cipher that could be opened.
struct ReadState {
    switches: Vec<Switch>,
    epochs: Vec<RecordCipher>,
    /// Epoch files whose master key is not in the key ring, for the error of their records.
    unreadable: Vec<String>,
}

impl ReadState {
    fn sealed_at(&self, seq: u64) -> bool {
        let i = self.switches.partition_point(|s| s.from_seq <= seq);
        i > 0 && self.switches[i - 1].encrypted
    }
}

/// One shard's encryption at rest: seals appended records while it is on, and opens any
/// record by its sequence number.
pub struct ShardAtRest {
    dir: PathBuf,
    read: RwLock<ReadState>,
    /// The current epoch and its last counter, while records are sealed.
    writer: Mutex<Option<(u64, RecordCipher)>>,
}

impl std::fmt::Debug for ShardAtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardAtRest")
            .field("dir", &self.dir)
            .field("encrypting", &self.is_encrypting())
            .finish()
    }
}

impl ShardAtRest {
    /// Loads the shard's switches and epochs. `keys` open earlier epochs; with `encrypt`,
    /// records from `next_seq` on are sealed in a new epoch under `keys`' active key.
    pub fn open(
        shard_dir: &Path,
        keys: Option<&KeyRing>,
        encrypt: bool,
        next_seq: u64,
    ) -> Result<Self, AtRestError> {
        let dir = shard_dir.join("keys");
        let switches = load_switches(&dir)?;
        let at_rest = Self {
            dir,
            read: RwLock::new(ReadState { switches, epochs: Vec::new(), unreadable: Vec::new() }),
            writer: Mutex::new(None),
        };
        at_rest.switch(keys, encrypt, next_seq)?;
        Ok(at_rest)
    }

    /// Seals records from `next_seq` on under `keys`' active key (a new epoch), or stops
    /// sealing. The caller makes sure no append is in flight and `next_seq` is the shard's.
    pub fn switch(
        &self,
        keys: Option<&KeyRing>,
        encrypt: bool,
        next_seq: u64,
    ) -> Result<(), AtRestError> {
        let mut writer = self.writer.lock().expect("not poisoned");
        let mut read = self.read.write().expect("not poisoned");
        let (mut epochs, unreadable) = match keys {
            Some(ring) => load_epochs(&self.dir, ring)?,
            None => (Vec::new(), Vec::new()),
        };
        // Sealing on under the same master key goes on in its epoch (if the ring still opens
        // it: a key's bytes may have changed under its id).
        let same_key = |ring: &KeyRing| {
            writer.as_ref().is_some_and(|(_, cipher)| {
                cipher.key_id() == ring.active_id()
                    && epochs.iter().any(|e| e.epoch_id() == cipher.epoch_id())
            })
        };
        let new_epoch = match (encrypt, keys) {
            (false, _) => None,
            (true, None) => {
                return Err(AtRestError::Seal("encryption at rest needs a key ring".into()))
            }
            (true, Some(ring)) if same_key(ring) => None,
            (true, Some(ring)) => Some(self.new_epoch(ring, epochs.len())?),
        };
        let mut switches = read.switches.clone();
        if set_mode(&mut switches, next_seq, encrypt) {
            self.store_switches(&switches)?;
        }
        if let Some((sealing, opening)) = new_epoch {
            epochs.push(opening);
            *writer = Some((0, sealing));
        } else if !encrypt {
            *writer = None;
        }
        *read = ReadState { switches, epochs, unreadable };
        Ok(())
    }

    /// Whether appended records are sealed now.
    pub fn is_encrypting(&self) -> bool {
        self.writer.lock().expect("not poisoned").is_some()
    }

    /// Prepares records for appending, in order: sealed while encryption is on.
    pub fn seal_all(&self, records: Vec<Bytes>) -> Result<Vec<Bytes>, AtRestError> {
        let mut guard = self.writer.lock().expect("not poisoned");
        let Some((counter, cipher)) = &mut *guard else { return Ok(records) };
        records
            .into_iter()
            .map(|record| {
                *counter += 1;
                let mut out = Vec::with_capacity(8 + sealed_len(record.len()));
                out.extend_from_slice(&counter.to_be_bytes());
                cipher
                    .seal_into(*counter, &record, &mut out)
                    .map_err(|e| AtRestError::Seal(e.to_string()))?;
                Ok(Bytes::from(out))
            })
            .collect()
    }

    /// The record `seq` as the producer sent it: opened if it was sealed.
    pub fn open_record(&self, seq: u64, payload: Bytes) -> Result<Bytes, AtRestError> {
        let read = self.read.read().expect("not poisoned");
        if !read.sealed_at(seq) {
            return Ok(payload);
        }
        let fail = |message: String| AtRestError::Open { seq, message };
        if payload.len() < 8 {
            return Err(fail(format!("payload of {} bytes is too short", payload.len())));
        }
        let counter = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
        let sealed = &payload[8..];
        let epoch = record_epoch_id(sealed).ok_or_else(|| fail("truncated record".into()))?;
        let mut last_error = if read.unreadable.is_empty() {
            format!(
                "no key for epoch {epoch:08x} (is the stream's key ring, hydrant.encryption or \
                 storage.encryption, configured?)"
            )
        } else {
            format!("no key for epoch {epoch:08x}; {}", read.unreadable.join("; "))
        };
        for cipher in read.epochs.iter().filter(|c| c.epoch_id() == epoch) {
            match cipher.open(counter, sealed) {
                Ok(plain) => return Ok(plain.into()),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(fail(last_error))
    }

    /// A new epoch: its sealing cipher and, for reading, the same key opened from its file.
    fn new_epoch(
        &self,
        ring: &KeyRing,
        existing: usize,
    ) -> Result<(RecordCipher, RecordCipher), AtRestError> {
        let (sealing, wrapped) =
            RecordCipher::new(ring).map_err(|e| AtRestError::Seal(e.to_string()))?;
        let file = self.dir.join(format!("{:08x}-{existing}.key", sealing.epoch_id()));
        write_durably(&self.dir, &file, wrapped.as_bytes()).map_err(|e| self.io(e))?;
        let opening = RecordCipher::open_existing(ring, wrapped.as_bytes())
            .map_err(|e| AtRestError::File { file, message: e.to_string() })?;
        Ok((sealing, opening))
    }

    fn store_switches(&self, switches: &[Switch]) -> Result<(), AtRestError> {
        let bytes = serde_json::to_vec(switches).expect("serializable");
        write_durably(&self.dir, &self.dir.join(RANGES_FILE), &bytes).map_err(|e| self.io(e))
    }

    fn io(&self, source: io::Error) -> AtRestError {
        AtRestError::Io { dir: self.dir.clone(), source }
    }
}

/// Records `encrypted` from `from_seq` on; false when nothing changed.
fn set_mode(switches: &mut Vec<Switch>, from_seq: u64, encrypted: bool) -> bool {
    if switches.last().is_some_and(|s| s.encrypted == encrypted) {
        return false;
    }
    // A switch no record was appended under is void.
    while switches.last().is_some_and(|s| s.from_seq >= from_seq) {
        switches.pop();
    }
    if switches.last().is_none_or(|s| s.encrypted != encrypted) {
        switches.push(Switch { from_seq, encrypted });
    }
    true
}

/// The shard's switches. Logs written before switches existed have no file: they were sealed
/// from the start when they have epoch keys, plaintext otherwise.
fn load_switches(dir: &Path) -> Result<Vec<Switch>, AtRestError> {
    let file = dir.join(RANGES_FILE);
    match fs::read(&file) {
        Ok(bytes) => {
            let switches: Vec<Switch> = serde_json::from_slice(&bytes)
                .map_err(|e| AtRestError::File { file: file.clone(), message: e.to_string() })?;
            if switches.windows(2).any(|w| w[0].from_seq >= w[1].from_seq) {
                return Err(AtRestError::File {
                    file,
                    message: "switches are not in increasing from_seq order".into(),
                });
            }
            Ok(switches)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let sealed = !key_files(dir)?.is_empty();
            Ok(vec![Switch { from_seq: 0, encrypted: sealed }])
        }
        Err(source) => Err(AtRestError::Io { dir: dir.to_path_buf(), source }),
    }
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>, AtRestError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AtRestError::Io { dir: dir.to_path_buf(), source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path =
            entry.map_err(|source| AtRestError::Io { dir: dir.to_path_buf(), source })?.path();
        if path.extension().is_some_and(|e| e == "key") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every epoch `ring` can open, and a note for each it cannot (a master key no longer
/// configured only matters once one of its records is read).
fn load_epochs(
    dir: &Path,
    ring: &KeyRing,
) -> Result<(Vec<RecordCipher>, Vec<String>), AtRestError> {
    let mut epochs = Vec::new();
    let mut unreadable = Vec::new();
    for file in key_files(dir)? {
        let bytes =
            fs::read(&file).map_err(|source| AtRestError::Io { dir: dir.into(), source })?;
        match RecordCipher::open_existing(ring, &bytes) {
            Ok(cipher) => epochs.push(cipher),
            Err(e) => unreadable.push(format!("{}: {e}", file.display())),
        }
    }
    Ok((epochs, unreadable))
}

fn write_durably(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    super::dirs::create_dir_all(dir)?;
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

    fn one(at_rest: &ShardAtRest, text: &'static str) -> Bytes {
        at_rest.seal_all(vec![Bytes::from_static(text.as_bytes())]).unwrap().remove(0)
    }

    #[test]
    fn records_sealed_in_earlier_epochs_open_after_a_restart_and_key_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let first = ShardAtRest::open(dir.path(), Some(&ring("k1")), true, 0).unwrap();
        let old = one(&first, "secret one");
        assert!(!old.windows(6).any(|w| w == b"secret"));
        drop(first);
        let second = ShardAtRest::open(dir.path(), Some(&ring("k2")), true, 1).unwrap();
        let new = one(&second, "secret two");
        assert_eq!(second.open_record(0, old).unwrap(), Bytes::from_static(b"secret one"));
        assert_eq!(second.open_record(1, new).unwrap(), Bytes::from_static(b"secret two"));
    }

    #[test]
    fn a_tampered_record_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let at_rest = ShardAtRest::open(dir.path(), Some(&ring("k1")), true, 0).unwrap();
        let mut sealed = one(&at_rest, "hello").to_vec();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(at_rest.open_record(0, sealed.into()).is_err());
    }

    #[test]
    fn switching_on_and_off_seals_exactly_the_records_in_between_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ring("k1");
        let at_rest = ShardAtRest::open(dir.path(), Some(&keys), false, 0).unwrap();
        assert!(!at_rest.is_encrypting());
        assert!(!dir.path().join("keys").exists(), "a plaintext log needs no key files");
        let mut stored = vec![one(&at_rest, "plain 0"), one(&at_rest, "plain 1")];
        at_rest.switch(Some(&keys), true, 2).unwrap();
        stored.push(one(&at_rest, "sealed 2"));
        at_rest.switch(Some(&keys), false, 3).unwrap();
        stored.push(one(&at_rest, "plain 3"));
        assert_eq!(stored[0], Bytes::from_static(b"plain 0"));
        assert!(!stored[2].windows(6).any(|w| w == b"sealed"));
        assert_eq!(stored[3], Bytes::from_static(b"plain 3"));
        drop(at_rest);
        // Reopened without encryption, and with the stream's keys gone.
        let reopened = ShardAtRest::open(dir.path(), Some(&keys), false, 4).unwrap();
        let texts: Vec<Bytes> = stored
            .iter()
            .enumerate()
            .map(|(seq, r)| reopened.open_record(seq as u64, r.clone()).unwrap())
            .collect();
        assert_eq!(texts, ["plain 0", "plain 1", "sealed 2", "plain 3"].map(Bytes::from));
        let keyless = ShardAtRest::open(dir.path(), None, false, 4).unwrap();
        assert_eq!(keyless.open_record(3, stored[3].clone()).unwrap(), stored[3]);
        let e = keyless.open_record(2, stored[2].clone()).unwrap_err().to_string();
        assert!(e.contains("record 2") && e.contains("storage.encryption"), "{e}");
    }

    #[test]
    fn switches_nobody_appended_under_are_void() {
        let mut switches = vec![Switch { from_seq: 0, encrypted: false }];
        assert!(!set_mode(&mut switches, 5, false));
        assert!(set_mode(&mut switches, 5, true));
        assert!(set_mode(&mut switches, 5, false));
        assert_eq!(switches, [Switch { from_seq: 0, encrypted: false }]);
        assert!(set_mode(&mut switches, 0, true));
        assert_eq!(switches, [Switch { from_seq: 0, encrypted: true }]);
        assert!(set_mode(&mut switches, 9, false));
        assert_eq!(switches.len(), 2);
    }

    #[test]
    fn a_log_from_before_switches_is_sealed_from_the_start_when_it_has_epoch_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ring("k1");
        let first = ShardAtRest::open(dir.path(), Some(&keys), true, 0).unwrap();
        let sealed = one(&first, "old format");
        drop(first);
        // What an older Hydrant left: epoch key files and no ranges file.
        fs::remove_file(dir.path().join("keys").join(RANGES_FILE)).unwrap();
        let reopened = ShardAtRest::open(dir.path(), Some(&keys), true, 1).unwrap();
        assert_eq!(reopened.open_record(0, sealed).unwrap(), Bytes::from_static(b"old format"));
    }
}
