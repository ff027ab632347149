//! `UpdateDestination`: how an update block changes a stream's configuration (FIREHOSE.md
//! 1.11).
//!
//! - The same destination type: the members given override the current ones, recursively
//!   (`BufferingHints: {SizeInMBs: 64}` keeps the interval); lists and one-of blocks
//!   (`EncryptionConfiguration`, a conversion's `Serializer`/`Deserializer`) are replaced
//!   whole; members left out keep their values (so a Redshift `Password` need not be sent
//!   again).
//! - A different type: nothing is merged, the update must be a full configuration of the new
//!   type. Switching to or from a search (OpenSearch / Elasticsearch) or HTTP endpoint
//!   destination is refused, as Firehose does.
//! - One-way switches: `S3BackupMode` cannot go back from `Enabled` to `Disabled`, and dynamic
//!   partitioning can be neither turned on nor off after creation.
//! - Secrets follow their endpoint: an update that changes where a stored secret is sent (an
//!   HTTP endpoint's `Url`, a warehouse's `ClusterJDBCURL`, a search cluster's
//!   `ClusterEndpoint` / `DomainARN`) drops that secret (the endpoint's `AccessKey`, the
//!   warehouse `Password`, the stream's `hydrant.basic_auth`) unless the same update sends it
//!   again. Otherwise whoever may call UpdateDestination could point the stream at a server of
//!   their own and receive the credentials someone else configured.
//!
//! Update blocks name their S3 parts `S3Update` / `S3BackupUpdate`; they merge into
//! `S3Configuration` / `S3BackupConfiguration`.

use serde_json::{Map, Value};

use crate::config::{DeliveryStreamConfig, DestinationKind};
use crate::destination::{self, remove_at, Descriptor, Kept, Secret};

/// An update block Hydrant applies: an `UpdateDestination` member and the destination it
/// changes.
#[derive(Debug, Clone, Copy)]
pub struct UpdateKind {
    destination: &'static Descriptor,
    member: &'static str,
}

impl PartialEq for UpdateKind {
    fn eq(&self, other: &Self) -> bool {
        self.member == other.member
    }
}

impl Eq for UpdateKind {}

impl UpdateKind {
    /// Every update member Hydrant understands, in Firehose's order.
    pub fn all() -> impl Iterator<Item = UpdateKind> {
        destination::ALL.into_iter().flat_map(|destination| {
            destination.update_members.iter().map(move |&member| UpdateKind { destination, member })
        })
    }

    /// Every update member's name, comma-separated (for messages).
    pub fn members() -> String {
        Self::all().map(UpdateKind::member).collect::<Vec<_>>().join(", ")
    }

    /// The `UpdateDestination` member, e.g. `ExtendedS3DestinationUpdate`.
    pub fn member(self) -> &'static str {
        self.member
    }

    /// The configuration block it changes (`S3DestinationUpdate` changes the extended S3
    /// block too).
    fn block(self) -> &'static str {
        self.destination.kind.config_member()
    }

    pub fn from_member(member: &str) -> Option<Self> {
        Self::all().find(|k| k.member == member)
    }
}

/// Blocks that are one of several forms: replaced whole, never merged member by member.
const REPLACED_WHOLE: [&str; 3] = ["EncryptionConfiguration", "Serializer", "Deserializer"];

/// Update-only member names and the configuration members they merge into.
const RENAMED: [(&str, &str); 2] =
    [("S3Update", "S3Configuration"), ("S3BackupUpdate", "S3BackupConfiguration")];

fn is_switch_restricted(block: &str) -> bool {
    destination::by_config_member(block).is_some_and(|d| !d.switchable)
}

fn short(block: &str) -> &str {
    block.strip_suffix("DestinationConfiguration").unwrap_or(block)
}

