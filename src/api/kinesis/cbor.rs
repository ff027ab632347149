//! CBOR (`application/x-amz-cbor-1.1`): what the AWS SDKs for Java (and so the Kinesis Client
//! Library) send Kinesis by default. The members are those of the JSON protocol; two kinds of
//! value differ, so a CBOR request is turned into the JSON one the handlers take, and their
//! JSON answer back into CBOR:
//!
//! - blobs (`Data`) are byte strings, not base64 text;
//! - timestamps are tag 1 holding epoch **milliseconds** (AWS's reading of tag 1, which RFC
//!   8949 defines in seconds; the SDKs send and expect milliseconds: aws-sdk-java-v2 issue
//!   4661), not fractional epoch seconds.

use base64::Engine;
use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Number, Value as Json};

use crate::api::ops::BASE64;
use crate::api::{ApiError, ErrorType};

pub const CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";
/// CBOR's tag for an epoch-based date/time.
const EPOCH_TAG: u64 = 1;
/// Deepest nesting a request may have (Kinesis' requests are three levels deep).
const MAX_DEPTH: usize = 16;

/// The JSON request a CBOR request body means.
pub fn request_to_json(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let bad = |why: String| {
        ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Kinesis CBOR request: {why}"),
        )
    };
    if body.is_empty() {
        return Ok(b"{}".to_vec());
    }
    let value: Cbor = ciborium::de::from_reader(body).map_err(|e| bad(e.to_string()))?;
    let json = to_json(value, 0).map_err(bad)?;
    Ok(serde_json::to_vec(&json).expect("JSON values serialize"))
}

fn to_json(value: Cbor, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(match value {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Text(text) => Json::String(text),
        Cbor::Bytes(bytes) => Json::String(BASE64.encode(bytes)),
        Cbor::Integer(i) => integer(i)?,
        Cbor::Float(f) => {
            Number::from_f64(f).map(Json::Number).ok_or("a float that is not finite")?
        }
        Cbor::Tag(EPOCH_TAG, inner) => {
            let millis = match *inner {
                Cbor::Integer(i) => i128::from(i) as f64,
                Cbor::Float(f) => f,
                _ => return Err("tag 1 (a timestamp) around something other than a number".into()),
            };
            Number::from_f64(millis / 1000.0)
                .map(Json::Number)
                .ok_or("a timestamp that is not finite")?
        }
        Cbor::Tag(_, inner) => to_json(*inner, depth + 1)?,
        Cbor::Array(items) => {
            Json::Array(items.into_iter().map(|v| to_json(v, depth + 1)).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Cbor::Text(key) = key else { return Err("a map key that is not text".into()) };
                map.insert(key, to_json(value, depth + 1)?);
            }
            Json::Object(map)
        }
        _ => return Err("a value Kinesis requests do not have".into()),
    })
}

fn integer(i: Integer) -> Result<Json, String> {
    let wide = i128::from(i);
    if let Ok(n) = i64::try_from(wide) {
        Ok(Json::Number(n.into()))
    } else if let Ok(n) = u64::try_from(wide) {
        Ok(Json::Number(n.into()))
    } else {
        Err(format!("the integer {wide} is out of range"))
    }
}

/// The CBOR answer for a handler's JSON answer (or error document).
pub fn answer_from_json(json: &str) -> Vec<u8> {
    let value: Json = serde_json::from_str(json).expect("handlers answer JSON");
    let mut out = Vec::new();
    ciborium::ser::into_writer(&to_cbor(None, value), &mut out).expect("writing to memory");
    out
}

/// `key` is the member the value is under: `Data` is a blob, `…Timestamp` a timestamp.
fn to_cbor(key: Option<&str>, value: Json) -> Cbor {
    match value {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::String(text) if key == Some("Data") => match BASE64.decode(&text) {
            Ok(bytes) => Cbor::Bytes(bytes),
            Err(_) => Cbor::Text(text),
        },
        Json::String(text) => Cbor::Text(text),
        Json::Number(n) if key.is_some_and(|k| k.ends_with("Timestamp")) => {
            let millis = (n.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
            Cbor::Tag(EPOCH_TAG, Box::new(Cbor::Integer(millis.into())))
        }
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Cbor::Integer(u.into()),
            (None, Some(i)) => Cbor::Integer(i.into()),
            _ => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::Array(items) => Cbor::Array(items.into_iter().map(|v| to_cbor(key, v)).collect()),
        Json::Object(map) => Cbor::Map(
            map.into_iter()
                .map(|(k, v)| {
                    let value = to_cbor(Some(&k), v);
                    (Cbor::Text(k), value)
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(value: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    #[test]
    fn a_java_sdk_request_becomes_the_json_request() {
        // GetShardIterator AT_TIMESTAMP and a PutRecord blob, as the Java SDK writes them.
        let request = Cbor::Map(vec![
            (Cbor::Text("Data".into()), Cbor::Bytes(b"hello".to_vec())),
            (
                Cbor::Text("Timestamp".into()),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_787_036_486_712i64.into()))),
            ),
            (Cbor::Text("Limit".into()), Cbor::Integer(5.into())),
        ]);
        let json: Json =
            serde_json::from_slice(&request_to_json(&cbor(&request)).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Data": "aGVsbG8=", "Timestamp": 1_787_036_486.712, "Limit": 5})
        );
    }

    #[test]
    fn an_answer_carries_blobs_as_bytes_and_timestamps_as_tag_1_milliseconds() {
        let answer = r#"{"Records":[{"Data":"aGVsbG8=","ApproximateArrivalTimestamp":1787036486.712,
            "PartitionKey":"k"}],"MillisBehindLatest":0}"#;
        let value: Cbor = ciborium::de::from_reader(answer_from_json(answer).as_slice()).unwrap();
        let of = |map: &Cbor, name: &str| {
            let entries = map.as_map().unwrap();
            entries.iter().find(|(k, _)| k.as_text() == Some(name)).unwrap().1.clone()
        };
        let record = of(&value, "Records").as_array().unwrap()[0].clone();
        let member = |name: &str| of(&record, name);
        assert_eq!(member("Data"), Cbor::Bytes(b"hello".to_vec()));
        assert_eq!(
            member("ApproximateArrivalTimestamp"),
            Cbor::Tag(1, Box::new(Cbor::Integer(1_787_036_486_712i64.into())))
        );
        assert_eq!(member("PartitionKey"), Cbor::Text("k".into()));
    }

    #[test]
    fn hostile_bodies_are_serialization_errors() {
        let mut deep = Cbor::Null;
        for _ in 0..40 {
            deep = Cbor::Array(vec![deep]);
        }
        for body in [
            cbor(&deep),
            vec![0xff, 0x00],
            cbor(&Cbor::Map(vec![(Cbor::Integer(1.into()), Cbor::Null)])),
        ] {
            assert_eq!(request_to_json(&body).unwrap_err().kind, ErrorType::Serialization);
        }
    }
}
