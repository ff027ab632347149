use std::path::PathBuf;

/// Where a bucket lives. Built from Hydrant's `object_stores:` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A local directory: bucket `b` is the folder `<root>/b`, key `k` the file `<root>/b/k`.
    Local { root: PathBuf },
    /// Any S3-compatible endpoint. `endpoint: None` means AWS itself (credentials may then
    /// also come from the usual `AWS_*` environment variables).
    S3 {
        endpoint: Option<String>,
        region: String,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        allow_http: bool,
        virtual_hosted_style: bool,
    },
}

/// Server-side encryption requested on every PUT (the S3 `x-amz-server-side-encryption`
/// headers). Firehose's `KMSEncryptionConfig` maps to `Kms`; Hydrant's
/// `hydrant.server_side_encryption: AES256` to `S3Managed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// `x-amz-server-side-encryption: AES256` (SSE-S3: keys managed by the store).
    S3Managed,
    /// `x-amz-server-side-encryption: aws:kms` with `x-amz-server-side-encryption-aws-kms-key-id`.
    Kms { key_id: String },
}
