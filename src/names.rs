//! Names and ids that every layer agrees on: which delivery stream names are valid, a
//! stream's ARN, and the id of its one destination.

/// Whether `name` is a valid DeliveryStreamName: `[a-zA-Z0-9_.-]{1,64}`.
pub fn is_valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A delivery stream's ARN: `arn:aws:firehose:<region>:<account>:deliverystream/<name>`.
pub fn arn_of(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:firehose:{region}:{account_id}:deliverystream/{name}")
}

/// The id of a stream's one destination (AWS's and moto's spelling).
pub const DESTINATION_ID: &str = "destinationId-000000000001";
