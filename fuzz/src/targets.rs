//! The fuzz targets' bodies. Each takes arbitrary bytes and must return without panicking,
//! hanging or allocating without bound; where more can be checked (a round trip, a tampered
//! object that must not decrypt, a recovered log whose every record reads back), it asserts it.
//!
//! Inputs are the bytes a hostile peer controls, shaped as little as possible: a leading byte
//! picks a variant where a target covers several decoders. The corpora in `fuzz/corpus/<name>/`
//! start from real inputs (docs/fuzzing.md says where each came from).
//!
//! This file is shared: the libFuzzer binaries in `fuzz_targets/` call it through the
//! `hydrant-fuzz` crate, and the main workspace's `tests/fuzz_corpus.rs` includes it with
//! `#[path]` to replay every committed corpus file as a normal test. So it may only use crates
//! that both have: `hydrant`, its dependencies, and `tempfile`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::Bytes;
use hydrant::api::Verifier;
use hydrant::codec::compression::{Compression, HadoopSnappy, Snappy};
use hydrant::codec::encryption::{
    decrypt, decrypt_stream, header_key_id, EncryptWriter, KeyRing, MasterKey, RecordCipher,
    WrappedKey,
};
use hydrant::fuzzing;
use hydrant::kinesis::{record as kinesis_record, SequenceNumber, ShardIterator};
use hydrant::log::embedded::record::{decode_frame, encode_frame_of_kind, Decoded};
use hydrant::log::embedded::{checkpoint, segment, DiskBudget, FsyncPolicy, LogOptions, Shard};
use hydrant::log::Entry;
use hydrant::processors::{AppendDelimiter, DeAggregator, MetadataExtractor, MAX_SUB_RECORDS};
use hydrant::wasm_host::{InputRecord, RecordResult};

/// A fuzz target: takes any bytes, panics (or aborts) only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("put_records", put_records),
    ("config", config),
    ("log_frames", log_frames),
    ("log_recovery", log_recovery),
    ("snappy_framing", snappy_framing),
    ("encrypted_object", encrypted_object),
    ("transform_response", transform_response),
    ("sigv4", sigv4),
    ("record_processing", record_processing),
    ("kinesis_requests", kinesis_requests),
];

/// Firehose's limits, as the API enforces them (`src/api/ops.rs`).
const MAX_RECORD_BYTES: usize = 1_024_000;
const MAX_BATCH_RECORDS: usize = 500;
const MAX_BATCH_BYTES: usize = 4 << 20;

/// `[op, body...]`: a PutRecordBatch body (op even) or a PutRecord body (op odd), decoded and
/// checked as the API does before it looks the stream up.
pub fn put_records(data: &[u8]) {
    let Some((&op, body)) = data.split_first() else { return };
    if op % 2 == 0 {
        if let Ok((name, records)) = fuzzing::decode_put_record_batch(body) {
            assert!(hydrant::names::is_valid_stream_name(&name), "{name:?}");
            assert!((1..=MAX_BATCH_RECORDS).contains(&records.len()));
            assert!(records.iter().all(|r| r.len() <= MAX_RECORD_BYTES));
            assert!(records.iter().map(Bytes::len).sum::<usize>() <= MAX_BATCH_BYTES);
        }
    } else if let Ok((name, record)) = fuzzing::decode_put_record(body) {
        assert!(hydrant::names::is_valid_stream_name(&name), "{name:?}");
        assert!(record.len() <= MAX_RECORD_BYTES);
    }
}

/// Stack of the thread that parses configs: a tokio worker's (the API validates the streams
/// of CreateDeliveryStream / UpdateDestination there), so that recursion too deep for a
/// server thread is found, not hidden by the main thread's 8 MiB.
const SERVER_THREAD_STACK: usize = 2 << 20;

/// Runs `f` on a thread with a server thread's stack, passing its panic on.
fn on_server_stack(f: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .stack_size(SERVER_THREAD_STACK)
            .spawn_scoped(scope, f)
            .expect("spawn a thread");
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// A config file's text: YAML -> `${ENV}` expansion -> structs -> validation (which also
/// compiles jq queries and loads key files), as `hydrant validate` and `serve` do.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    on_server_stack(|| {
        let env = |name: &str| match name {
            "FUZZ_SECRET" => Ok("fuzz-secret".to_owned()),
            _ => Err(std::env::VarError::NotPresent),
        };
        let _ = hydrant::plan::parse_with_env(text, Path::new("/nonexistent/hydrant-fuzz"), env);
    });
}

