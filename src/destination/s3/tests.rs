//! The store's key rules as delivery sees them ([`StoreKeys`]): what the assembler refuses
//! to name, sending the records to `partitioning-failed` instead of blocking the shard.

use std::sync::Arc;

use hydrant_destinations::s3::KeyRules;

use crate::delivery::assembler::StoreKeys;

#[test]
fn the_store_keys_of_a_bucket_are_its_key_rules() {
    let s3: Arc<dyn StoreKeys> = Arc::new(KeyRules::S3);
    let local: Arc<dyn StoreKeys> = Arc::new(KeyRules::LOCAL);
    // 520 two-byte characters: past S3's 1024 bytes.
    let long = format!("p/{}/x", "é".repeat(520));
    assert!(s3.check(&long).unwrap_err().contains("at most 1024"));
    // A 300-byte segment: fine for S3, too long for a file name in a local directory.
    let segment = format!("p/{}/x", "s".repeat(300));
    assert_eq!(s3.check(&segment), Ok(()));
    assert!(local.check(&segment).unwrap_err().contains("at most 255"));
    assert!(s3.check("p/a//b").is_err());
}

/// The S3 sink on a real store: a local directory, or an S3 endpoint nobody listens on.
mod sink {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use hydrant_destinations::s3::{S3Destination, StoreSpec};
    use tokio::sync::watch;

    use crate::codec::{compression_for, CompressionFormat, ObjectCodec};
    use crate::delivery::buffers::{BufferKey, Pos, Unit};
    use crate::delivery::sink::{ErrorOutput, Sink, SinkContext, SinkError};
    use crate::delivery::DeliveryHealth;
    use crate::destination::{Put, S3Output, S3Sink};
    use crate::naming::{ObjectNamer, Partition, RenderError};
    use crate::telemetry::Metrics;

    pub(super) fn output(spec: &StoreSpec, prefix: Option<&str>) -> S3Output {
        let errors = Some("e/!{firehose:error-output-type}/");
        let namer = ObjectNamer::new("s", prefix, errors, "", chrono_tz::UTC)
            .and_then(|n| n.with_error_extension(""))
            .unwrap();
        S3Output {
            destination: S3Destination::open(spec, "bucket").unwrap(),
            namer: Arc::new(namer),
            codec: ObjectCodec::concatenated(
                compression_for(CompressionFormat::Uncompressed).into(),
                "",
            ),
        }
    }

    /// A context on `runtime` for `stream`, and the shutdown switch.
    pub(super) fn context(
        runtime: &tokio::runtime::Runtime,
        stream: &str,
    ) -> (SinkContext, watch::Sender<bool>) {
        let (shutdown, receiver) = watch::channel(false);
        let ctx = SinkContext {
            stream: stream.into(),
            shard: 0,
            version: 1,
            metrics: Metrics::global(),
            runtime: runtime.handle().clone(),
            shutdown: receiver,
            health: Arc::new(DeliveryHealth::new()),
        };
        (ctx, shutdown)
    }

    pub(super) fn unit(body: &'static [u8]) -> Unit {
        Unit {
            key: BufferKey::Data(Partition::default()),
            variant: 0,
            body: Bytes::from_static(body),
            items: Vec::new(),
            records: 2,
            bytes: body.len() as u64,
            first: Pos { seq: 3, sub: 0 },
            last: Pos { seq: 4, sub: 0 },
            oldest_arrival_ms: 1_594_265_943_615,
            checkpoint_after: 5,
        }
    }

