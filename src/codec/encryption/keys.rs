//! Master keys and the key ring (docs/encryption.md, *Master keys*).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::primitives::{self, KEY_LEN};

/// Longest master key id.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Largest key file read: 32 raw bytes, or their 44 base64 characters with plenty of room for
/// whitespace.
pub const MAX_KEY_FILE_BYTES: usize = 4096;

/// Standard base64 alphabet; `=` padding optional when decoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `id` is a valid master key id: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A named 256-bit master key. The key bytes are zeroized on drop and never printed.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A master key from its 32 raw bytes.
    pub fn from_bytes(id: impl Into<String>, bytes: &[u8]) -> Result<MasterKey, KeyError> {
        let id = checked_id(id.into())?;
        let key: [u8; KEY_LEN] = match bytes.try_into() {
            Ok(key) => key,
            Err(_) => return Err(KeyError::WrongLength { id, len: bytes.len() }),
        };
        Ok(MasterKey { id, key: Zeroizing::new(key) })
    }

    /// A master key from the base64 of its 32 bytes (standard alphabet, padding optional,
    /// surrounding whitespace ignored).
    pub fn from_base64(id: impl Into<String>, text: &str) -> Result<MasterKey, KeyError> {
        let id = checked_id(id.into())?;
        // `decode` allocates its output once, at the estimated size, so wrapping the Vec
        // zeroizes every copy of the key bytes.
        let bytes = match BASE64.decode(text.trim()) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(source) => return Err(KeyError::InvalidBase64 { id, source }),
        };
        MasterKey::from_bytes(id, &bytes)
    }

    /// A master key from a file holding either exactly 32 raw bytes, or text: the base64 of
    /// the 32 bytes (surrounding whitespace, such as a final newline, ignored). At most
    /// [`MAX_KEY_FILE_BYTES`] are read, so a path to something endless (`/dev/zero`) fails
    /// instead of filling memory.
    pub fn from_file(id: impl Into<String>, path: impl AsRef<Path>) -> Result<MasterKey, KeyError> {
        let id = checked_id(id.into())?;
        let path = path.as_ref();
        // Room for one byte more than allowed, allocated once: reading never moves key bytes.
        let mut contents = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES + 1));
        let read = std::fs::File::open(path)
            .and_then(|file| file.take(MAX_KEY_FILE_BYTES as u64 + 1).read_to_end(&mut contents));
        if let Err(source) = read {
            return Err(KeyError::ReadFile { id, path: path.to_owned(), source });
        }
        if contents.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyError::KeyFileTooLarge {
                id,
                path: path.to_owned(),
                max: MAX_KEY_FILE_BYTES,
            });
        }
        if contents.len() == KEY_LEN {
            return MasterKey::from_bytes(id, &contents);
        }
        match std::str::from_utf8(&contents) {
            Ok(text) => MasterKey::from_base64(id, text),
            Err(_) => {
                Err(KeyError::KeyFileFormat { id, path: path.to_owned(), len: contents.len() })
            }
        }
    }

    /// A new random master key (from the OS random number generator).
    pub fn generate(id: impl Into<String>) -> Result<MasterKey, KeyError> {
        let id = checked_id(id.into())?;
        let key = primitives::random_key().map_err(KeyError::Random)?;
        Ok(MasterKey { id, key })
    }

    /// The key's id, as written into headers.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as standard base64 (with padding), e.g. to write a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.key[..]))
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).field("key", &"<redacted>").finish()
    }
}

fn checked_id(id: String) -> Result<String, KeyError> {
    if is_valid_key_id(&id) {
        Ok(id)
    } else {
        Err(KeyError::InvalidId { id })
    }
}

/// The configured master keys, one of which is active (used for new objects and epochs).
#[derive(Clone, Debug)]
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, MasterKey>,
}

impl KeyRing {
    /// A key ring; fails if two keys share an id or `active` is not one of the keys.
    pub fn new(
        active: impl Into<String>,
        keys: impl IntoIterator<Item = MasterKey>,
    ) -> Result<KeyRing, KeyError> {
        let active = active.into();
        let mut map = BTreeMap::new();
        for key in keys {
            if map.contains_key(&key.id) {
                return Err(KeyError::DuplicateId { id: key.id.clone() });
            }
            map.insert(key.id.clone(), key);
        }
        if !map.contains_key(&active) {
            return Err(KeyError::ActiveKeyMissing { active, configured: id_list(map.keys()) });
        }
        Ok(KeyRing { active, keys: map })
    }

    /// The key new objects and epochs are encrypted under.
    pub fn active(&self) -> &MasterKey {
        &self.keys[&self.active]
    }

    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// The same keys with `id` active, if it is one of them.
    pub fn with_active(&self, id: &str) -> Option<KeyRing> {
        self.keys
            .contains_key(id)
            .then(|| KeyRing { active: id.to_owned(), keys: self.keys.clone() })
    }

    /// The key with this id, if configured.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.get(id)
    }

    /// Every configured id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The configured ids as a comma-separated list, for messages.
    pub(super) fn id_list(&self) -> String {
        id_list(self.keys.keys())
    }
}

fn id_list<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let list = ids.map(String::as_str).collect::<Vec<_>>().join(", ");
    if list.is_empty() {
        "none".to_owned()
    } else {
        list
    }
}
