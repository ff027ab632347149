//! Custom (de)serializers for the few fields that accept more than one YAML form.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::FsyncSetting;

/// A string, or an integer written without quotes (turned into its decimal text).
pub fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string of digits")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

/// A byte count: a non-negative integer, or a string such as `10GiB`, `512 MiB`, `500MB`.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a byte count such as 1073741824, \"512MiB\" or \"10GiB\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("byte count must not be negative, got {v}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_byte_size(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// [`byte_size`] for an optional field.
pub fn option_byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    byte_size(d).map(Some)
}

/// Parses `10GiB`, `512 MiB`, `64KiB`, `500MB`, `4096`, `4096B`. Binary units (KiB, MiB,
/// GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB) powers of 1000.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let bad = || {
        format!(
            "invalid byte size {text:?}: write a number of bytes or a number with a unit \
             (KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. \"10GiB\""
        )
    };
    if number.is_empty() {
        return Err(bad());
    }
    let number: u64 = number.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("byte size {text:?} is too large"))
}

impl<'de> Deserialize<'de> for FsyncSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FsyncSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`always` or a mapping `{ interval_ms: <milliseconds> }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FsyncSetting, E> {
                if v == "always" {
                    Ok(FsyncSetting::Always)
                } else {
                    Err(E::custom(format!(
                        "unknown fsync setting `{v}`, expected `always` or \
                         `{{ interval_ms: <milliseconds> }}`"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FsyncSetting, A::Error> {
                let mut interval_ms = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "interval_ms" {
                        if interval_ms.is_some() {
                            return Err(de::Error::duplicate_field("interval_ms"));
                        }
                        interval_ms = Some(map.next_value::<u64>()?);
                    } else {
                        return Err(de::Error::unknown_field(&key, &["interval_ms"]));
                    }
                }
                let interval_ms =
                    interval_ms.ok_or_else(|| de::Error::missing_field("interval_ms"))?;
                Ok(FsyncSetting::Interval { interval_ms })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FsyncSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FsyncSetting::Always => s.serialize_str("always"),
            FsyncSetting::Interval { interval_ms } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("interval_ms", interval_ms)?;
                m.end()
            }
        }
    }
}
