//! Every format against a reader we did not write (flate2, the zip crate's reader, the zstd
//! decoder), or, for the two Snappy containers, a small parser written from the format
//! description in `xerial_snappy.rs` / `hadoop_snappy.rs` around `snap::raw::Decoder`.

use std::io::{Read, Write};

use proptest::prelude::*;

use super::xerial_snappy::XERIAL_HEADER;
use super::*;

const ALL_FORMATS: [CompressionFormat; 6] = [
    CompressionFormat::Uncompressed,
    CompressionFormat::Gzip,
    CompressionFormat::Zip,
    CompressionFormat::Snappy,
    CompressionFormat::HadoopSnappy,
    CompressionFormat::Zstd,
];

fn compress(c: &dyn Compression, records: &[Vec<u8>]) -> Vec<u8> {
    let mut w = c.writer();
    for r in records {
        w.write_all(r).unwrap();
    }
    w.finish().unwrap()
}

/// Reads an object of `format` with an independent reader; `block_size` is the Snappy block
/// size the object was written with, which the Snappy parsers check.
fn decode(format: CompressionFormat, object: &[u8], block_size: usize) -> Vec<u8> {
    match format {
        CompressionFormat::Uncompressed => object.to_vec(),
        CompressionFormat::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(object).read_to_end(&mut out).unwrap();
            out
        }
        CompressionFormat::Zip => unzip_single_entry(object).1,
        CompressionFormat::Snappy => read_xerial(object, block_size),
        CompressionFormat::HadoopSnappy => read_hadoop(object, block_size),
        CompressionFormat::Zstd => zstd::stream::decode_all(object).unwrap(),
    }
}

/// The zip crate's reader: the archive must hold exactly one deflated entry.
fn unzip_single_entry(object: &[u8]) -> (String, Vec<u8>) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(object)).unwrap();
    assert_eq!(archive.len(), 1, "one entry per object");
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let mut out = Vec::new();
    entry.read_to_end(&mut out).unwrap();
    assert_eq!(entry.size(), out.len() as u64);
    (entry.name().unwrap().to_string(), out)
}

fn be_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// Test-only reader of the xerial stream, from the layout in `xerial_snappy.rs`: 16-byte
/// header, then (4-byte BE compressed length, raw Snappy block) pairs to the end. Checks that
/// every block but the last holds exactly `block_size` input bytes.
fn read_xerial(object: &[u8], block_size: usize) -> Vec<u8> {
    assert_eq!(&object[..16], &XERIAL_HEADER, "xerial header");
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut at = 16;
    let mut block_lens = Vec::new();
    while at < object.len() {
        let len = be_u32(object, at);
        at += 4;
        let block = decoder.decompress_vec(&object[at..at + len]).unwrap();
        block_lens.push(block.len());
        out.extend_from_slice(&block);
        at += len;
    }
    assert_eq!(at, object.len());
    check_block_lens(&block_lens, block_size);
    out
}

/// Test-only reader of Hadoop's block stream, from the layout in `hadoop_snappy.rs`, in its
/// general form: (4-byte BE uncompressed length N, then (4-byte BE compressed length, raw
/// Snappy chunk) until N bytes came out) to the end; N = 0 ends the stream.
fn read_hadoop(object: &[u8], block_size: usize) -> Vec<u8> {
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut block_lens = Vec::new();
    while at < object.len() {
        let n = be_u32(object, at);
        at += 4;
        if n == 0 {
            assert_eq!(at, object.len(), "nothing after an end-of-stream block");
            break;
        }
        let mut got = 0;
        while got < n {
            let len = be_u32(object, at);
            at += 4;
            let chunk = decoder.decompress_vec(&object[at..at + len]).unwrap();
            got += chunk.len();
            out.extend_from_slice(&chunk);
            at += len;
        }
        assert_eq!(got, n, "chunks add up to the block's length");
        block_lens.push(n);
    }
    assert_eq!(at, object.len());
    check_block_lens(&block_lens, block_size);
    out
}

fn check_block_lens(lens: &[usize], block_size: usize) {
    if let Some((last, whole)) = lens.split_last() {
        assert!(whole.iter().all(|&n| n == block_size), "blocks cut every {block_size} bytes");
        assert!((1..=block_size).contains(last), "last block {last} of at most {block_size}");
    }
}