/// The log's frame decoder over a buffer (every frame it accepts re-encodes to the same
/// bytes), and the small parsers of a shard directory: checkpoint files, segment names and
/// headers.
pub fn log_frames(data: &[u8]) {
    let mut rest = data;
    while let Decoded::Frame { header, payload } = decode_frame(rest) {
        let mut again = Vec::new();
        let body = &rest[payload.clone()];
        encode_frame_of_kind(&mut again, header.kind, header.seq, header.arrival_ms, body);
        assert_eq!(again, rest[..payload.end]);
        rest = &rest[payload.end..];
    }
    if let Some(head) = data.first_chunk::<16>() {
        if let Some((base, version)) = segment::parse_header(head) {
            assert_eq!(&segment::encode_header_of_version(base, version), head);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(next_seq) = checkpoint::parse(text) {
            assert_eq!(checkpoint::parse(&checkpoint::encode(next_seq)), Some(next_seq));
        }
        if let Some(base) = segment::parse_file_name(text) {
            assert_eq!(segment::file_name(base), text);
        }
    }
}

/// Where the log targets make their shard directories: tmpfs when there is one (fsync is
/// free there), else the system's temporary directory.
fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// The files of a shard directory, packed: repeated `name_len: u8, name, data_len: u16 LE,
/// data` (the last entry may be cut short). Names keep only `[A-Za-z0-9._-]`.
fn unpack_files(mut data: &[u8]) -> Vec<(String, &[u8])> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    while let Some((&name_len, rest)) = data.split_first() {
        let name_len = (name_len as usize).min(rest.len());
        let (name, rest) = rest.split_at(name_len);
        let len = match rest {
            [a, b, ..] => u16::from_le_bytes([*a, *b]) as usize,
            _ => 0,
        };
        let rest = rest.get(2..).unwrap_or_default();
        let (content, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        let name: String = name
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            .map(|&b| b as char)
            .collect();
        if name.is_empty() || name == "." || name == ".." || files.iter().any(|(n, _)| *n == name) {
            continue;
        }
        files.push((name, content));
        if files.len() == 16 {
            break;
        }
    }
    files
}

/// A shard directory of arbitrary files (segments, checkpoints, anything): opening the shard
/// (recovery) must repair it or report an error. When it opens, every record from the oldest
/// to the end reads back, and opening it again finds the same log (recovery is idempotent).
pub fn log_recovery(data: &[u8]) {
    let files = unpack_files(data);
    let dir = tempfile::Builder::new()
        .prefix("hydrant-fuzz-log-")
        .tempdir_in(scratch_root())
        .expect("create a scratch directory");
    for (name, content) in &files {
        std::fs::write(dir.path().join(name), content).expect("write a scratch file");
    }
    let open = || {
        let options = LogOptions {
            fsync: FsyncPolicy::Interval(Duration::from_secs(3600)),
            ..LogOptions::default()
        };
        Shard::open(dir.path(), options, DiskBudget::new(None))
    };
    let read_all = |shard: &Shard| {
        let (first, end) = (shard.first_seq(), shard.next_seq());
        assert!(first <= end, "oldest record {first} is past the end {end}");
        let mut reader = shard.reader(first).expect("a reader at the oldest record");
        let mut entries = Vec::new();
        for seq in first..end {
            match reader.next() {
                Ok(Some(Entry::Record(record))) => {
                    assert_eq!(record.seq, seq);
                    entries.push(Entry::Record(record));
                }
                Ok(Some(Entry::Seal(seal))) => {
                    assert_eq!(seal.position, seq);
                    entries.push(Entry::Seal(seal));
                }
                other => panic!("entry {seq} of a recovered log: {other:?}"),
            }
        }
        assert!(matches!(reader.next(), Ok(None)));
        (first, end, entries)
    };
    let Ok(shard) = open() else { return };
    let first_open = read_all(&shard);
    drop(shard);
    let shard = open().expect("a log that opened once opens again");
    assert!(read_all(&shard) == first_open, "reopening changed the log");
}

/// Deterministic write sizes for the snappy writers.
fn next_write_len(state: &mut u32, left: usize) -> usize {
    *state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
    let len = match (*state >> 16) % 4 {
        0 => 1,
        1 => (*state >> 8) as usize % 64,
        2 => (*state >> 4) as usize % 4096,
        _ => left,
    };
    len.clamp(1, left.max(1))
}

fn be_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize
}

