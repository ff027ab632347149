//! Encryption at rest of records on JetStream (§1.7 of the design). Publishers on many nodes
//! cannot share a nonce counter, so each switch on (in each process) opens an epoch of its
//! own: a fresh data key, wrapped under the active master key and stored in the keys bucket
//! (`k.<log id>.<epoch>`) before the first record uses it. Each sealed record names its epoch
//! in `Hyd-Enc`, so its mode is known exactly without a list of switch positions; readers
//! fetch and cache the epochs' keys. The payload is `u64 BE counter | sealed record`, as in
//! the embedded log (docs/encryption.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_nats::jetstream::kv;
use bytes::Bytes;

use super::errors::cause;
use super::names;
use crate::codec::encryption::{sealed_len, KeyRing, RecordCipher};
use crate::log::{AtRestKeys, Cause, EncryptionError, ReadError};

/// A sealing epoch of this process: its name and its cipher with the last counter used.
pub struct Epoch {
    pub name: String,
    state: Mutex<(u64, RecordCipher)>,
}

impl Epoch {
    /// `data` sealed under the next counter of the epoch.
    pub fn seal(&self, data: &[u8]) -> Result<Bytes, Cause> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (counter, cipher) = &mut *state;
        *counter += 1;
        let mut out = Vec::with_capacity(8 + sealed_len(data.len()));
        out.extend_from_slice(&counter.to_be_bytes());
        cipher.seal_into(*counter, data, &mut out).map_err(|e| cause("sealing a record", e))?;
        Ok(out.into())
    }
}

/// One log's keys: the epoch appends seal under now (if any), and the ciphers of every epoch
/// read so far.
pub struct AtRest {
    keys: kv::Store,
    log_id: String,
    ring: RwLock<Option<Arc<KeyRing>>>,
    sealing: RwLock<Option<Arc<Epoch>>>,
    opening: Mutex<HashMap<String, Arc<RecordCipher>>>,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRest")
            .field("encrypting", &self.current().map(|e| e.name.clone()))
            .finish()
    }
}

impl AtRest {
    pub fn new(keys: kv::Store, log_id: &str, ring: Option<Arc<KeyRing>>) -> Self {
        Self {
            keys,
            log_id: log_id.to_string(),
            ring: RwLock::new(ring),
            sealing: RwLock::new(None),
            opening: Mutex::new(HashMap::new()),
        }
    }

    fn key_of(&self, epoch: &str) -> String {
        format!("k.{}.{epoch}", self.log_id)
    }

    /// The epoch appends seal under now; `None` while records are stored in plaintext.
    pub fn current(&self) -> Option<Arc<Epoch>> {
        self.sealing.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Seals appends from now on as `keys` say (a new epoch when they encrypt), and opens
    /// records with `keys.ring`.
    pub async fn switch(&self, keys: &AtRestKeys) -> Result<(), EncryptionError> {
        let epoch = match (keys.encrypt, &keys.ring) {
            (false, _) => None,
            (true, None) => {
                return Err(EncryptionError::Keys(cause(
                    "encryption at rest",
                    "needs a key ring (storage.encryption or hydrant.encryption)",
                )))
            }
            (true, Some(ring)) => Some(self.new_epoch(ring).await?),
        };
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = keys.ring.clone();
        *self.sealing.write().unwrap_or_else(|e| e.into_inner()) = epoch;
        Ok(())
    }

    async fn new_epoch(&self, ring: &KeyRing) -> Result<Arc<Epoch>, EncryptionError> {
        let (cipher, wrapped) = RecordCipher::new(ring)
            .map_err(|e| EncryptionError::Keys(cause("a new data key", e)))?;
        let name = format!("{}-{}", names::incarnation(), names::next_number());
        let opening = RecordCipher::open_existing(ring, wrapped.as_bytes())
            .map_err(|e| EncryptionError::Keys(cause("opening a new data key", e)))?;
        self.keys
            .create(self.key_of(&name), Bytes::from(wrapped.into_bytes()))
            .await
            .map_err(|e| EncryptionError::Unavailable(cause("storing a data key in NATS", e)))?;
        self.opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), Arc::new(opening));
        Ok(Arc::new(Epoch { name, state: Mutex::new((0, cipher)) }))
    }

    /// Opens the record at `seq`, sealed in `epoch`: [`ReadError::Decrypt`] when the keys
    /// cannot, `Unavailable` when its data key cannot be read from NATS now.
    pub async fn open(&self, seq: u64, epoch: &str, payload: &[u8]) -> Result<Bytes, ReadError> {
        let cipher = self.cipher(epoch).await?;
        let decrypt = |message: String| ReadError::Decrypt(cause(format!("record {seq}"), message));
        if payload.len() < 8 {
            return Err(decrypt(format!("payload of {} bytes is too short", payload.len())));
        }
        let counter = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
        cipher.open(counter, &payload[8..]).map(Bytes::from).map_err(|e| decrypt(e.to_string()))
    }

    async fn cipher(&self, epoch: &str) -> Result<Arc<RecordCipher>, ReadError> {
        if let Some(cipher) = self.opening.lock().unwrap_or_else(|e| e.into_inner()).get(epoch) {
            return Ok(cipher.clone());
        }
        let decrypt =
            |message: String| ReadError::Decrypt(cause(format!("epoch {epoch}"), message));
        let ring =
            self.ring.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| {
                decrypt(
                    "no key ring (is the stream's key ring, hydrant.encryption or \
                 storage.encryption, configured?)"
                        .into(),
                )
            })?;
        let wrapped = match self.keys.get(self.key_of(epoch)).await {
            Ok(Some(wrapped)) => wrapped,
            Ok(None) => return Err(decrypt("its data key is gone".into())),
            Err(e) => return Err(ReadError::Unavailable(cause("reading a data key from NATS", e))),
        };
        let cipher = Arc::new(
            RecordCipher::open_existing(&ring, &wrapped).map_err(|e| decrypt(e.to_string()))?,
        );
        self.opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(epoch.to_string(), cipher.clone());
        Ok(cipher)
    }
}