fn default_block_size(format: CompressionFormat) -> usize {
    match format {
        CompressionFormat::HadoopSnappy => HadoopSnappy::DEFAULT_BLOCK_SIZE,
        _ => Snappy::DEFAULT_BLOCK_SIZE,
    }
}

/// Deterministic, realistic-looking JSON lines (xorshift; no randomness crate needed).
fn json_lines(total: usize) -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pages = ["/", "/cart", "/checkout", "/search?q=shoes", "/product/1234", "/login"];
    let mut records = Vec::new();
    let mut size = 0;
    while size < total {
        let r = next();
        let line = format!(
            "{{\"ts\":\"2025-01-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"user_id\":{},\"session\":\"{:016x}\",\
             \"page\":\"{}\",\"status\":{},\"latency_ms\":{},\"bytes\":{}}}\n",
            r % 28 + 1,
            r >> 8 & 0xf,
            r >> 12 & 0x1f,
            r >> 17 & 0x1f,
            r >> 22 & 0x3ff,
            r >> 32 & 0xfffff,
            next(),
            pages[(r >> 40) as usize % pages.len()],
            [200, 200, 200, 301, 404, 500][(r >> 44) as usize % 6],
            r >> 48 & 0x3ff,
            r >> 20 & 0xffff,
        );
        size += line.len();
        records.push(line.into_bytes());
    }
    records
}

#[test]
fn every_format_has_firehoses_extension_and_content_encoding() {
    let expected = [
        (CompressionFormat::Uncompressed, "", None),
        (CompressionFormat::Gzip, ".gz", Some("gzip")),
        (CompressionFormat::Zip, ".zip", Some("zip")),
        (CompressionFormat::Snappy, ".snappy", Some("snappy-java")),
        (CompressionFormat::HadoopSnappy, ".snappy", Some("hadoop-snappy")),
        (CompressionFormat::Zstd, ".zst", Some("zstd")),
    ];
    for (format, extension, encoding) in expected {
        let c = compression_for(format);
        assert_eq!(c.extension(), extension, "{format}");
        assert_eq!(c.extension(), format.extension(), "{format}");
        assert_eq!(c.content_encoding(), encoding, "{format}");
    }
}

#[test]
fn every_format_round_trips_empty_objects_empty_records_and_records_larger_than_a_block() {
    let big = |n: usize| (0..n).map(|i| (i * 31 % 253) as u8).collect::<Vec<u8>>();
    let cases: Vec<Vec<Vec<u8>>> = vec![
        vec![],
        vec![vec![]],
        vec![vec![], vec![], vec![]],
        vec![b"a\n".to_vec(), vec![], b"bc".to_vec()],
        vec![big(Snappy::DEFAULT_BLOCK_SIZE)],
        vec![big(Snappy::DEFAULT_BLOCK_SIZE + 1), vec![], b"tail".to_vec()],
        vec![b"x".to_vec(), big(HadoopSnappy::DEFAULT_BLOCK_SIZE * 2 + 17), b"y".to_vec()],
        vec![big(300_000), big(5), big(HadoopSnappy::DEFAULT_BLOCK_SIZE)],
    ];
    for format in ALL_FORMATS {
        let c = compression_for(format);
        for records in &cases {
            let object = compress(c.as_ref(), records);
            let decoded = decode(format, &object, default_block_size(format));
            assert_eq!(decoded, records.concat(), "{format}, {} records", records.len());
        }
    }
}

#[test]
fn every_format_round_trips_ten_megabytes_of_json_lines_written_record_by_record() {
    let records = json_lines(10 << 20);
    let raw = records.concat();
    for format in ALL_FORMATS {
        let object = compress(compression_for(format).as_ref(), &records);
        if format != CompressionFormat::Uncompressed {
            assert!(object.len() < raw.len() / 2, "{format} compresses JSON lines");
        }
        let decoded = decode(format, &object, default_block_size(format));
        assert!(decoded == raw, "{format} round trip of {} bytes", raw.len());
    }
}