/// The xerial snappy-java stream, read from its description (`xerial_snappy.rs`) with
/// `snap::raw`: the 16-byte header, then (BE length, raw block) pairs. Returns the data and
/// each block's uncompressed length.
fn read_xerial(object: &[u8]) -> (Vec<u8>, Vec<usize>) {
    const HEADER: [u8; 16] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
    assert_eq!(object[..16], HEADER);
    let mut decoder = snap::raw::Decoder::new();
    let (mut out, mut blocks, mut at) = (Vec::new(), Vec::new(), 16);
    while at < object.len() {
        let len = be_u32(object, at);
        at += 4;
        let block = decoder.decompress_vec(&object[at..at + len]).expect("a valid snappy block");
        blocks.push(block.len());
        out.extend_from_slice(&block);
        at += len;
    }
    (out, blocks)
}

/// Hadoop's block stream (`hadoop_snappy.rs`): (BE uncompressed length, BE compressed
/// length, raw block) triples; an empty object is a single zero length.
fn read_hadoop(object: &[u8]) -> (Vec<u8>, Vec<usize>) {
    if object == [0, 0, 0, 0] {
        return (Vec::new(), Vec::new());
    }
    let mut decoder = snap::raw::Decoder::new();
    let (mut out, mut blocks, mut at) = (Vec::new(), Vec::new(), 0);
    while at < object.len() {
        let (n, c) = (be_u32(object, at), be_u32(object, at + 4));
        at += 8;
        let block = decoder.decompress_vec(&object[at..at + c]).expect("a valid snappy block");
        assert_eq!(block.len(), n, "the preamble's uncompressed length");
        blocks.push(n);
        out.extend_from_slice(&block);
        at += c;
    }
    (out, blocks)
}

/// `[format, block_size: u16 LE, write_seed, data...]`: the data written in pieces to the
/// xerial (format even) or Hadoop (odd) snappy writer; an independent reader must get the
/// data back, cut in blocks of exactly `block_size` bytes but the last.
pub fn snappy_framing(data: &[u8]) {
    let [format, lo, hi, seed, data @ ..] = data else { return };
    let block_size = 1 + u16::from_le_bytes([*lo, *hi]) as usize;
    let hadoop = format % 2 == 1;
    let compression: Box<dyn Compression> = if hadoop {
        Box::new(HadoopSnappy::with_block_size(block_size))
    } else {
        Box::new(Snappy::with_block_size(block_size))
    };
    let mut writer = compression.writer();
    let (mut state, mut at) = (u32::from(*seed), 0);
    while at < data.len() {
        let len = next_write_len(&mut state, data.len() - at);
        writer.write_all(&data[at..at + len]).expect("in-memory write");
        at += len;
    }
    let object = writer.finish().expect("in-memory finish");
    let (decoded, blocks) = if hadoop { read_hadoop(&object) } else { read_xerial(&object) };
    assert!(decoded == data, "the object does not decode to what was written");
    assert_eq!(blocks.len(), data.len().div_ceil(block_size));
    if let Some((last, full)) = blocks.split_last() {
        assert!(full.iter().all(|&n| n == block_size));
        assert!((1..=block_size).contains(last));
    }
}

/// The master keys every encrypted seed was made with (`fuzz-key` active, `old-key` too).
fn key_ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let keys = [
            MasterKey::from_bytes("fuzz-key", &[0x42; 32]).expect("valid key"),
            MasterKey::from_bytes("old-key", &[0x17; 32]).expect("valid key"),
        ];
        KeyRing::new("fuzz-key", keys).expect("valid ring")
    })
}

/// The persisted data key (`<shard>/keys/<epoch>-<n>.key`) of the epoch whose records seed
/// the `encrypted_object` corpus, wrapped under `fuzz-key`.
const SEED_EPOCH_KEY: &[u8] = b"HYDK\x01\x08fuzz-key\
    \xda\x58\x6a\x64\x23\xb4\x2a\x94\xc1\x84\x2b\x9d\xa5\x42\x08\xce\xf2\x24\x59\xd9\
    \xd4\x0a\x4f\x21\xc4\x2c\x58\x45\x31\xd9\x40\x38\xc8\x28\x34\x3b\x15\x6a\x87\x26\
    \xfe\xc8\x82\x3d\x12\xea\x75\x8e\x51\x6d\x7c\x83\x98\x6f\xdc\x8a\xb8\x63\xc0\x7b\
    \xcd\x37\x68\x0c";

/// A reader that hands out its bytes a few at a time (as a pipe into `hydrant decrypt` may).
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.step = self.step % 7 + 1;
        Ok(n)
    }
}

