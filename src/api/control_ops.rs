//! The control-plane operations on the wire: CreateDeliveryStream, DeleteDeliveryStream,
//! UpdateDestination, Tag/Untag/ListTagsForDeliveryStream and Start/StopDeliveryStreamEncryption.
//! They check the request's shape and hand over to [`crate::control`].
//!
//! Unlike the data plane, members these operations do not know are refused
//! (InvalidArgumentException naming them): a stream configured with a setting Hydrant would
//! silently drop is worse than an error.

use serde_json::{json, Map, Value};

use super::{ApiError, AppState, ErrorType};
use crate::config::{DeliveryStreamConfig, DestinationKind, StreamEncryptionInput, Tag};
use crate::control::UpdateKind;
use crate::names::is_valid_stream_name;

/// Source configurations of stream types Hydrant does not have.
const OTHER_SOURCES: [&str; 2] = ["MSKSourceConfiguration", "DatabaseSourceConfiguration"];
/// Destinations in Firehose's model that Hydrant does not deliver to.
const OTHER_DESTINATIONS: [&str; 4] = [
    "SplunkDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];
const OTHER_UPDATES: [&str; 4] = [
    "SplunkDestinationUpdate",
    "AmazonOpenSearchServerlessDestinationUpdate",
    "SnowflakeDestinationUpdate",
    "IcebergDestinationUpdate",
];
/// The destination members Hydrant takes, comma-separated.
fn supported_destinations() -> String {
    let members = DestinationKind::ALL.into_iter().flat_map(DestinationKind::config_members);
    members.copied().collect::<Vec<_>>().join(", ")
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorType::InvalidArgument, message)
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorType::Serialization,
            "request body is empty; send a JSON object",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(ErrorType::Serialization, "request body must be a JSON object")),
        Err(e) => Err(ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Firehose JSON request: {e}"),
        )),
    }
}

/// `DeliveryStreamName`, required and well formed.
fn name_of(map: &Map<String, Value>) -> Result<String, ApiError> {
    let name = match map.get("DeliveryStreamName") {
        None | Some(Value::Null) => {
            return Err(ApiError::constraint("deliveryStreamName", "Member must not be null"))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::new(
                ErrorType::Serialization,
                "DeliveryStreamName must be a string",
            ))
        }
    };
    if !is_valid_stream_name(&name) {
        return Err(ApiError::constraint(
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1..=64",
        ));
    }
    Ok(name)
}

fn optional_string<'a>(
    map: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => {
            Err(ApiError::new(ErrorType::Serialization, format!("{member} must be a string")))
        }
    }
}

fn required_string<'a>(map: &'a Map<String, Value>, member: &str) -> Result<&'a str, ApiError> {
    optional_string(map, member)?.ok_or_else(|| {
        let mut wire = member.to_string();
        wire[..1].make_ascii_lowercase();
        ApiError::constraint(&wire, "Member must not be null")
    })
}

fn optional_int(map: &Map<String, Value>, member: &str) -> Result<Option<i64>, ApiError> {
    match map.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            ApiError::new(ErrorType::Serialization, format!("{member} must be an integer"))
        }),
    }
}

/// Refuses members outside `known`.
fn only(map: &Map<String, Value>, known: &[&str], operation: &str) -> Result<(), ApiError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(invalid(format!(
            "{unknown} is not a member of {operation}; its members are {}",
            known.join(", ")
        ))),
    }
}

fn empty() -> Result<String, ApiError> {
    Ok("{}".to_string())
}

pub async fn create_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let mut map = object(body)?;
    name_of(&map)?;
    if let Some(kind) = optional_string(&map, "DeliveryStreamType")? {
        if kind != "DirectPut" && kind != "KinesisStreamAsSource" {
            return Err(invalid(format!(
                "DeliveryStreamType {kind} is not supported: Hydrant supports DirectPut streams \
                 (producers call PutRecord/PutRecordBatch) and KinesisStreamAsSource; use one \
                 of them or leave it out"
            )));
        }
    }
    for source in OTHER_SOURCES {
        if map.contains_key(source) {
            return Err(invalid(format!(
                "{source} is not supported: Hydrant supports DirectPut and KinesisStreamAsSource \
                 streams; remove it"
            )));
        }
    }
    for destination in OTHER_DESTINATIONS {
        if map.contains_key(destination) {
            return Err(invalid(format!(
                "{destination}: Hydrant does not deliver to this destination; use one of {}",
                supported_destinations()
            )));
        }
    }
    // DirectPut's throughput hint: nothing to do with it here.
    map.remove("DirectPutSourceConfiguration");
    let config: DeliveryStreamConfig = serde_path_to_error::deserialize(Value::Object(map))
        .map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            if path.is_empty() || path == "." {
                invalid(message)
            } else {
                invalid(format!("{path}: {message}"))
            }
        })?;
    // What an API client's stream may name (no server files, only the allowed stores and
    // hosts) is checked with the rest of its validation: crate::plan::api_policy.
    let arn = state.control.create(config).await?;
    Ok(json!({ "DeliveryStreamARN": arn }).to_string())
}

pub async fn delete_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    only(&map, &["DeliveryStreamName", "AllowForceDelete"], "DeleteDeliveryStream")?;
    let name = name_of(&map)?;
    if map.get("AllowForceDelete").is_some_and(|v| !v.is_boolean() && !v.is_null()) {
        return Err(ApiError::new(ErrorType::Serialization, "AllowForceDelete must be a boolean"));
    }
    // AllowForceDelete concerns KMS grants in Firehose; Hydrant has none to give up.
    state.control.delete(&name).await?;
    empty()
}

