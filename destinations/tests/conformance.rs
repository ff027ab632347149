//! Every destination passes the shared conformance suite (`hydrant_destinations::conformance`):
//! once against a local stand-in, and once against the real service of the test services
//! (`source <SVC_DIR>/env`) where it has one. The real-service targets skip when their service
//! is not configured, unless `HYDRANT_REQUIRE_SERVICES=1`, which makes that a failure.
//!
//! | destination | stand-in | real service |
//! |---|---|---|
//! | s3 | `InMemory`, a local directory | s3s-fs (`FH_TEST_S3_ENDPOINT`) |
//! | search | `support::bulk_stub` | osmem-server (`FH_TEST_OPENSEARCH_ENDPOINT`) |
//! | http | `support::receiver` | - |
//! | warehouse | none: no honest stand-in for `COPY` | PostgreSQL (`FH_TEST_DATABASE_URL`) |

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hydrant_destinations::conformance::Target;

/// The value of `var`, or `None` to skip (a failure under `HYDRANT_REQUIRE_SERVICES=1`).
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{var} is not set but HYDRANT_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping: {var} is not set (source the test services' env file)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// Records stored, counted.
fn counted(records: impl IntoIterator<Item = Bytes>) -> BTreeMap<Bytes, u32> {
    let mut out = BTreeMap::new();
    for record in records {
        *out.entry(record).or_insert(0) += 1;
    }
    out
}

/// The records of newline-separated bodies.
fn lines(body: &[u8]) -> impl Iterator<Item = Bytes> + '_ {
    body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(Bytes::copy_from_slice)
}

mod s3 {
    use futures_util::TryStreamExt;
    use hydrant_destinations::s3::{Object, S3Destination, StoreSpec};
    use object_store::path::Path;
    use object_store::ObjectStoreExt;

    use super::*;

    /// One object per request under the target's prefix, named by its records, so a replayed
    /// batch overwrites its object as Hydrant's replays do.
    pub struct S3Target {
        destination: Arc<S3Destination>,
        prefix: String,
        _dir: Option<tempfile::TempDir>,
    }

    #[async_trait]
    impl Target for S3Target {
        type D = S3Destination;

        fn destination(&self) -> Arc<S3Destination> {
            self.destination.clone()
        }

        fn request(&self, records: &[Bytes]) -> Object {
            let mut body = Vec::new();
            for record in records {
                body.extend_from_slice(record);
                body.push(b'\n');
            }
            let name = format!("{:016x}", fnv(&body));
            Object {
                key: format!("{}/{name}", self.prefix),
                body: body.into(),
                content_encoding: None,
            }
        }

        fn indexes(object: &Object) -> Vec<usize> {
            (0..lines(&object.body).count()).collect()
        }

        async fn stored(&self) -> BTreeMap<Bytes, u32> {
            let store = self.destination.store();
            let prefix = Path::from(self.prefix.as_str());
            let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
            let mut records = Vec::new();
            for meta in objects {
                let body = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
                records.extend(lines(&body));
            }
            counted(records)
        }
    }

    /// FNV-1a: a stable name for a body.
    fn fnv(data: &[u8]) -> u64 {
        data.iter()
            .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    }

    mod in_memory {
        use super::*;

        async fn target() -> Option<S3Target> {
            let destination = Arc::new(S3Destination::in_memory("bucket"));
            Some(S3Target { destination, prefix: unique("conformance/"), _dir: None })
        }

        hydrant_destinations::conformance_tests!(target);
    }

    mod local_directory {
        use super::*;

        async fn target() -> Option<S3Target> {
            let dir = tempfile::tempdir().unwrap();
            let spec = StoreSpec::Local { root: dir.path().to_path_buf() };
            let destination = Arc::new(S3Destination::open(&spec, "bucket").unwrap());
            Some(S3Target { destination, prefix: unique("conformance/"), _dir: Some(dir) })
        }

        hydrant_destinations::conformance_tests!(target);
    }

    /// s3s-fs: a bucket is a folder of its data directory.
    mod service {
        use super::*;

        async fn target() -> Option<S3Target> {
            let endpoint = service("FH_TEST_S3_ENDPOINT")?;
            let data = service("FH_TEST_S3_DATA_DIR")?;
            std::fs::create_dir_all(std::path::Path::new(&data).join("conformance")).unwrap();
            let spec = StoreSpec::S3 {
                endpoint: Some(endpoint),
                region: "us-east-1".into(),
                access_key_id: std::env::var("FH_TEST_S3_ACCESS_KEY").ok(),
                secret_access_key: std::env::var("FH_TEST_S3_SECRET_KEY").ok(),
                allow_http: true,
                virtual_hosted_style: false,
            };
            let destination = Arc::new(S3Destination::open(&spec, "conformance").unwrap());
            Some(S3Target { destination, prefix: unique("run-"), _dir: None })
        }