    /// `hydrant_delivery_to_s3_failures_total` of `stream` with `code`.
    fn failures(stream: &str, code: &str) -> u64 {
        let labels = [format!("stream=\"{stream}\""), format!("code=\"{code}\"")];
        Metrics::global()
            .render()
            .lines()
            .filter(|l| l.starts_with("hydrant_delivery_to_s3_failures_total{"))
            .filter(|l| labels.iter().all(|label| l.contains(label.as_str())))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn a_transient_failure_is_retried_until_shutdown_and_counted_each_time() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // A port nobody listens on: every attempt is refused, a transient failure.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spec = StoreSpec::S3 {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            region: "us-east-1".into(),
            access_key_id: Some("key".into()),
            secret_access_key: Some("secret".into()),
            allow_http: true,
            virtual_hosted_style: false,
        };
        let out = runtime.block_on(async { output(&spec, None) });
        let (ctx, shutdown) = context(&runtime, "s3-sink-transient");
        let stop = std::thread::spawn(move || {
            // 200 + 400 + 800 ms of backoff: at least three attempts before this.
            std::thread::sleep(Duration::from_millis(1_500));
            shutdown.send(true).unwrap();
        });
        let put = out.try_put(&ctx, "k", Bytes::from_static(b"x"), None);
        stop.join().unwrap();
        assert!(matches!(put, Put::Shutdown), "retried until shutdown, never given up");
        let failed = failures("s3-sink-transient", "S3.ServiceException");
        assert!(failed >= 3, "{failed} failed attempts counted");
        assert!(ctx.health.problem().is_some(), "the held-back shard shows in its health");
    }

    #[test]
    fn a_key_the_store_refuses_ends_at_once_and_the_object_goes_to_the_error_output() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Local { root: dir.path().to_path_buf() };
        let (ctx, _shutdown) = context(&runtime, "s3-sink-refused");
        let out = output(&spec, None);
        let put = out.try_put(&ctx, "a//b", Bytes::from_static(b"x"), None);
        let Put::Refused(error) = put else { panic!("a refused key is not retried") };
        assert_eq!(error.code, "S3.InvalidKey");
        assert_eq!(failures("s3-sink-refused", "S3.InvalidKey"), 1, "one attempt, counted");

        // A prefix segment too long for a file name: every object of the stream is refused,
        // and each goes whole to processing-failed, so the shard moves on.
        let long = format!("{}/", "p".repeat(300));
        let sink = S3Sink { output: output(&spec, Some(&long)), backup: false };
        assert!(sink.deliver(&unit(b"{\"a\":1}\n{\"a\":2}\n"), &ctx).unwrap());
        let written = files(dir.path());
        assert_eq!(written.len(), 1, "{written:?}");
        let key = written[0].strip_prefix(dir.path().join("bucket")).unwrap();
        assert!(key.starts_with("e/processing-failed"), "{key:?}");
        let line = String::from_utf8(std::fs::read(&written[0]).unwrap()).unwrap();
        // Firehose's field order (the shared fields first), one line.
        assert!(
            line.starts_with(
                r#"{"attemptsMade":1,"arrivalTimestamp":1594265943615,"errorCode":"S3.InvalidKey","#
            ),
            "{line}"
        );
        assert!(line.ends_with(",\"recordCount\":2}\n"), "{line}");
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["errorCode"], "S3.InvalidKey");
        assert_eq!(doc["recordCount"], 2);
        assert_eq!(doc["rawData"], "eyJhIjoxfQp7ImEiOjJ9Cg==");
    }

    /// The errors a sink returns say what failed: an object without a key goes to the error
    /// output (as one the store refuses), and only what the error output cannot take either
    /// reaches the worker.
    #[test]
    fn an_object_without_a_key_goes_to_the_error_output_and_an_error_object_without_one_is_an_error(
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Local { root: dir.path().to_path_buf() };
        let (ctx, _shutdown) = context(&runtime, "s3-sink-unnamed");
        // The unit has no partition keys: its data key cannot be made.
        let out = output(&spec, Some("p/!{partitionKeyFromQuery:x}/"));
        let data = unit(b"{\"a\":1}\n{\"a\":2}\n");
        let Err(SinkError::DataKey(why)) = out.data_key(&ctx, &data) else {
            panic!("a missing partition key is a data key error")
        };
        assert!(matches!(why, RenderError::MissingPartitionKey { .. }), "{why:?}");

        let sink = S3Sink { output: out, backup: false };
        assert!(sink.deliver(&data, &ctx).unwrap());
        let written = files(dir.path());
        assert_eq!(written.len(), 1, "{written:?}");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
        assert_eq!(doc["errorCode"], "S3.InvalidKey");
        let message = doc["errorMessage"].as_str().unwrap();
        // The reason is the naming error's own text, as before.
        assert!(message.starts_with(&format!("{why} (rawData holds")), "{message}");

        // An arrival time no calendar shows: neither the object nor its error document has a
        // key, so nothing can take the unit and the worker gets the error.
        let ancient = Unit { oldest_arrival_ms: i64::MIN, ..unit(b"x\n") };
        let Err(e) = sink.deliver(&ancient, &ctx) else { panic!("nowhere to write it") };
        assert!(matches!(e, SinkError::ErrorKey(RenderError::ArrivalOutOfRange { .. })), "{e:?}");
        assert!(e.to_string().contains("ErrorOutputPrefix"), "{e}");
        assert!(std::error::Error::source(&e).is_some(), "the naming error is its source");
    }

    /// Units of the other kind are refused by kind, never written (the worker routes them).
    #[test]
    fn a_unit_of_the_wrong_kind_is_refused_by_kind() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Local { root: dir.path().to_path_buf() };
        let (ctx, _shutdown) = context(&runtime, "s3-sink-kinds");
        let out = output(&spec, None);
        let data = unit(b"x\n");
        let errors = Unit { key: BufferKey::Errors("processing-failed"), ..unit(b"x\n") };
        assert!(matches!(out.deliver_errors(&data, &ctx), Err(SinkError::DataUnitAsErrors)));
        assert!(matches!(out.data_key(&ctx, &errors), Err(SinkError::ErrorUnitAsData)));
        assert!(files(dir.path()).is_empty());
    }
}