pub async fn update_destination(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    let name = name_of(&map)?;
    let version = required_string(&map, "CurrentDeliveryStreamVersionId")?;
    if version.is_empty() || version.len() > 50 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::constraint(
            "currentDeliveryStreamVersionId",
            "Member must satisfy regular expression pattern: [0-9]+ (the VersionId from DescribeDeliveryStream)",
        ));
    }
    let destination = required_string(&map, "DestinationId")?;
    let mut updates = Vec::new();
    for (key, value) in &map {
        match key.as_str() {
            "DeliveryStreamName" | "CurrentDeliveryStreamVersionId" | "DestinationId" => {}
            other if OTHER_UPDATES.contains(&other) => {
                return Err(invalid(format!(
                    "{other}: Hydrant does not deliver to this destination; update with one of {}",
                    UpdateKind::members()
                )));
            }
            other => match UpdateKind::from_member(other) {
                Some(kind) if !value.is_null() => updates.push((kind, value)),
                Some(_) => {}
                None => {
                    return Err(invalid(format!(
                        "{other} is not a member of UpdateDestination; give one of {}",
                        UpdateKind::members()
                    )))
                }
            },
        }
    }
    let (kind, update) = match updates.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(format!(
                "UpdateDestination needs one destination update; give one of {}",
                UpdateKind::members()
            )))
        }
        _ => {
            return Err(invalid(
                "Exactly one destination configuration is supported for a Firehose; give one \
                 destination update per call",
            ))
        }
    };
    state.control.update_destination(&name, version, destination, kind, update).await?;
    empty()
}

pub async fn tag_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    only(&map, &["DeliveryStreamName", "Tags"], "TagDeliveryStream")?;
    let name = name_of(&map)?;
    let tags = map
        .get("Tags")
        .filter(|v| !v.is_null())
        .cloned()
        .ok_or_else(|| ApiError::constraint("tags", "Member must not be null"))?;
    let tags: Vec<Tag> = serde_path_to_error::deserialize(tags).map_err(|e| {
        let path = e.path().to_string();
        invalid(format!("Tags{path}: {}", e.into_inner()))
    })?;
    check_count("tags", tags.len())?;
    state.control.tag(&name, tags).await?;
    empty()
}

pub async fn untag_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    only(&map, &["DeliveryStreamName", "TagKeys"], "UntagDeliveryStream")?;
    let name = name_of(&map)?;
    let keys = map
        .get("TagKeys")
        .filter(|v| !v.is_null())
        .cloned()
        .ok_or_else(|| ApiError::constraint("tagKeys", "Member must not be null"))?;
    let keys: Vec<String> = serde_json::from_value(keys)
        .map_err(|e| ApiError::new(ErrorType::Serialization, format!("TagKeys: {e}")))?;
    check_count("tagKeys", keys.len())?;
    state.control.untag(&name, &keys).await?;
    empty()
}

fn check_count(member: &str, n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::constraint(
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if n > crate::control::MAX_TAGS {
        return Err(ApiError::constraint(
            member,
            &format!("Member must have length less than or equal to 50 (got {n}); split the call"),
        ));
    }
    Ok(())
}

pub fn list_tags_for_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    only(
        &map,
        &["DeliveryStreamName", "ExclusiveStartTagKey", "Limit"],
        "ListTagsForDeliveryStream",
    )?;
    let name = name_of(&map)?;
    let start = optional_string(&map, "ExclusiveStartTagKey")?;
    let limit = optional_int(&map, "Limit")?.unwrap_or(50);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::constraint(
            "limit",
            &format!("Member must be between 1 and 50 (got {limit})"),
        ));
    }
    let (tags, more) = state.control.list_tags(&name, start, limit as usize)?;
    Ok(json!({ "Tags": tags, "HasMoreTags": more }).to_string())
}

pub async fn start_delivery_stream_encryption(
    state: &AppState,
    body: &[u8],
) -> Result<String, ApiError> {
    let mut map = object(body)?;
    only(
        &map,
        &["DeliveryStreamName", "DeliveryStreamEncryptionConfigurationInput"],
        "StartDeliveryStreamEncryption",
    )?;
    let name = name_of(&map)?;
    // Without an input, Firehose encrypts under its own key: the key ring's active key here.
    let input = match map.remove("DeliveryStreamEncryptionConfigurationInput") {
        None | Some(Value::Null) => StreamEncryptionInput { key_type: None, key_arn: None },
        Some(value) => serde_json::from_value(value).map_err(|e| {
            invalid(format!(
                "DeliveryStreamEncryptionConfigurationInput: {e}; give {{\"KeyType\": \
                 \"AWS_OWNED_CMK\"}} or {{\"KeyType\": \"CUSTOMER_MANAGED_CMK\", \"KeyARN\": \
                 \"arn:aws:kms:<region>:<account>:key/<key id>\"}}"
            ))
        })?,
    };
    state.control.change_encryption(&name, Some(input)).await?;
    empty()
}

pub async fn stop_delivery_stream_encryption(
    state: &AppState,
    body: &[u8],
) -> Result<String, ApiError> {
    let map = object(body)?;
    only(&map, &["DeliveryStreamName"], "StopDeliveryStreamEncryption")?;
    let name = name_of(&map)?;
    state.control.change_encryption(&name, None).await?;
    empty()
}
