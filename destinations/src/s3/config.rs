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
