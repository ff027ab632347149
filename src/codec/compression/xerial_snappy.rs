//! `Snappy`: the xerial snappy-java stream format.
//!
//! This is the format of `org.xerial.snappy.SnappyOutputStream` (snappy-java, the library
//! Firehose's Java side uses), *not* Google's official Snappy framing format
//! (`ff 06 00 00 73 4e 61 50 70 59`, `.sz`, what most "framed" readers expect). Firehose's
//! objects with `CompressionFormat: Snappy` are in this format (FIREHOSE.md §3.5).
//!
//! Byte by byte (all integers are 4-byte big-endian, Java's `DataOutputStream.writeInt`):
//!
//! ```text
//! offset  bytes                     meaning
//! 0       82 53 4e 41 50 50 59 00   magic: 0x82 (-126 as a Java byte), "SNAPPY", 0x00
//! 8       00 00 00 01               version            (SnappyCodec.DEFAULT_VERSION = 1)
//! 12      00 00 00 01               compatible version (SnappyCodec.MINIMUM_COMPATIBLE_VERSION = 1)
//! 16      C1 (4 bytes)              compressed length of block 1
//! 20      C1 bytes                  block 1: raw Snappy (varint uncompressed length + elements)
//!         C2 (4 bytes), C2 bytes    block 2, ... until the end of the object
//! ```
//!
//! Each block is the raw Snappy compression of the next `block_size` bytes of input
//! (snappy-java's `SnappyOutputStream.DEFAULT_BLOCK_SIZE` = 32 KiB); only the last block may
//! be shorter. The uncompressed length is not stored in the framing: it is the varint at the
//! start of the raw Snappy block. An object with no bytes is the 16-byte header alone.
//! Readers (`SnappyInputStream`, kafka-python's `snappy_decode`) take the header, then loop
//! over (length, block) pairs to the end; `SnappyInputStream` also accepts another header
//! where a length would be (concatenated streams), which a length can never be mistaken for
//! because the magic's first 4 bytes are negative as a signed int.
//!
//! Sources: snappy-java `SnappyCodec.java` (`MAGIC_HEADER`, `HEADER_SIZE = MAGIC_LEN + 8`,
//! the two version ints written with `DataOutputStream.writeInt`) and `SnappyOutputStream.java`
//! (`DEFAULT_BLOCK_SIZE = 32 * 1024`; `dump()` writes `writeInt(compressedSize)` then the
//! compressed bytes), <https://github.com/xerial/snappy-java>; kafka-python's
//! `kafka/codec.py` documents the same layout (`_XERIAL_V1_HEADER`).

use super::snappy_blocks::{BlockFraming, BlockWriter, MAX_BLOCK_SIZE};
use super::{CompressWriter, Compression};

/// The 16 bytes every xerial stream starts with: magic, version 1, compatible version 1.
pub const XERIAL_HEADER: [u8; 16] =
    [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0x00, 0, 0, 0, 1, 0, 0, 0, 1];

/// The xerial snappy-java stream format; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Snappy {
    block_size: usize,
}

impl Snappy {
    /// snappy-java's `SnappyOutputStream.DEFAULT_BLOCK_SIZE`.
    pub const DEFAULT_BLOCK_SIZE: usize = 32 * 1024;

    /// Blocks of `block_size` input bytes, clamped to 1 byte ..= 4 MiB.
    pub fn with_block_size(block_size: usize) -> Self {
        Snappy { block_size: block_size.clamp(1, MAX_BLOCK_SIZE) }
    }
}

impl Default for Snappy {
    fn default() -> Self {
        Snappy { block_size: Self::DEFAULT_BLOCK_SIZE }
    }
}

impl Compression for Snappy {
    fn writer(&self) -> Box<dyn CompressWriter> {
        Box::new(BlockWriter::<Xerial>::new(self.block_size))
    }
    fn extension(&self) -> &'static str {
        ".snappy"
    }
    fn content_encoding(&self) -> Option<&'static str> {
        Some("snappy-java")
    }
}

struct Xerial;

impl BlockFraming for Xerial {
    const HEADER: &'static [u8] = &XERIAL_HEADER;
    const EMPTY_BODY: &'static [u8] = b"";
    const PREAMBLE_LEN: usize = 4;
    fn preamble(preamble: &mut [u8], _uncompressed_len: u32, compressed_len: u32) {
        preamble.copy_from_slice(&compressed_len.to_be_bytes());
    }
}