/// `[mode, ...]`, all under a fixed key ring:
/// * 0: an object as `hydrant decrypt` reads it (header key id, then the whole object, also
///   through a reader that returns a few bytes at a time: both must agree);
/// * 1: `[chunk, flip: u16 LE, plaintext...]`: encrypting then decrypting gives the plaintext
///   back; the object with one bit flipped, or cut short, does not decrypt;
/// * 2: a persisted epoch key (`WrappedKey`), parsed and unwrapped;
/// * 3: `[seq: u64 LE, sealed...]`: a log record sealed at rest, opened with the seed epoch.
pub fn encrypted_object(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else { return };
    let ring = key_ring();
    match mode % 4 {
        0 => {
            let _ = header_key_id(data);
            let whole = decrypt(ring, data);
            let mut out = Vec::new();
            let streamed = decrypt_stream(ring, Trickle { data, step: 1 }, &mut out);
            match (&whole, &streamed) {
                (Ok(plain), Ok(n)) => assert!(*n as usize == plain.len() && out == *plain),
                (Err(_), Err(_)) => {}
                _ => panic!("decrypt {whole:?} but decrypt_stream {streamed:?}"),
            }
        }
        1 => {
            let [chunk, lo, hi, plaintext @ ..] = data else { return };
            let chunk_size = 1 + u32::from(*chunk) * 97;
            let mut writer = EncryptWriter::with_chunk_size(ring, Vec::new(), chunk_size)
                .expect("a valid chunk size");
            let (mut state, mut at) = (u32::from(*chunk), 0);
            while at < plaintext.len() {
                let len = next_write_len(&mut state, plaintext.len() - at);
                writer.write_all(&plaintext[at..at + len]).expect("in-memory write");
                at += len;
            }
            let mut object = writer.finish().expect("in-memory finish");
            assert!(decrypt(ring, &object).expect("decrypts") == plaintext);
            let at = u16::from_le_bytes([*lo, *hi]) as usize % object.len();
            assert!(decrypt(ring, &object[..at]).is_err(), "cut at {at} still decrypts");
            object[at] ^= 1 << (*lo % 8);
            assert!(decrypt(ring, &object).is_err(), "a flipped bit at {at} still decrypts");
        }
        2 => {
            if let Ok(wrapped) = WrappedKey::parse(data) {
                assert_eq!(wrapped.as_bytes(), data);
            }
            let _ = RecordCipher::open_existing(ring, data);
        }
        _ => {
            static EPOCH: OnceLock<RecordCipher> = OnceLock::new();
            let epoch = EPOCH.get_or_init(|| {
                RecordCipher::open_existing(key_ring(), SEED_EPOCH_KEY).expect("the seed epoch")
            });
            let Some((seq, sealed)) = data.split_first_chunk::<8>() else { return };
            if let Ok(plain) = epoch.open(u64::from_le_bytes(*seq), sealed) {
                assert_eq!(plain.len() + hydrant::codec::encryption::RECORD_OVERHEAD, sealed.len());
            }
        }
    }
}

/// `[mode, records, response...]`: a transform's response to a batch of `records % 8` input
/// records with ids `r0`, `r1`, ...; binary ABI (mode even) or Firehose JSON (odd). Decoded,
/// it has exactly one outcome per input record, in order.
pub fn transform_response(data: &[u8]) {
    let [mode, count, response @ ..] = data else { return };
    let records: Vec<InputRecord> = (0..i64::from(*count % 8))
        .map(|i| InputRecord {
            record_id: format!("r{i}"),
            approximate_arrival_timestamp: 1_796_612_400_000 + i,
            data: Bytes::from(format!("{{\"n\":{i}}}\n")),
        })
        .collect();
    let decoded = if mode % 2 == 0 {
        fuzzing::decode_transform_binary_response(response, &records)
    } else {
        fuzzing::decode_transform_json_response(response, &records)
    };
    let Ok(outcomes) = decoded else { return };
    assert_eq!(outcomes.len(), records.len());
    for (outcome, record) in outcomes.iter().zip(&records) {
        assert_eq!(outcome.record_id, record.record_id);
        if let RecordResult::ProcessingFailed { error_message, .. } = &outcome.result {
            assert!(error_message.len() <= 4096, "a guest's message is cut to 4 KiB");
        }
    }
}

/// The access key the `sigv4` seeds were signed with (by boto3, see docs/fuzzing.md), and a
/// time a few minutes after they were signed.
const SIGV4_CONFIG: &str = "region: us-east-1\nauth:\n  mode: sigv4\n  credentials:\n    - \
     access_key_id: AKIDFUZZEXAMPLE\n      secret_access_key: fuzz-secret-key-0123456789\n";
const SIGV4_NOW_UNIX: u64 = 1_796_612_400; // 2026-12-07T03:00:00Z

