//! Names and ids that every layer agrees on: which delivery stream names are valid, a
//! stream's ARN, the id of its one destination, and the name a stream's files carry.

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

/// The name a stream's directory and file carry: the stream name, except that `%`, any byte
/// outside `[A-Za-z0-9_.-]` and a leading `.` are written as `%XX` (upper-case hex).
///
/// Stream names are `[a-zA-Z0-9_.-]{1,64}`, so a name that does not start with `.` is its own
/// path name (data directories of such streams need no migration), while `.` and `..` become
/// `%2E` and `%2E.`. No name can therefore denote the streams directory, the data directory or
/// a hidden entry such as the `.deleted-*` logs awaiting removal; and since `%` itself is
/// encoded, two different names never share a path.
pub fn path_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_their_own_path_and_dot_names_are_encoded() {
        for name in ["default", "clicks-2", "a.b_c", "x.", "A"] {
            assert_eq!(path_name(name), name);
        }
        assert_eq!(path_name("."), "%2E");
        assert_eq!(path_name(".."), "%2E.");
        assert_eq!(path_name(".deleted-x"), "%2Edeleted-x");
        assert_eq!(path_name("%2E"), "%252E");
        assert_eq!(path_name("a/b"), "a%2Fb");
    }

    proptest::proptest! {
        #[test]
        fn path_names_are_single_safe_components_and_never_collide(
            a in "[a-zA-Z0-9_.%/-]{1,8}",
            b in "[a-zA-Z0-9_.%/-]{1,8}",
        ) {
            for name in [&a, &b] {
                let p = path_name(name);
                proptest::prop_assert!(!p.starts_with('.') && !p.contains('/'), "{name:?} -> {p:?}");
                let mut parts = std::path::Path::new(&p).components();
                let one = matches!(parts.next(), Some(std::path::Component::Normal(_)));
                proptest::prop_assert!(one && parts.next().is_none(), "{name:?} -> {p:?}");
            }
            if a != b {
                proptest::prop_assert_ne!(path_name(&a), path_name(&b));
            }
        }
    }
}
