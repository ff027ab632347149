use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};

use super::local_dirs::LocalDirs;
use super::{KeyRules, ServerSideEncryption, StoreSpec};
use crate::{Destination, DestinationError, Outcome};

/// One object to write. The key and body are final: the delivery layer has already named,
/// formatted and compressed it.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: String,
    pub body: Bytes,
    /// `Content-Encoding` to store with the object (`gzip`, ...), as Firehose sets it.
    pub content_encoding: Option<&'static str>,
}

/// Writes objects into one bucket.
#[derive(Debug, Clone)]
pub struct S3Destination {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// Which keys the store takes.
    rules: KeyRules,
    /// A local directory: it cannot store HTTP attributes, and every object and directory
    /// written there is made durable before `deliver` returns, so a checkpoint never outlives
    /// its object.
    local_dir: Option<Arc<LocalDirs>>,
}

impl S3Destination {
    /// Opens `bucket` in the store described by `spec`.
    pub fn open(spec: &StoreSpec, bucket: &str) -> Result<Self, DestinationError> {
        Self::open_with(spec, bucket, None)
    }

    /// Opens `bucket`, asking the store to encrypt every object it writes.
    pub fn open_with(
        spec: &StoreSpec,
        bucket: &str,
        sse: Option<&ServerSideEncryption>,
    ) -> Result<Self, DestinationError> {
        match spec {
            StoreSpec::Local { .. } if sse.is_some() => Err(DestinationError::permanent(
                "S3.InvalidConfiguration",
                "server-side encryption needs an S3 store; a local directory cannot encrypt objects \
                 (use Hydrant's client-side encryption instead)",
            )),
            StoreSpec::Local { root } => {
                let dir = root.join(bucket);
                let dirs = LocalDirs::open(dir.clone()).map_err(|e| {
                    DestinationError::permanent(
                        "S3.NoSuchBucket",
                        format!("cannot create local bucket directory {}: {e}", dir.display()),
                    )
                })?;
                // fsync mode: each file is synced before it is renamed into place, then its
                // directory, and every directory a put creates.
                let store =
                    LocalFileSystem::new_with_prefix(&dir).map_err(config_error)?.with_fsync(true);
                Ok(Self {
                    store: Arc::new(store),
                    bucket: bucket.into(),
                    rules: KeyRules::LOCAL,
                    local_dir: Some(Arc::new(dirs)),
                })
            }
            StoreSpec::S3 {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                virtual_hosted_style,
            } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(*allow_http)
                    .with_virtual_hosted_style_request(*virtual_hosted_style)
                    // Retries belong to Hydrant's delivery loop, which keeps the records in
                    // its log while it waits; a second retry layer would only hide outages.
                    .with_retry(object_store::RetryConfig { max_retries: 0, ..Default::default() });
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                builder = match sse {
                    Some(ServerSideEncryption::Kms { key_id }) => builder.with_sse_kms_encryption(key_id),
                    Some(ServerSideEncryption::S3Managed) => builder.with_config(
                        "aws_server_side_encryption".parse().map_err(config_error)?,
                        "AES256",
                    ),
                    None => builder,
                };
                let store = builder.build().map_err(config_error)?;
                Ok(Self {
                    store: Arc::new(store),
                    bucket: bucket.into(),
                    rules: KeyRules::S3,
                    local_dir: None,
                })
            }
        }
    }

    /// A bucket in memory with S3's key rules, for tests.
    #[cfg(feature = "conformance")]
    pub fn in_memory(bucket: &str) -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            bucket: bucket.into(),
            rules: KeyRules::S3,
            local_dir: None,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Which keys this store takes.
    pub fn key_rules(&self) -> KeyRules {
        self.rules
    }

    /// The underlying store, for readers (tests, error output) that need more than `deliver`.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

fn config_error(e: object_store::Error) -> DestinationError {
    DestinationError::permanent("S3.InvalidConfiguration", e.to_string())
}

/// Maps an `object_store` failure to Firehose's S3 error codes. Failures are transient
/// (Firehose retries S3 for 24 hours because buckets get created, permissions get fixed and
/// disks get freed), except a key the store refuses as such (S3's `KeyTooLongError`, a local
/// file name that is too long or invalid): that key is refused on every retry.
fn classify(e: object_store::Error) -> DestinationError {
    use object_store::Error as E;
    if refuses_the_key(&e) {
        return DestinationError::permanent("S3.InvalidKey", e.to_string());
    }
    let code = match &e {
        E::NotFound { .. } => "S3.NoSuchBucket",
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => "S3.AccessDenied",
        E::Precondition { .. } | E::NotModified { .. } => "S3.PreconditionFailed",
        _ => "S3.ServiceException",
    };
    DestinationError::transient(code, e.to_string())
}

