//! The server `hydrant bench` starts when it is given no `--target`: a temporary data
//! directory, a local object store (or `--s3-endpoint`) and one delivery stream `bench` whose
//! destination, compression, transform and encryption follow the options.

use anyhow::Context;

use super::{pg_table, BenchArgs, BenchDestination, Spawned};

pub(super) fn spawn_server(
    args: &BenchArgs,
    receiver: Option<String>,
) -> anyhow::Result<(String, Spawned)> {
    let dir = std::env::temp_dir().join(format!("hydrant-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let store = match &args.s3_endpoint {
        Some(endpoint) => format!(
            "object_stores:\n  bench: {{ type: s3, endpoint: \"{endpoint}\", region: us-east-1, access_key_id: \"{}\", \
             secret_access_key: \"{}\", allow_http: true }}\n",
            args.s3_access_key, args.s3_secret_key
        ),
        None => format!("object_stores:\n  bench: {{ type: local, root: \"{}\" }}\n", dir.join("buckets").display()),
    };
    // The config lives in a temporary directory: make the module path absolute.
    let transform = args.transform.as_ref().map(|p| {
        std::fs::canonicalize(p).map(|p| p.display().to_string()).unwrap_or_else(|_| p.clone())
    });
    let processing = match &transform {
        Some(path) => format!(
            "      ProcessingConfiguration:\n        Enabled: true\n        Processors:\n          - Type: Lambda\n            \
             Parameters: [{{ ParameterName: LambdaArn, ParameterValue: \"{path}\" }}]\n"
        ),
        None => String::new(),
    };
    let encryption = if args.encrypt || args.encrypt_log {
        let key: [u8; 32] = rand::random();
        std::fs::write(dir.join("bench.key"), key)?;
        format!(
            ", encryption: {{ active_key: bench, keys: [{{ id: bench, file: \"{}\" }}] }}",
            dir.join("bench.key").display()
        )
    } else {
        String::new()
    };
    let at_rest = if args.encrypt_log {
        "    DeliveryStreamEncryptionConfigurationInput: { KeyType: CUSTOMER_MANAGED_CMK }\n"
    } else {
        ""
    };
    let s3_block = format!(
        "BucketARN: arn:aws:s3:::bench\n      Prefix: bench/\n      \
         BufferingHints: {{ SizeInMBs: {}, IntervalInSeconds: 1 }}\n      CompressionFormat: {}\n",
        args.buffer_mib, args.compression
    );
    let destination = match args.destination {
        BenchDestination::S3 => {
            format!("    ExtendedS3DestinationConfiguration:\n      {s3_block}{processing}")
        }
        BenchDestination::Postgres => {
            let url = args.postgres_url.as_deref().context("--postgres-url is required")?;
            format!(
                "    RedshiftDestinationConfiguration:\n      ClusterJDBCURL: \"{url}\"\n      \
                 CopyCommand: {{ DataTableName: {}, CopyOptions: CSV }}\n      Username: postgres\n      \
                 Password: \"\"\n      S3Configuration:\n        {}{}",
                pg_table(),
                s3_block.replace("\n      ", "\n        "),
                processing
            )
        }
        BenchDestination::Opensearch => {
            let endpoint =
                args.opensearch_endpoint.as_deref().context("--opensearch-endpoint is required")?;
            format!(
                "    AmazonopensearchserviceDestinationConfiguration:\n      ClusterEndpoint: \"{endpoint}\"\n      \
                 IndexName: {}\n      IndexRotationPeriod: NoRotation\n      \
                 BufferingHints: {{ SizeInMBs: {}, IntervalInSeconds: 1 }}\n      \
                 S3Configuration: {{ BucketARN: \"arn:aws:s3:::bench\", Prefix: failed/ }}\n{processing}",
                pg_table(),
                args.buffer_mib.min(100)
            )
        }
        BenchDestination::Http => {
            let url = receiver.context("the HTTP receiver did not start")?;
            format!(
                "    HttpEndpointDestinationConfiguration:\n      EndpointConfiguration: {{ Url: \"{url}\" }}\n      \
                 BufferingHints: {{ SizeInMBs: {}, IntervalInSeconds: 1 }}\n      \
                 S3Configuration: {{ BucketARN: \"arn:aws:s3:::bench\", Prefix: failed/ }}\n{processing}",
                args.buffer_mib.min(64)
            )
        }
    };
    let yaml = format!(
        "listen: 127.0.0.1:{port}\ndata_dir: \"{}\"\nlimits: {{ max_shards_per_stream: 64 }}\n{store}delivery_streams:\n  - DeliveryStreamName: bench\n\
         {destination}{at_rest}    hydrant: {{ object_store: bench, shards: {}{encryption} }}\n",
        dir.join("data").display(),
        args.shards
    );
    let config = dir.join("hydrant.yaml");
    std::fs::write(&config, yaml)?;
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting hydrant serve")?;
    Ok((
        format!("http://127.0.0.1:{port}"),
        Spawned { child, _dir: super::tempfile_dir::TempDir(dir) },
    ))
}