        hydrant_destinations::conformance_tests!(target);
    }
}

mod search {
    use std::time::Duration;

    use hydrant_destinations::search::{
        document_id, BulkRequest, IndexRotationPeriod, RecordPosition, SearchDestination,
        SearchSettings, SearchSettingsInput,
    };
    use serde_json::{json, Value};

    use super::support::bulk_stub::BulkStub;
    use super::*;

    const STREAM: &str = "conformance";

    fn settings(endpoint: &str, index: &str) -> SearchSettings {
        SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: Some(endpoint.into()),
            index_name: index.into(),
            index_rotation_period: Some(IndexRotationPeriod::NoRotation),
            retry_duration_in_seconds: Some(5),
            request_timeout: Some(Duration::from_secs(5)),
            ..SearchSettingsInput::default()
        })
        .unwrap()
    }

    /// Record `i` is the document of sequence number `i`: a replay has the same ids.
    fn request(settings: &SearchSettings, records: &[Bytes]) -> BulkRequest {
        let docs = records.iter().enumerate().map(|(i, record)| {
            let position =
                RecordPosition { stream: STREAM, shard: 0, sequence: i as u64, sub_index: 0 };
            settings.document(i, position, 0, record.clone())
        });
        BulkRequest { docs: docs.collect() }
    }

    fn indexes(request: &BulkRequest) -> Vec<usize> {
        request.docs.iter().map(|d| d.index).collect()
    }

    /// The refused record: the mapping (the stub's, or the index's) wants an integer `n`.
    fn not_a_number() -> Option<Bytes> {
        Some(Bytes::from_static(br#"{"n":"not a number"}"#))
    }

    mod stub {
        use super::*;

        pub struct StubTarget {
            stub: BulkStub,
            settings: SearchSettings,
            destination: Arc<SearchDestination>,
        }

        async fn target() -> Option<StubTarget> {
            let stub = BulkStub::start().await;
            let settings = settings(&stub.url, "logs");
            let destination = Arc::new(SearchDestination::new(settings.clone()).unwrap());
            Some(StubTarget { stub, settings, destination })
        }

        #[async_trait]
        impl Target for StubTarget {
            type D = SearchDestination;

            fn destination(&self) -> Arc<SearchDestination> {
                self.destination.clone()
            }

            fn request(&self, records: &[Bytes]) -> BulkRequest {
                request(&self.settings, records)
            }

            fn indexes(request: &BulkRequest) -> Vec<usize> {
                indexes(request)
            }

            async fn stored(&self) -> BTreeMap<Bytes, u32> {
                counted(self.stub.stored().into_iter().map(Bytes::from))
            }

            fn refused_record(&self) -> Option<Bytes> {
                not_a_number()
            }

            fn fail_records_once(&self, records: &[usize]) -> bool {
                for &i in records {
                    self.stub.item_statuses(&document_id(STREAM, 0, i as u64, 0), &[429]);
                }
                true
            }
        }

        hydrant_destinations::conformance_tests!(target);
    }

    /// osmem-server, one fresh index per case with `n` mapped as an integer.
    mod service {
        use super::*;

        pub struct ClusterTarget {
            url: String,
            index: String,
            http: reqwest::Client,
            settings: SearchSettings,
            destination: Arc<SearchDestination>,
        }

        async fn target() -> Option<ClusterTarget> {
            let url = service("FH_TEST_OPENSEARCH_ENDPOINT")?;
            let index = unique("hyd-conformance-");
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mapping = json!({"mappings": {"properties": {"n": {"type": "integer"}}}});
            let created = http
                .put(format!("{url}/{index}"))
                .header("content-type", "application/json")
                .body(mapping.to_string())
                .send()
                .await
                .unwrap();
            assert!(created.status().is_success(), "{}", created.text().await.unwrap());
            let settings = settings(&url, &index);
            let destination = Arc::new(SearchDestination::new(settings.clone()).unwrap());
            Some(ClusterTarget { url, index, http, settings, destination })
        }

        #[async_trait]
        impl Target for ClusterTarget {
            type D = SearchDestination;

            fn destination(&self) -> Arc<SearchDestination> {
                self.destination.clone()
            }

            fn request(&self, records: &[Bytes]) -> BulkRequest {
                request(&self.settings, records)
            }

            fn indexes(request: &BulkRequest) -> Vec<usize> {
                indexes(request)
            }

            async fn stored(&self) -> BTreeMap<Bytes, u32> {
                let (url, index) = (&self.url, &self.index);
                self.http.post(format!("{url}/{index}/_refresh")).send().await.unwrap();
                let found = self
                    .http
                    .get(format!("{url}/{index}/_search?size=1000"))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let found: Value = serde_json::from_slice(&found).unwrap();
                let hits = found["hits"]["hits"].as_array().cloned().unwrap_or_default();
                counted(hits.iter().map(|hit| Bytes::from(hit["_source"].to_string())))
            }

            fn refused_record(&self) -> Option<Bytes> {
                not_a_number()
            }
        }

        hydrant_destinations::conformance_tests!(target);
    }
}

mod http {
    use hydrant_destinations::http::{
        request_id_for, EndpointConfiguration, HttpDeliveryRequest, HttpDestination,
        HttpEndpointInput, HttpEndpointSettings,
    };

    use super::support::receiver::Receiver;
    use super::*;

    const ARN: &str = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/conformance";

    /// The receiver keeps the records of each request id once, as Firehose asks of endpoints
    /// (a retried or replayed request carries the same id).
    pub struct ReceiverTarget {
        receiver: Receiver,
        destination: Arc<HttpDestination>,
    }

    async fn target() -> Option<ReceiverTarget> {
        let receiver = Receiver::start().await;
        let endpoint = EndpointConfiguration {
            url: receiver.url.clone(),
            name: Some("conformance receiver".into()),
            access_key: None,
        };
        let settings = HttpEndpointSettings::validate(HttpEndpointInput {
            endpoint: &endpoint,
            request: None,
            retry_duration_in_seconds: None,
            buffering_size_in_mbs: None,
            buffering_interval_in_seconds: None,
            source_arn: ARN,
        })
        .unwrap();
        let destination = Arc::new(HttpDestination::new(&settings).unwrap());
        Some(ReceiverTarget { receiver, destination })
    }

    #[async_trait]
    impl Target for ReceiverTarget {
        type D = HttpDestination;

        fn destination(&self) -> Arc<HttpDestination> {
            self.destination.clone()
        }

        fn request(&self, records: &[Bytes]) -> HttpDeliveryRequest {
            let batch: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
            let key = String::from_utf8_lossy(&batch.join(&b'|')).into_owned();
            HttpDeliveryRequest {
                request_id: request_id_for(ARN, &key),
                timestamp_ms: 1_700_000_000_123,
                records: records.to_vec(),
            }
        }

        fn indexes(request: &HttpDeliveryRequest) -> Vec<usize> {
            (0..request.records.len()).collect()
        }

        async fn stored(&self) -> BTreeMap<Bytes, u32> {
            counted(self.receiver.stored())
        }
    }

    hydrant_destinations::conformance_tests!(target);
}

/// PostgreSQL `COPY`, one fresh table `(n int)` per case.
mod warehouse {
    use hydrant_destinations::warehouse::{
        CopyCommand, LoadRequest, PostgresLoader, WarehouseSettings,
    };
    use tokio_postgres::{Client, NoTls};

    use super::*;

    pub struct TableTarget {
        client: Client,
        table: String,
        destination: Arc<PostgresLoader>,
    }

    async fn target() -> Option<TableTarget> {
        let url = service("FH_TEST_DATABASE_URL")?;
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        let table = unique("conformance_");
        client.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
        let copy = CopyCommand {
            data_table_name: table.clone(),
            data_table_columns: None,
            copy_options: Some("JSON 'auto'".into()),
        };
        let settings = WarehouseSettings::from_firehose(&url, &copy, "", "", Some(0)).unwrap();
        let destination = Arc::new(PostgresLoader::new(settings).unwrap());
        Some(TableTarget { client, table, destination })
    }

    #[async_trait]
    impl Target for TableTarget {
        type D = PostgresLoader;

        fn destination(&self) -> Arc<PostgresLoader> {
            self.destination.clone()
        }

        /// The load id names the batch, as the staged object's key does in Hydrant.
        fn request(&self, records: &[Bytes]) -> LoadRequest {
            let body = records.join(&b'\n');
            let batch = String::from_utf8_lossy(&body).replace(['{', '}', '"', ':', '\n'], "");
            let load_id = format!("{}-{batch}", self.table);
            LoadRequest {
                object_url: format!("s3://staging/{load_id}"),
                load_id,
                body: body.into(),
                gzip: false,
            }
        }

        fn indexes(request: &LoadRequest) -> Vec<usize> {
            (0..lines(&request.body).count()).collect()
        }

        async fn stored(&self) -> BTreeMap<Bytes, u32> {
            let rows = self.client.query(&format!("SELECT n FROM {}", self.table), &[]).await;
            let rows = rows.unwrap();
            counted(
                rows.iter().map(|row| Bytes::from(format!("{{\"n\":{}}}", row.get::<_, i32>(0)))),
            )
        }

        fn refused_record(&self) -> Option<Bytes> {
            Some(Bytes::from_static(br#"{"n":"not a number"}"#))
        }
    }

    hydrant_destinations::conformance_tests!(target);
}
