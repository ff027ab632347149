//! A stream's encryption: client-side object keys (`hydrant.encryption`), its log's
//! encryption at rest (`DeliveryStreamEncryptionConfigurationInput`) and server-side
//! encryption in S3.

use std::path::Path;
use std::sync::Arc;

use hydrant_destinations::s3::ServerSideEncryption;

use super::server::check_key_ring;
use crate::codec::encryption::KeyRing;
use crate::config::{
    Config, DeliveryStreamConfig, EncryptionConfig, Issue, ObjectStoreConfig,
    ServerSideEncryptionSetting,
};

/// What checking a stream's encryption plans for its objects.
pub(super) struct ObjectEncryption {
    /// The server-side encryption the store applies to the stream's objects.
    pub sse: Option<ServerSideEncryption>,
    /// The stream's own key ring (`hydrant.encryption`), loaded.
    pub keys: Option<Arc<KeyRing>>,
}

/// Encryption settings: client-side keys, log encryption at rest, server-side encryption.
/// Returns how the stream's objects are encrypted (meaningful only when no issue was found).
pub(super) fn check_encryption(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> ObjectEncryption {
    let hydrant = &stream.hydrant;
    let (own_keys_ok, keys) = match &hydrant.encryption {
        Some(encryption) => {
            let ring = check_key_ring(encryption, &format!("{path}.hydrant.encryption"), issues);
            (ring.is_some(), ring.map(Arc::new))
        }
        None => (true, None),
    };
    let server_keys_ok =
        config.storage.encryption.as_ref().is_none_or(|e| e.key_ring(Path::new("/")).is_ok());
    let input = stream.delivery_stream_encryption_configuration_input.as_ref();
    if input.is_some() && own_keys_ok && server_keys_ok {
        if let Err(e) = config.log_keys(stream, input) {
            issues.push(Issue::new(format!("{path}.{}", e.field()), e.to_string()));
        }
    }
    let kms = [
        &stream
            .extended_s3_destination_configuration
            .as_ref()
            .and_then(|s| s.encryption_configuration.clone()),
        &stream
            .s3_destination_configuration
            .as_ref()
            .and_then(|s| s.encryption_configuration.clone()),
    ]
    .into_iter()
    .any(|e| e.as_ref().is_some_and(|e| e.kms_encryption_config.is_some()));
    let sse_s3 = hydrant.server_side_encryption.is_some();
    if kms && sse_s3 {
        issues.push(Issue::new(
            format!("{path}.hydrant.server_side_encryption"),
            "choose one server-side encryption: KMSEncryptionConfig (SSE-KMS) or hydrant.server_side_encryption: \
             AES256 (SSE-S3), not both",
        ));
    }
    let local = matches!(
        config.object_stores.get(&hydrant.object_store),
        Some(ObjectStoreConfig::Local { .. })
    );
    if (kms || sse_s3) && local {
        issues.push(Issue::new(
            format!("{path}.hydrant.object_store"),
            format!(
                "server-side encryption needs an s3 object store, but {:?} is a local directory; use \
                 hydrant.encryption for client-side encryption instead",
                hydrant.object_store
            ),
        ));
    }
    ObjectEncryption { sse: server_side_encryption(stream), keys }
}

/// SSE-KMS when the S3 side the pipeline writes to asks for it, else SSE-S3 when
/// `hydrant.server_side_encryption` does.
fn server_side_encryption(stream: &DeliveryStreamConfig) -> Option<ServerSideEncryption> {
    // The S3 side: the extended block, else the deprecated one, else another destination's
    // S3Configuration (what `DeliveryStreamConfig::s3` gives once the stream is normalised).
    let s3_side =
        match (&stream.extended_s3_destination_configuration, &stream.s3_destination_configuration)
        {
            (Some(ext), _) => ext.encryption_configuration.as_ref(),
            (None, Some(s3)) => s3.encryption_configuration.as_ref(),
            (None, None) => stream
                .destination()
                .s3_configuration()
                .and_then(|s3| s3.encryption_configuration.as_ref()),
        };
    match (s3_side, stream.hydrant.server_side_encryption) {
        (Some(EncryptionConfig { kms_encryption_config: Some(kms), .. }), _) => {
            Some(ServerSideEncryption::Kms { key_id: kms.awskms_key_arn.clone() })
        }
        (_, Some(ServerSideEncryptionSetting::AES256)) => Some(ServerSideEncryption::S3Managed),
        _ => None,
    }
}