/// Why an UpdateDestination cannot be merged into a stream's configuration. Each says what to
/// change, naming members as the update request spells them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("{member} must be a JSON object")]
    NotAnObject { member: &'static str },
    /// The stream's own configuration has no destination block (it was checked when stored).
    #[error("the stream has no destination block")]
    NoDestination,
    #[error(
        "changing the destination type from {from} to {to} is not supported (Firehose does not \
         allow switching to or from search or HTTP endpoint destinations); create a new \
         delivery stream instead"
    )]
    SwitchRefused { from: &'static str, to: &'static str },
    #[error(
        "{member}.S3BackupMode: a backup that is Enabled cannot be disabled again (Firehose \
         allows only Disabled -> Enabled); leave S3BackupMode out"
    )]
    BackupOneWay { member: &'static str },
    #[error(
        "{member}.DynamicPartitioningConfiguration.Enabled: dynamic partitioning can only be \
         chosen when a stream is created (it is {} on this one); create a new delivery stream \
         to change it",
        if *.enabled { "enabled" } else { "disabled" }
    )]
    PartitioningOneWay { member: &'static str, enabled: bool },
    /// The merged configuration is not a valid one: `path` as the update spells it.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The configuration after applying `update` (the value of `kind`'s member).
pub fn merge(
    current: &DeliveryStreamConfig,
    kind: UpdateKind,
    update: &Value,
) -> Result<DeliveryStreamConfig, MergeError> {
    let Value::Object(update) = update else {
        return Err(MergeError::NotAnObject { member: kind.member() });
    };
    let mut update = update.clone();
    for (from, to) in RENAMED {
        if let Some(v) = update.remove(from) {
            update.insert(to.to_string(), v);
        }
    }
    let mut whole = serde_json::to_value(current).map_err(|_| MergeError::NoDestination)?;
    let map = whole.as_object_mut().ok_or(MergeError::NoDestination)?;
    let current_block = DestinationKind::ALL
        .into_iter()
        .flat_map(DestinationKind::config_members)
        .copied()
        .find(|b| map.contains_key(*b))
        .ok_or(MergeError::NoDestination)?;
    let target = kind.block();
    let merged = if current_block == target {
        let old = map.remove(current_block).unwrap_or(Value::Null);
        check_one_way(&old, &update, kind)?;
        let update = Value::Object(update);
        let mut merged = old.clone();
        merge_into(&mut merged, update.clone());
        drop_moved_secrets(target, &old, &update, &mut merged, map);
        merged
    } else {
        if is_switch_restricted(current_block) || is_switch_restricted(target) {
            return Err(MergeError::SwitchRefused {
                from: short(current_block),
                to: short(target),
            });
        }
        map.remove(current_block);
        Value::Object(update)
    };
    map.insert(target.to_string(), merged);
    serde_path_to_error::deserialize::<_, DeliveryStreamConfig>(whole).map_err(|e| {
        let path = e.path().to_string();
        let path = match path.strip_prefix(target) {
            Some(rest) => {
                let mut rest = rest.to_string();
                for (from, to) in RENAMED {
                    rest = rest.replacen(&format!(".{to}"), &format!(".{from}"), 1);
                }
                format!("{}{rest}", kind.member())
            }
            None => path,
        };
        MergeError::Invalid { path, message: e.into_inner().to_string() }
    })
}

/// Recursively: objects merge member by member, anything else (and the one-of blocks) is
/// replaced; `null` removes a member.
fn merge_into(old: &mut Value, new: Value) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in new {
                if value.is_null() {
                    old.remove(&key);
                } else if REPLACED_WHOLE.contains(&key.as_str()) {
                    old.insert(key, value);
                } else {
                    match old.get_mut(&key) {
                        Some(existing) => merge_into(existing, value),
                        None => {
                            old.insert(key, value);
                        }
                    }
                }
            }
        }
        (old, new) => *old = new,
    }
}

/// Removes the secret of `block` from the merged configuration (`merged`, the block; `stream`,
/// the rest) when the update moved its endpoint without sending the secret again.
fn drop_moved_secrets(
    block: &str,
    old: &Value,
    update: &Value,
    merged: &mut Value,
    stream: &mut Map<String, Value>,
) {
    let Some(Secret { endpoint, kept }) =
        destination::by_config_member(block).and_then(|d| d.secret)
    else {
        return;
    };
    if endpoint.iter().all(|p| old.pointer(p) == merged.pointer(p)) {
        return;
    }
    match kept {
        Kept::InBlock(pointer) if update.pointer(pointer).is_some_and(|v| !v.is_null()) => {}
        Kept::InBlock(pointer) => remove_at(merged, pointer),
        Kept::InStream(pointer) => {
            let (first, rest) = pointer[1..].split_once('/').unwrap_or((&pointer[1..], ""));
            if let Some(value) = stream.get_mut(first) {
                remove_at(value, &format!("/{rest}"));
            }
        }
    }
}

