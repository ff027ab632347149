//! The stream's `hydrant: { encryption: ... }` block.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use super::error::KeyError;
use super::keys::{is_valid_key_id, KeyRing, MasterKey};

/// What `Serialize` writes instead of a `base64:` key, so that echoing a config (for example
/// in an API answer) never reveals a key.
pub const REDACTED: &str = "<redacted>";

/// Client-side encryption of a stream's objects (and of its log at rest).
///
/// ```yaml
/// encryption:
///   active_key: k2
///   keys:
///     - id: k1
///       file: keys/k1.key        # relative to the config file's directory
///     - id: k2
///       base64: ${HYDRANT_KEY_K2}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EncryptionConfig {
    /// Id of the key new objects are encrypted under; must be one of `keys`.
    pub active_key: String,
    /// Every key that may be needed: the active one and those of older objects.
    pub keys: Vec<KeySource>,
}

/// One master key and where its 32 bytes come from: exactly one of `file` and `base64`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KeySource {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`; written into every object's header.
    pub id: String,
    /// File with 32 raw bytes or their base64 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The key as base64, normally `${ENV_VAR}`. Serialized as `<redacted>`.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "redact")]
    pub base64: Option<String>,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("id", &self.id)
            .field("file", &self.file)
            .field("base64", &self.base64.as_ref().map(|_| REDACTED))
            .finish()
    }
}

fn redact<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some(REDACTED),
        None => s.serialize_none(),
    }
}

impl EncryptionConfig {
    /// Every problem of the block, as `(path, message)` with paths relative to the block
    /// (`active_key`, `keys[1].base64`, ...): prefix them with the block's own path. Key files
    /// are not read here (that is `key_ring`'s job); `base64` values are decoded, and
    /// messages never contain them.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if self.keys.is_empty() {
            issues.push(("keys".to_owned(), "at least one key is required".to_owned()));
        }
        let mut first_use: HashMap<&str, usize> = HashMap::new();
        for (i, key) in self.keys.iter().enumerate() {
            let path = format!("keys[{i}]");
            if !is_valid_key_id(&key.id) {
                issues.push((
                    format!("{path}.id"),
                    format!(
                        "{:?} is not a valid key id: use 1 to 64 characters of A-Z a-z 0-9 . _ -",
                        key.id
                    ),
                ));
            } else if let Some(first) = first_use.get(key.id.as_str()) {
                issues.push((
                    format!("{path}.id"),
                    format!(
                        "{:?} is already the id of keys[{first}]; key ids must be unique",
                        key.id
                    ),
                ));
            } else {
                first_use.insert(&key.id, i);
            }
            match (&key.file, &key.base64) {
                (None, None) => issues.push((
                    path.clone(),
                    "give the key's source: `file` (a key file) or `base64` (e.g. \
                     ${ENV_VAR})"
                        .to_owned(),
                )),
                (Some(_), Some(_)) => issues.push((
                    path.clone(),
                    "give only one of `file` and `base64`, not both".to_owned(),
                )),
                (Some(file), None) if file.as_os_str().is_empty() => {
                    issues.push((format!("{path}.file"), "is empty".to_owned()))
                }
                (None, Some(text)) => {
                    if let Some(message) = base64_problem(text) {
                        issues.push((format!("{path}.base64"), message));
                    }
                }
                (Some(_), None) => {}
            }
        }
        if !self.keys.iter().any(|k| k.id == self.active_key) {
            let ids = self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ");
            issues.push((
                "active_key".to_owned(),
                format!(
                    "{:?} is not one of the configured keys ({}); add it to `keys` or choose \
                     one of those",
                    self.active_key,
                    if ids.is_empty() { "none" } else { &ids }
                ),
            ));
        }
        issues
    }

    /// Loads every key (files relative to `base_dir`, normally the config file's directory)
    /// into a key ring. Fails with `KeyError::InvalidConfig` when `validate` finds problems.
    pub fn key_ring(&self, base_dir: &Path) -> Result<KeyRing, KeyError> {
        let issues = self.validate();
        if !issues.is_empty() {
            return Err(KeyError::InvalidConfig(issues));
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for source in &self.keys {
            keys.push(match (&source.file, &source.base64) {
                (Some(file), _) => MasterKey::from_file(&source.id, base_dir.join(file))?,
                (None, Some(text)) => MasterKey::from_base64(&source.id, text)?,
                (None, None) => unreachable!("validate requires a source"),
            });
        }
        KeyRing::new(&self.active_key, keys)
    }
}

/// Why a `base64:` value is not a usable key, without quoting it.
fn base64_problem(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Some("is empty (if it is ${ENV_VAR}, is the variable set to the key?)".to_owned());
    }
    if trimmed == REDACTED {
        return Some(format!(
            "is {REDACTED:?}: a config echoed by Hydrant hides its keys; give the key itself"
        ));
    }
    match MasterKey::from_base64("check", trimmed) {
        Ok(_) => None,
        Err(KeyError::WrongLength { len, .. }) => Some(format!(
            "decodes to {len} bytes; a key is 32 random bytes (44 base64 characters, e.g. \
             from `openssl rand -base64 32`)"
        )),
        Err(_) => Some(
            "is not valid base64 (standard alphabet A-Z a-z 0-9 + /, padding optional)".to_owned(),
        ),
    }
}