/// Whether the store refused the key itself (not the request, the bucket or the credentials).
fn refuses_the_key(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidFilename {
                return true;
            }
        }
        source = err.source();
    }
    // S3 answers 400 with this code; object_store keeps the body in its message.
    e.to_string().contains("KeyTooLongError")
}

#[async_trait]
impl Destination for S3Destination {
    type Request = Object;

    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn deliver(&self, object: &Object) -> Result<Outcome<Object>, DestinationError> {
        self.rules
            .check(&object.key)
            .map_err(|why| DestinationError::permanent("S3.InvalidKey", why))?;
        let path = ObjectPath::parse(&object.key).map_err(|e| {
            DestinationError::permanent("S3.InvalidKey", format!("{}: {e}", object.key))
        })?;
        let mut attributes = Attributes::new();
        if self.local_dir.is_none() {
            // Firehose writes every object as application/octet-stream.
            attributes.insert(Attribute::ContentType, "application/octet-stream".into());
            if let Some(encoding) = object.content_encoding {
                attributes.insert(Attribute::ContentEncoding, encoding.into());
            }
        }
        let opts = PutOptions { attributes, ..Default::default() };
        self.store
            .put_opts(&path, PutPayload::from_bytes(object.body.clone()), opts)
            .await
            .map_err(classify)?;
        if let Some(dirs) = &self.local_dir {
            // The key as object_store wrote it (`Path::parse` normalises it).
            let (key, dirs) = (path.to_string(), dirs.clone());
            tokio::task::spawn_blocking(move || dirs.settle(&key))
                .await
                .map_err(|e| DestinationError::transient("S3.ServiceException", e.to_string()))?
                .map_err(|e| {
                    DestinationError::transient("S3.ServiceException", format!("fsync: {e}"))
                })?;
        }
        Ok(Outcome::delivered())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn local_bucket_receives_the_object_under_its_key() {
        let root = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Local { root: root.path().into() };
        let dest = S3Destination::open(&spec, "raw").unwrap();
        let object = Object {
            key: "clicks/2026/11/22/05/clicks-1-x".into(),
            body: Bytes::from_static(b"hello"),
            content_encoding: None,
        };
        dest.deliver(&object).await.unwrap();
        dest.deliver(&object).await.unwrap(); // idempotent overwrite
        let on_disk = std::fs::read(root.path().join("raw/clicks/2026/11/22/05/clicks-1-x"));
        assert_eq!(on_disk.unwrap(), b"hello");
        let got = dest.store().get(&ObjectPath::from(object.key.as_str())).await.unwrap();
        assert_eq!(got.bytes().await.unwrap(), Bytes::from_static(b"hello"));
    }

    #[tokio::test]
    async fn keys_the_store_refuses_are_permanent_errors_and_write_nothing() {
        let root = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Local { root: root.path().into() };
        let dest = S3Destination::open(&spec, "raw").unwrap();
        let long_segment = format!("p/{}/x", "s".repeat(300));
        let long_key = "k/".repeat(600);
        for key in ["p/../../escape", "p//x", "p/\u{7}/x", long_segment.as_str(), long_key.as_str()]
        {
            let object =
                Object { key: key.into(), body: Bytes::from_static(b"x"), content_encoding: None };
            let err = dest.deliver(&object).await.unwrap_err();
            assert!(!err.is_retryable(), "{key:?}: {err}");
            assert_eq!(err.code, "S3.InvalidKey", "{key:?}");
        }
        let written: Vec<_> = walk(root.path());
        assert_eq!(written, Vec::<std::path::PathBuf>::new(), "nothing was written");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[tokio::test]
    async fn unreachable_s3_endpoint_is_a_transient_error() {
        let spec = StoreSpec::S3 {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            allow_http: true,
            virtual_hosted_style: false,
        };
        let dest = S3Destination::open(&spec, "raw").unwrap();
        let object =
            Object { key: "a".into(), body: Bytes::from_static(b"x"), content_encoding: None };
        let err = dest.deliver(&object).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
