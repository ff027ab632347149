//! Which object keys a store takes, checked before a write is tried: a key the store (or the
//! `object_store` path model) refuses would be refused on every retry, so it must be caught
//! and sent to the error output rather than retried forever.

use super::StoreSpec;

/// Longest key S3 takes, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest file name most file systems take (`NAME_MAX`), for keys stored as local files.
pub const MAX_LOCAL_SEGMENT_BYTES: usize = 255;
/// What `object_store` appends to a local file's name while it writes it (`<name>#<n>`, `n`
/// a `u64`), so the key's last segment must leave room for it.
pub const LOCAL_STAGING_SUFFIX_BYTES: usize = 1 + 20;

/// The rules of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    /// Longest path segment (a local directory's file and folder names), if limited.
    pub max_segment_bytes: Option<usize>,
}

impl KeyRules {
    /// S3-compatible stores: 1024 bytes.
    pub const S3: Self = Self { max_segment_bytes: None };
    /// A local directory: also 255 bytes per segment.
    pub const LOCAL: Self = Self { max_segment_bytes: Some(MAX_LOCAL_SEGMENT_BYTES) };

    pub fn for_spec(spec: &StoreSpec) -> Self {
        match spec {
            StoreSpec::Local { .. } => Self::LOCAL,
            StoreSpec::S3 { .. } => Self::S3,
        }
    }

    /// Why `key` cannot be written, if it cannot: longer than [`MAX_KEY_BYTES`], a control
    /// character, or a path segment that is empty (`a//b`), `.` or `..`, or too long. (One
    /// leading and one trailing `/` are dropped by the store client, as `object_store` does.)
    pub fn check(&self, key: &str) -> Result<(), String> {
        if key.is_empty() {
            return Err("the object key is empty".into());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "the object key is {} bytes long; the store takes at most {MAX_KEY_BYTES}",
                key.len()
            ));
        }
        if let Some(c) = key.chars().find(|c| c.is_control()) {
            return Err(format!(
                "the object key holds the control character U+{:04X}",
                u32::from(c)
            ));
        }
        let inner = key.strip_prefix('/').unwrap_or(key);
        let inner = inner.strip_suffix('/').unwrap_or(inner);
        let segments = inner.split('/').count();
        for (i, segment) in inner.split('/').enumerate() {
            // The file itself is first written as `<name>#<n>`.
            let staged = if i + 1 == segments { LOCAL_STAGING_SUFFIX_BYTES } else { 0 };
            let too_long = |max: usize| segment.len() + staged > max;
            match segment {
                "" => return Err("the object key has an empty path segment (\"//\")".into()),
                "." | ".." => {
                    return Err(format!("the object key has a \"{segment}\" path segment"))
                }
                s if self.max_segment_bytes.is_some_and(too_long) => {
                    return Err(format!(
                        "a path segment of the object key is {} bytes long; a local directory \
                         takes at most {MAX_LOCAL_SEGMENT_BYTES} (its last segment, the file \
                         name, at most {})",
                        s.len(),
                        MAX_LOCAL_SEGMENT_BYTES - LOCAL_STAGING_SUFFIX_BYTES
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_pass() {
        for key in ["a", "p/2026/01/02/03/s-1-2026-01-02-03-04-05-x.gz", "dt=2026/é/k", "/a/b/"] {
            KeyRules::S3.check(key).unwrap();
            KeyRules::LOCAL.check(key).unwrap();
        }
    }

    #[test]
    fn keys_the_store_would_refuse_on_every_retry_are_named() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let cases = [
            ("", "empty"),
            (long.as_str(), "1025 bytes"),
            ("a/\u{1}/b", "U+0001"),
            ("a\nb", "U+000A"),
            ("a/\u{85}", "U+0085"),
            ("a//b", "empty path segment"),
            ("a/../b", "\"..\" path segment"),
            ("a/./b", "\".\" path segment"),
            ("../b", "\"..\" path segment"),
        ];
        for (key, why) in cases {
            let message = KeyRules::S3.check(key).unwrap_err();
            assert!(message.contains(why), "{key:?}: {message}");
        }
        // 1024 bytes of two-byte characters: 512 characters, still within the limit.
        KeyRules::S3.check(&"é".repeat(MAX_KEY_BYTES / 2)).unwrap();
        assert!(KeyRules::S3.check(&"é".repeat(MAX_KEY_BYTES / 2 + 1)).is_err());
    }

    #[test]
    fn a_local_directory_also_limits_each_segment() {
        let segment = "s".repeat(MAX_LOCAL_SEGMENT_BYTES + 1);
        let key = format!("p/{segment}/x");
        KeyRules::S3.check(&key).unwrap();
        let message = KeyRules::LOCAL.check(&key).unwrap_err();
        assert!(message.contains("256 bytes"), "{message}");
    }

    #[tokio::test]
    async fn a_file_name_the_local_store_cannot_stage_is_refused_before_the_write() {
        use object_store::{local::LocalFileSystem, path::Path, ObjectStoreExt, PutPayload};
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let fits = "f".repeat(MAX_LOCAL_SEGMENT_BYTES - LOCAL_STAGING_SUFFIX_BYTES);
        // 254 bytes: a legal file name, but `<name>#1` is not.
        let staged_too_long = "f".repeat(MAX_LOCAL_SEGMENT_BYTES - 1);
        for (name, ok) in [(fits, true), (staged_too_long, false)] {
            let key = format!("p/{name}");
            let written = store.put(&Path::from(key.as_str()), PutPayload::from_static(b"x")).await;
            assert_eq!(written.is_ok(), ok, "{} bytes: {written:?}", name.len());
            assert_eq!(KeyRules::LOCAL.check(&key).is_ok(), ok, "{} bytes", name.len());
        }
        // Directory segments are not staged: 255 bytes is fine there.
        let folder = "d".repeat(MAX_LOCAL_SEGMENT_BYTES);
        KeyRules::LOCAL.check(&format!("{folder}/x")).unwrap();
    }
}
