//! `HADOOP_SNAPPY`: Snappy in Hadoop's block stream, as `org.apache.hadoop.io.compress.
//! SnappyCodec` writes and reads it (Hadoop, Spark, Hive, Athena/Presto's `.snappy` text).
//!
//! Byte by byte (all integers are 4-byte big-endian, `BlockCompressorStream.rawWriteInt`):
//!
//! ```text
//! offset  bytes        meaning
//! 0       N1 (4)       uncompressed length of block 1
//! 4       C1 (4)       compressed length of block 1's (only) chunk
//! 8       C1 bytes     raw Snappy compression of the N1 bytes
//!         N2, C2, ...  block 2, ... until the end of the object; no header, no trailer
//! ```
//!
//! Hadoop's general form lets one block (N) be followed by several (C, bytes) chunks whose
//! uncompressed sizes add up to N; this writer always writes one chunk per block, which every
//! reader handles (python-snappy's `HadoopStreamDecompressor` handles *only* that).
//!
//! Block size: `SnappyCodec.createOutputStream` makes a `BlockCompressorStream` with
//! `bufferSize = io.compression.codec.snappy.buffersize` (default 256 KiB) and
//! `compressionOverhead = bufferSize / 6 + 32`; a block holds at most
//! `bufferSize - compressionOverhead` = 262144 - 43722 = 218422 input bytes, which keeps
//! every compressed chunk under the 256 KiB decompressor buffer of Hadoop's reader. Blocks
//! are cut every 218422 bytes of input; only the last may be shorter.
//!
//! An object with no bytes is `00 00 00 00` (one block of length 0), which is what
//! `BlockCompressorStream.finish()` writes when nothing was written, and which Hadoop's
//! `BlockDecompressorStream` reads as the end of the stream.
//!
//! Sources: Apache Hadoop `hadoop-common` `io/compress/BlockCompressorStream.java`
//! (`write`, `finish`, `compress`, `rawWriteInt`), `io/compress/SnappyCodec.java` and
//! `CommonConfigurationKeys.IO_COMPRESSION_CODEC_SNAPPY_BUFFERSIZE_DEFAULT` (256 * 1024),
//! <https://github.com/apache/hadoop>.

use super::snappy_blocks::{BlockFraming, BlockWriter, MAX_BLOCK_SIZE};
use super::{CompressWriter, Compression};

/// Hadoop's block stream over raw Snappy; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct HadoopSnappy {
    block_size: usize,
}

impl HadoopSnappy {
    /// Hadoop's default `io.compression.codec.snappy.buffersize`.
    pub const HADOOP_BUFFER_SIZE: usize = 256 * 1024;
    /// `bufferSize - (bufferSize / 6 + 32)` for the default buffer: 218422 bytes.
    pub const DEFAULT_BLOCK_SIZE: usize =
        Self::HADOOP_BUFFER_SIZE - (Self::HADOOP_BUFFER_SIZE / 6 + 32);

    /// Blocks of `block_size` input bytes, clamped to 1 byte ..= 4 MiB. Hadoop's own reader
    /// fails on blocks larger than its buffer (256 KiB by default).
    pub fn with_block_size(block_size: usize) -> Self {
        HadoopSnappy { block_size: block_size.clamp(1, MAX_BLOCK_SIZE) }
    }
}

impl Default for HadoopSnappy {
    fn default() -> Self {
        HadoopSnappy { block_size: Self::DEFAULT_BLOCK_SIZE }
    }
}

impl Compression for HadoopSnappy {
    fn writer(&self) -> Box<dyn CompressWriter> {
        Box::new(BlockWriter::<HadoopBlocks>::new(self.block_size))
    }
    fn extension(&self) -> &'static str {
        ".snappy"
    }
    fn content_encoding(&self) -> Option<&'static str> {
        Some("hadoop-snappy")
    }
}

struct HadoopBlocks;

impl BlockFraming for HadoopBlocks {
    const HEADER: &'static [u8] = b"";
    const EMPTY_BODY: &'static [u8] = &[0, 0, 0, 0];
    const PREAMBLE_LEN: usize = 8;
    fn preamble(preamble: &mut [u8], uncompressed_len: u32, compressed_len: u32) {
        preamble[..4].copy_from_slice(&uncompressed_len.to_be_bytes());
        preamble[4..8].copy_from_slice(&compressed_len.to_be_bytes());
    }
}
