//! The `hydrant` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hydrant::telemetry::{self, LogFormat};
use hydrant::{config, plan};

/// Counts what each jq evaluation holds, so its memory bound covers every builtin
/// (`src/processors/extract/budget.rs`).
#[global_allocator]
static ALLOCATOR: hydrant_alloc_meter::Metered = hydrant_alloc_meter::Metered::SYSTEM;

/// Hydrant: a self-hosted delivery pipeline that speaks the Amazon Data Firehose API.
///
/// Producers send records with PutRecord / PutRecordBatch (the aws CLI, boto3 or any AWS SDK
/// with --endpoint-url); Hydrant stores them durably (fsync before it answers), buffers them
/// by size or time and writes objects to S3-compatible storage or a local directory.
///
/// Quick start:
///   hydrant serve
///   aws firehose put-record --endpoint-url http://127.0.0.1:4573 \
///       --delivery-stream-name default --record '{"Data":"aGVsbG8K"}'
///   ls -R hydrant-data/buckets/hydrant/
#[derive(Parser)]
#[command(name = "hydrant", version, verbatim_doc_comment)]
struct Cli {
    /// Log format on stderr. The level comes from RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Without --config: one stream `default` on 127.0.0.1:4573, delivering
    /// every 5 seconds to ./hydrant-data/buckets/hydrant/default/ (no other service needed).
    /// SIGHUP re-reads the config file and applies it; SIGTERM/SIGINT deliver what is buffered
    /// (within shutdown_timeout_seconds) and exit.
    Serve {
        /// The YAML configuration (see docs/configuration.md).
        #[arg(long, short, env = "HYDRANT_CONFIG")]
        config: Option<PathBuf>,
        /// Override `listen` from the configuration, e.g. 127.0.0.1:0 for any free port.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Also reload the configuration when the file changes (checked every 2 s), as SIGHUP
        /// does: handy where sending a signal is awkward, such as a Kubernetes ConfigMap.
        #[arg(long, env = "HYDRANT_WATCH_CONFIG", requires = "config")]
        watch_config: bool,
    },
    /// Check a configuration file and print every problem with its path; exits 1 if any.
    Validate {
        /// The YAML configuration to check.
        file: PathBuf,
    },
    /// Decrypt an object written with `hydrant.encryption` (stdin to stdout).
    ///
    /// Example: hydrant decrypt --key-file k2.key < clicks-1-...gz > clicks.gz
    Decrypt {
        /// A master key file (32 raw bytes or base64), as `PATH` (used for the key the object
        /// names) or `ID=PATH`. Repeat to give several.
        #[arg(long = "key-file", required = true)]
        key_files: Vec<String>,
    },
    /// Measure a server: PutRecordBatch throughput and latency, end-to-end delivery, memory.
    Bench(Box<hydrant::bench::BenchArgs>),
    /// Deliver a time range of a stream's retained records again, exactly once, to a new
    /// prefix of its destination or through another stream, and show progress until done.
    Replay(Box<hydrant::replay::cli::ReplayArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve { config, listen, watch_config } => serve(config, listen, watch_config),
        Command::Validate { file } => validate(&file),
        Command::Decrypt { key_files } => decrypt(&key_files),
        Command::Bench(args) => runtime().and_then(|rt| rt.block_on(hydrant::bench::run(*args))),
        Command::Replay(args) => {
            runtime().and_then(|rt| rt.block_on(hydrant::replay::cli::run(*args)))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(
    path: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let mut server = match &path {
        Some(path) => plan::load(path)?,
        None => plan::check(config::embedded_default())?,
    };
    if let Some(listen) = listen {
        server = server.with_listen(listen);
    }
    let reload = path.map(|path| hydrant::server::ReloadSource { path, listen, watch });
    let runtime = runtime()?;
    let result = runtime.block_on(hydrant::server::run(server, reload));
    // A start still waiting for NATS when a signal came keeps a blocking thread: leave it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match plan::load(file) {
        Ok(server) => {
            let streams = server.config().delivery_streams.len();
            println!("{}: ok ({streams} delivery streams)", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: invalid configuration", file.display());
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn decrypt(key_files: &[String]) -> anyhow::Result<ExitCode> {
    use hydrant::codec::encryption::{decrypt_stream, header_key_id, KeyRing, MasterKey};
    use std::io::BufRead;
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let header = input.fill_buf().context("reading the object from stdin")?;
    let object_key = header_key_id(header).context("stdin is not a Hydrant encrypted object")?;
    let mut keys = Vec::new();
    for spec in key_files {
        let (id, path) = match spec.split_once('=') {
            Some((id, path)) => (id.to_string(), path),
            None => (object_key.clone(), spec.as_str()),
        };
        keys.push(
            MasterKey::from_file(id, path).with_context(|| format!("loading key file {path}"))?,
        );
    }
    let ring = KeyRing::new(object_key.clone(), keys).with_context(|| {
        format!("the object is encrypted under master key {object_key:?}; give it with --key-file")
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    decrypt_stream(&ring, input, &mut out)
        .context("decryption failed (output is incomplete: discard it)")?;
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_binary_counts_what_jq_evaluations_hold() {
        assert!(hydrant_alloc_meter::installed());
    }
}
