//! Which keys encrypt a stream's log at rest: Firehose's `DeliveryStreamEncryptionConfigurationInput`
//! mapped onto Hydrant's key rings.
//!
//! A stream uses its own `hydrant.encryption` ring when it has one, else the server's
//! `storage.encryption` (the only choice for streams created through the API, which cannot
//! name key files). `KeyType: CUSTOMER_MANAGED_CMK` with a `KeyARN` seals under the key the
//! ARN names (its last `/`-separated part is the key id); otherwise under the ring's
//! `active_key`.

use std::path::Path;

use super::model::{Config, DeliveryStreamConfig, StreamEncryptionInput};
use crate::codec::encryption::{KeyError, KeyRing};

pub const AWS_OWNED_CMK: &str = "AWS_OWNED_CMK";
pub const CUSTOMER_MANAGED_CMK: &str = "CUSTOMER_MANAGED_CMK";

/// The keys of a stream's log: `ring` opens what was sealed before (and seals, under its
/// active key, when `encrypt`).
#[derive(Debug, Clone)]
pub struct LogKeys {
    pub ring: Option<KeyRing>,
    pub encrypt: bool,
}

/// Why a stream's log cannot be encrypted as configured.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    #[error(
        "encrypting the log at rest needs master keys, and this server has none: add \
         storage.encryption {{ active_key, keys }} to the config file (or, for a stream defined \
         there, hydrant.encryption)"
    )]
    NoKeys,
    #[error("KeyType {0:?} is not a key type; use AWS_OWNED_CMK or CUSTOMER_MANAGED_CMK")]
    KeyType(String),
    #[error(
        "KeyARN must not be given with KeyType AWS_OWNED_CMK; leave it out, or use \
         CUSTOMER_MANAGED_CMK to pick a key"
    )]
    ArnWithOwnedKey,
    #[error(
        "KeyARN {arn:?} names key {id:?}, which is not one of the configured master keys \
         ({configured}) of {ring}; use one of them, e.g. arn:aws:kms:<region>:<account>:key/<id>"
    )]
    UnknownKey { arn: String, id: String, configured: String, ring: &'static str },
    #[error("{ring}: {source}")]
    Load { ring: &'static str, source: KeyError },
}

impl LogKeyError {
    /// The member of `DeliveryStreamEncryptionConfigurationInput` (or of the server config)
    /// to fix.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NoKeys => "DeliveryStreamEncryptionConfigurationInput",
            Self::KeyType(_) => "DeliveryStreamEncryptionConfigurationInput.KeyType",
            Self::ArnWithOwnedKey | Self::UnknownKey { .. } => {
                "DeliveryStreamEncryptionConfigurationInput.KeyARN"
            }
            Self::Load { .. } => "DeliveryStreamEncryptionConfigurationInput",
        }
    }
}

impl Config {
    /// The keys of `stream`'s log at rest, with `input` as its
    /// `DeliveryStreamEncryptionConfigurationInput`. Loads key files.
    pub fn log_keys(
        &self,
        stream: &DeliveryStreamConfig,
        input: Option<&StreamEncryptionInput>,
    ) -> Result<LogKeys, LogKeyError> {
        let (source, ring_name) = match (&stream.hydrant.encryption, &self.storage.encryption) {
            (Some(own), _) => (Some(own), "hydrant.encryption"),
            (None, server) => (server.as_ref(), "storage.encryption"),
        };
        let ring = source
            .map(|c| c.key_ring(Path::new("/")))
            .transpose()
            .map_err(|source| LogKeyError::Load { ring: ring_name, source })?;
        let Some(input) = input else { return Ok(LogKeys { ring, encrypt: false }) };
        let ring = ring.ok_or(LogKeyError::NoKeys)?;
        let ring = match (key_type_of(input), &input.key_arn) {
            (AWS_OWNED_CMK, Some(_)) => return Err(LogKeyError::ArnWithOwnedKey),
            (AWS_OWNED_CMK, None) | (CUSTOMER_MANAGED_CMK, None) => ring,
            (CUSTOMER_MANAGED_CMK, Some(arn)) => {
                let id = key_id_of(arn);
                ring.with_active(id).ok_or_else(|| LogKeyError::UnknownKey {
                    arn: arn.clone(),
                    id: id.to_owned(),
                    configured: ring.ids().collect::<Vec<_>>().join(", "),
                    ring: ring_name,
                })?
            }
            (other, _) => return Err(LogKeyError::KeyType(other.to_owned())),
        };
        Ok(LogKeys { ring: Some(ring), encrypt: true })
    }
}

/// The key id a KMS key ARN (or a bare id) names: the text after its last `/`.
pub fn key_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `KeyType`, defaulted as Firehose does: `CUSTOMER_MANAGED_CMK` when a `KeyARN` is given.
pub fn key_type_of(input: &StreamEncryptionInput) -> &str {
    match (&input.key_type, &input.key_arn) {
        (Some(t), _) => t,
        (None, Some(_)) => CUSTOMER_MANAGED_CMK,
        (None, None) => AWS_OWNED_CMK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encryption::{EncryptionConfig, KeySource};

    fn server(keys: &[&str]) -> Config {
        let mut config = crate::config::embedded_default();
        config.storage.encryption = (!keys.is_empty()).then(|| EncryptionConfig {
            active_key: keys[0].to_owned(),
            keys: keys
                .iter()
                .map(|id| KeySource {
                    id: (*id).to_owned(),
                    file: None,
                    base64: Some(base64_key()),
                })
                .collect(),
        });
        config
    }

    fn base64_key() -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    }

    fn input(key_type: Option<&str>, arn: Option<&str>) -> StreamEncryptionInput {
        StreamEncryptionInput {
            key_type: key_type.map(str::to_owned),
            key_arn: arn.map(str::to_owned),
        }
    }

    #[test]
    fn a_customer_managed_key_arn_picks_the_key_by_its_last_path_part() {
        let config = server(&["k1", "k2"]);
        let stream = config.delivery_streams[0].clone();
        let arn = "arn:aws:kms:us-east-1:000000000000:key/k2";
        let keys =
            config.log_keys(&stream, Some(&input(Some(CUSTOMER_MANAGED_CMK), Some(arn)))).unwrap();
        assert!(keys.encrypt);
        assert_eq!(keys.ring.unwrap().active_id(), "k2");
        let owned = config.log_keys(&stream, Some(&input(Some(AWS_OWNED_CMK), None))).unwrap();
        assert_eq!(owned.ring.unwrap().active_id(), "k1");
        let off = config.log_keys(&stream, None).unwrap();
        assert!(!off.encrypt && off.ring.is_some(), "keys stay to open earlier records");
    }

    #[test]
    fn each_wrong_input_names_its_field() {
        let config = server(&["k1"]);
        let stream = config.delivery_streams[0].clone();
        let e = |i| config.log_keys(&stream, Some(&i)).unwrap_err();
        let unknown = e(input(None, Some("arn:aws:kms:us-east-1:1:key/nope")));
        assert_eq!(unknown.field(), "DeliveryStreamEncryptionConfigurationInput.KeyARN");
        assert!(unknown.to_string().contains("(k1)"), "{unknown}");
        assert!(matches!(e(input(Some(AWS_OWNED_CMK), Some("k1"))), LogKeyError::ArnWithOwnedKey));
        assert!(matches!(e(input(Some("SOME_KEY"), None)), LogKeyError::KeyType(_)));
        let bare = server(&[]);
        let none = bare.log_keys(&bare.delivery_streams[0], Some(&input(None, None))).unwrap_err();
        assert!(none.to_string().contains("storage.encryption"), "{none}");
    }
}