/// An HTTP request as text: `METHOD TARGET\n`, `name: value\n` header lines, an empty line,
/// the body. Verified as `POST /` is under `auth: sigv4` (headers first, then the body).
pub fn sigv4(data: &[u8]) {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        let config = hydrant::plan::parse_with_env(SIGV4_CONFIG, Path::new("/"), |_| {
            Err(std::env::VarError::NotPresent)
        })
        .expect("the sigv4 fuzz config is valid")
        .into_config();
        Verifier::from_config(&config.auth, &config.region).expect("auth mode sigv4")
    });
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(at) => (&request_line[..at], &request_line[at + 1..]),
        None => (request_line, &b"/"[..]),
    };
    let Ok(method) = Method::from_bytes(method) else { return };
    let Ok(uri) = Uri::try_from(target) else { return };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(SIGV4_NOW_UNIX);
    if let Ok(caller) = verifier.verify(&method, &uri, &headers, body, now) {
        assert_eq!(caller.access_key_id, "AKIDFUZZEXAMPLE");
    }
}

/// The `MetadataExtractionQuery` values the `record_processing` target runs: the documented
/// example and one that uses more of jq on every field of the record.
const QUERIES: [&str; 2] = [
    "{customer: .customer_id}",
    "{customer: (.customer.id // .customer_id | tostring), kind: (.type // \"none\" | \
     ascii_downcase), n: ([.. | numbers] | length | tostring)}",
];

/// `[mode, record...]`: a producer's record through the processors a stream can run on it
/// before delivery: de-aggregation (JSON objects for mode % 3 == 0, `####`-delimited for 1,
/// none for 2), then each sub-record through a jq `MetadataExtraction` query (mode / 3 % 2
/// picks it) and `AppendDelimiterToRecord`. Sub-records are pieces of the record, in order;
/// JSON ones are objects; delimited ones do not contain the delimiter.
pub fn record_processing(data: &[u8]) {
    static EXTRACTORS: OnceLock<Vec<MetadataExtractor>> = OnceLock::new();
    let Some((&mode, record)) = data.split_first() else { return };
    let record = Bytes::copy_from_slice(record);
    on_server_stack(|| {
        let extractors = EXTRACTORS.get_or_init(|| {
            QUERIES.iter().map(|q| MetadataExtractor::new(q).expect("a valid query")).collect()
        });
        let sub_records = match mode % 3 {
            0 => DeAggregator::json().split(&record),
            1 => DeAggregator::delimited(b"####".to_vec()).expect("a delimiter").split(&record),
            _ => Ok(vec![record.clone()]),
        };
        let Ok(sub_records) = sub_records else { return };
        assert!(sub_records.len() <= MAX_SUB_RECORDS);
        // Sub-records are slices of the record (zero-copy), in order, not overlapping.
        let start = record.as_ptr() as usize;
        let mut end = 0;
        for sub in &sub_records {
            if !sub.is_empty() {
                let at = (sub.as_ptr() as usize).wrapping_sub(start);
                assert!(at >= end && at + sub.len() <= record.len(), "{sub:?} is not in order");
                end = at + sub.len();
            }
            match mode % 3 {
                0 => assert!(sub.first() == Some(&b'{') && sub.last() == Some(&b'}')),
                1 => assert!(!sub.is_empty() && !sub.windows(4).any(|w| w == b"####")),
                _ => {}
            }
            let _ = extractors[usize::from(mode / 3 % 2)].extract(sub);
            let delimited = AppendDelimiter::new(b"\n".to_vec()).expect("a delimiter").apply(sub);
            assert_eq!(delimited.len(), sub.len() + 1);
        }
    });
}

/// `[op, body...]`: a Kinesis request body in CBOR, turned into the JSON request the handlers
/// take (op even); or what Kinesis clients hand back (op odd): a shard iterator and a sequence
/// number (each round-trips when it parses), and a log entry read as a Kinesis record.
pub fn kinesis_requests(data: &[u8]) {
    let Some((&op, body)) = data.split_first() else { return };
    if op % 2 == 0 {
        if let Ok(json) = fuzzing::kinesis_cbor_request(body) {
            assert!(std::str::from_utf8(&json).is_ok_and(|j| !j.is_empty()));
        }
        return;
    }
    let text = String::from_utf8_lossy(body);
    if let Ok(iterator) = ShardIterator::parse(&text, i64::MIN) {
        assert_eq!(ShardIterator::parse(&iterator.token(), i64::MIN), Ok(iterator));
    }
    if let Some(sequence) = SequenceNumber::parse(&text) {
        assert_eq!(sequence.to_string(), text);
    }
    if let Ok(record) = kinesis_record::decode(&Bytes::copy_from_slice(body)) {
        assert!(record.partition_key.len() + record.data.len() + 3 <= body.len());
    }
}