#[test]
fn xerial_objects_start_with_snappy_javas_magic_version_and_compatible_version() {
    let object = compress(&Snappy::default(), &[b"hello".to_vec()]);
    assert_eq!(
        &object[..16],
        &[0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
    );
    // then one block: its compressed length, then raw Snappy of "hello"
    let block = snap::raw::Encoder::new().compress_vec(b"hello").unwrap();
    assert_eq!(be_u32(&object, 16), block.len());
    assert_eq!(&object[20..], &block[..]);
}

#[test]
fn an_empty_xerial_object_is_the_header_alone() {
    assert_eq!(compress(&Snappy::default(), &[]), XERIAL_HEADER);
    assert_eq!(compress(&Snappy::default(), &[vec![], vec![]]), XERIAL_HEADER);
}

#[test]
fn xerial_objects_are_not_the_official_snappy_framing_format() {
    let object = compress(&Snappy::default(), &[b"hello".to_vec()]);
    let mut out = Vec::new();
    assert!(snap::read::FrameDecoder::new(&object[..]).read_to_end(&mut out).is_err());
}

#[test]
fn hadoop_snappy_blocks_are_uncompressed_length_compressed_length_and_raw_snappy() {
    let object = compress(&HadoopSnappy::default(), &[b"hello ".to_vec(), b"world".to_vec()]);
    let block = snap::raw::Encoder::new().compress_vec(b"hello world").unwrap();
    assert_eq!(be_u32(&object, 0), 11);
    assert_eq!(be_u32(&object, 4), block.len());
    assert_eq!(&object[8..], &block[..]);
}

#[test]
fn hadoop_snappy_blocks_default_to_what_hadoops_256_kib_buffer_allows() {
    assert_eq!(HadoopSnappy::DEFAULT_BLOCK_SIZE, 218_422);
    let object = compress(&HadoopSnappy::default(), &[vec![7; 500_000]]);
    assert_eq!(be_u32(&object, 0), 218_422);
    assert_eq!(read_hadoop(&object, 218_422), vec![7; 500_000]);
}

#[test]
fn an_empty_hadoop_snappy_object_is_one_zero_length_block() {
    assert_eq!(compress(&HadoopSnappy::default(), &[]), [0, 0, 0, 0]);
    assert_eq!(compress(&HadoopSnappy::default(), &[vec![]]), [0, 0, 0, 0]);
}

#[test]
fn zip_objects_hold_one_deflated_entry_named_by_a_fresh_random_uuid() {
    let c = compression_for(CompressionFormat::Zip);
    let first = compress(c.as_ref(), &[b"a\n".to_vec()]);
    let second = compress(c.as_ref(), &[b"a\n".to_vec()]);
    assert_eq!(&first[..4], b"PK\x03\x04");
    let (name, data) = unzip_single_entry(&first);
    assert_eq!(data, b"a\n");
    let uuid = uuid::Uuid::parse_str(&name).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(name, uuid.hyphenated().to_string());
    assert_ne!(unzip_single_entry(&second).0, name);
}

#[test]
fn zstd_objects_are_one_frame_with_a_content_checksum() {
    let object = compress(&Zstd { level: 3 }, &[b"hello".to_vec()]);
    assert_eq!(&object[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_ne!(object[4] & 0b100, 0, "Content_Checksum_flag");
    // a corrupted payload is caught by the checksum
    let mut corrupt = compress(&Zstd { level: 3 }, &[vec![b'z'; 1000]]);
    let n = corrupt.len();
    corrupt[n - 1] ^= 0xff;
    assert!(zstd::stream::decode_all(&corrupt[..]).is_err());
}

fn records_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let record = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'\n'), any::<u8>()], 0..5000),
        1 => Just(Vec::new()),
    ];
    proptest::collection::vec(record, 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_record_sequence_round_trips_through_every_format(
        records in records_strategy(),
        block_size in 16usize..4096,
    ) {
        let raw = records.concat();
        for format in ALL_FORMATS {
            let object = compress(compression_for(format).as_ref(), &records);
            prop_assert_eq!(decode(format, &object, default_block_size(format)), raw.clone());
        }
        // small blocks, so that records straddle many block boundaries
        let object = compress(&Snappy::with_block_size(block_size), &records);
        prop_assert_eq!(read_xerial(&object, block_size), raw.clone());
        let object = compress(&HadoopSnappy::with_block_size(block_size), &records);
        prop_assert_eq!(read_hadoop(&object, block_size), raw);
    }
}