fn check_one_way(
    old: &Value,
    update: &Map<String, Value>,
    kind: UpdateKind,
) -> Result<(), MergeError> {
    let member = kind.member();
    if old.get("S3BackupMode").and_then(Value::as_str) == Some("Enabled")
        && update.get("S3BackupMode").and_then(Value::as_str) == Some("Disabled")
    {
        return Err(MergeError::BackupOneWay { member });
    }
    let enabled = |v: Option<&Value>| {
        v.and_then(|p| p.get("Enabled")).and_then(Value::as_bool).unwrap_or(false)
    };
    let was = enabled(old.get("DynamicPartitioningConfiguration"));
    if let Some(given) = update.get("DynamicPartitioningConfiguration") {
        let wants = given.get("Enabled").and_then(Value::as_bool);
        if wants.is_some_and(|w| w != was) {
            return Err(MergeError::PartitioningOneWay { member, enabled: was });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kind(member: &str) -> UpdateKind {
        UpdateKind::from_member(member).unwrap()
    }

    fn s3_stream() -> DeliveryStreamConfig {
        let mut config: DeliveryStreamConfig = serde_json::from_value(json!({
            "DeliveryStreamName": "clicks",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::123456789012:role/fh",
                "BucketARN": "arn:aws:s3:::raw",
                "Prefix": "clicks/",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
                "CompressionFormat": "GZIP",
                "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"}
            },
            "Tags": [{"Key": "team", "Value": "web"}]
        }))
        .unwrap();
        config.normalize();
        config
    }

    #[test]
    fn given_members_override_and_the_rest_is_kept() {
        let update = json!({"Prefix": "v2/", "BufferingHints": {"IntervalInSeconds": 10}});
        let merged = merge(&s3_stream(), kind("ExtendedS3DestinationUpdate"), &update).unwrap();
        let s3 = merged.extended_s3_destination_configuration.as_ref().unwrap();
        assert_eq!(s3.prefix.as_deref(), Some("v2/"));
        let hints = s3.buffering_hints.unwrap();
        assert_eq!((hints.size_in_mbs, hints.interval_in_seconds), (Some(5), Some(10)));
        assert_eq!(s3.bucket_arn, "arn:aws:s3:::raw");
        assert_eq!(merged.tags, s3_stream().tags);
    }

    #[test]
    fn the_deprecated_s3_update_merges_into_the_extended_block() {
        let update = json!({"CompressionFormat": "UNCOMPRESSED"});
        let merged = merge(&s3_stream(), kind("S3DestinationUpdate"), &update).unwrap();
        let s3 = merged.extended_s3_destination_configuration.as_ref().unwrap();
        assert_eq!(s3.compression_format, crate::config::CompressionFormat::Uncompressed);
        assert_eq!(s3.prefix.as_deref(), Some("clicks/"));
    }

    #[test]
    fn one_of_blocks_are_replaced_whole() {
        let update = json!({"EncryptionConfiguration": {
            "KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:aws:kms:us-east-1:123456789012:key/k"}}});
        let merged = merge(&s3_stream(), kind("ExtendedS3DestinationUpdate"), &update).unwrap();
        let e = merged.s3().encryption_configuration.clone().unwrap();
        assert!(e.no_encryption_config.is_none());
        assert!(e.kms_encryption_config.is_some());
    }

    #[test]
    fn a_different_type_replaces_the_destination_and_needs_a_full_configuration() {
        let partial = json!({"Username": "loader"});
        let err = merge(&s3_stream(), kind("RedshiftDestinationUpdate"), &partial)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("RedshiftDestinationUpdate"), "{err}");
        assert!(err.contains("missing field"), "{err}");
        let full = json!({
            "RoleARN": "arn:aws:iam::123456789012:role/fh",
            "ClusterJDBCURL": "jdbc:postgresql://127.0.0.1:5432/db",
            "CopyCommand": {"DataTableName": "events"},
            "Username": "loader", "Password": "p",
            "S3Update": {"BucketARN": "arn:aws:s3:::staging"}
        });
        let merged = merge(&s3_stream(), kind("RedshiftDestinationUpdate"), &full).unwrap();
        assert!(merged.extended_s3_destination_configuration.is_none());
        let r = merged.redshift_destination_configuration.as_ref().unwrap();
        assert_eq!(r.s3_configuration.bucket_arn, "arn:aws:s3:::staging");
    }

    #[test]
    fn switching_to_or_from_search_or_http_is_refused() {
        let err =
            merge(&s3_stream(), kind("HttpEndpointDestinationUpdate"), &json!({})).unwrap_err();
        assert_eq!(err, MergeError::SwitchRefused { from: "ExtendedS3", to: "HttpEndpoint" });
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn unknown_members_are_named_as_the_update_spells_them() {
        let update = json!({"S3BackupUpdate": {"Bogus": 1}});
        let err = merge(&s3_stream(), kind("ExtendedS3DestinationUpdate"), &update)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ExtendedS3DestinationUpdate.S3BackupUpdate"), "{err}");
        assert!(err.contains("Bogus"), "{err}");
    }

    fn http_stream() -> DeliveryStreamConfig {
        serde_json::from_value(json!({
            "DeliveryStreamName": "hooks",
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": {
                    "Url": "https://hooks.example.com/in", "Name": "hooks", "AccessKey": "stored-key"
                },
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            }
        }))
        .unwrap()
    }

    fn access_key(config: &DeliveryStreamConfig) -> Option<String> {
        let h = config.http_endpoint_destination_configuration.as_ref().unwrap();
        h.endpoint_configuration.access_key.clone()
    }

    #[test]
    fn a_new_endpoint_url_drops_the_stored_access_key_unless_it_is_sent_again() {
        let moved = json!({"EndpointConfiguration": {"Url": "https://elsewhere.example.net/in"}});
        let merged = merge(&http_stream(), kind("HttpEndpointDestinationUpdate"), &moved).unwrap();
        assert_eq!(access_key(&merged), None);
        let h = merged.http_endpoint_destination_configuration.as_ref().unwrap();
        assert_eq!(h.endpoint_configuration.url, "https://elsewhere.example.net/in");
        assert_eq!(h.endpoint_configuration.name.as_deref(), Some("hooks"));

        let resent = json!({"EndpointConfiguration": {
            "Url": "https://elsewhere.example.net/in", "AccessKey": "new-key"}});
        let merged = merge(&http_stream(), kind("HttpEndpointDestinationUpdate"), &resent).unwrap();
        assert_eq!(access_key(&merged).as_deref(), Some("new-key"));

        // Same endpoint: the key stays, whatever else changes.
        for update in [
            json!({"BufferingHints": {"IntervalInSeconds": 10}}),
            json!({"EndpointConfiguration": {"Name": "renamed"}}),
            json!({"EndpointConfiguration": {"Url": "https://hooks.example.com/in"}}),
        ] {
            let merged =
                merge(&http_stream(), kind("HttpEndpointDestinationUpdate"), &update).unwrap();
            assert_eq!(access_key(&merged).as_deref(), Some("stored-key"), "{update}");
        }
    }

    #[test]
    fn a_new_warehouse_url_drops_the_stored_password_unless_it_is_sent_again() {
        let stream: DeliveryStreamConfig = serde_json::from_value(json!({
            "DeliveryStreamName": "orders",
            "RedshiftDestinationConfiguration": {
                "ClusterJDBCURL": "jdbc:postgresql://db.example.com:5432/d",
                "CopyCommand": {"DataTableName": "t"},
                "Username": "loader", "Password": "stored-password",
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            }
        }))
        .unwrap();
        let password = |c: &DeliveryStreamConfig| {
            c.redshift_destination_configuration.as_ref().unwrap().password.expose().to_owned()
        };
        let moved = json!({"ClusterJDBCURL": "jdbc:postgresql://evil.example.net:5432/d"});
        assert_eq!(
            password(&merge(&stream, kind("RedshiftDestinationUpdate"), &moved).unwrap()),
            ""
        );
        let resent = json!({"ClusterJDBCURL": "jdbc:postgresql://other:5432/d", "Password": "p2"});
        assert_eq!(
            password(&merge(&stream, kind("RedshiftDestinationUpdate"), &resent).unwrap()),
            "p2"
        );
        let kept = json!({"Username": "loader2"});
        assert_eq!(
            password(&merge(&stream, kind("RedshiftDestinationUpdate"), &kept).unwrap()),
            "stored-password"
        );
    }

    #[test]
    fn a_new_search_cluster_drops_the_streams_basic_auth() {
        let stream: DeliveryStreamConfig = serde_json::from_value(json!({
            "DeliveryStreamName": "logs",
            "AmazonopensearchserviceDestinationConfiguration": {
                "ClusterEndpoint": "https://search.example.com:9200", "IndexName": "logs",
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            },
            "hydrant": {"basic_auth": {"username": "firehose", "password": "stored"}, "shards": 1}
        }))
        .unwrap();
        let moved = json!({"ClusterEndpoint": "https://evil.example.net:9200"});
        let merged =
            merge(&stream, kind("AmazonopensearchserviceDestinationUpdate"), &moved).unwrap();
        assert!(merged.hydrant.basic_auth.is_none());
        assert_eq!(merged.hydrant.shards, 1, "the rest of the hydrant block stays");
        let same = json!({"IndexName": "logs2"});
        let merged =
            merge(&stream, kind("AmazonopensearchserviceDestinationUpdate"), &same).unwrap();
        assert!(merged.hydrant.basic_auth.is_some());
    }

    #[test]
    fn one_way_switches_cannot_be_undone() {
        let err = merge(
            &s3_stream(),
            kind("ExtendedS3DestinationUpdate"),
            &json!({"DynamicPartitioningConfiguration": {"Enabled": true}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("only be chosen when a stream is created"), "{err}");
        let mut backed_up = s3_stream();
        backed_up.extended_s3_destination_configuration.as_mut().unwrap().s3_backup_mode =
            crate::config::S3BackupMode::Enabled;
        let err = merge(
            &backed_up,
            kind("ExtendedS3DestinationUpdate"),
            &json!({"S3BackupMode": "Disabled"}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot be disabled"), "{err}");
    }
}
