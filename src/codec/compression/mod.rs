//! `CompressionFormat`: how the concatenated records of one object are compressed.
//!
//! Compression is streaming: the delivery worker pushes each record into a [`CompressWriter`]
//! as it reads it from the log, so memory holds compressed bytes (plus at most one block of
//! input for the block formats), not the raw batch.
//!
//! | format | type | extension | `Content-Encoding` |
//! |---|---|---|---|
//! | `UNCOMPRESSED` | [`Uncompressed`] | none | none |
//! | `GZIP` | [`Gzip`] | `.gz` | `gzip` |
//! | `ZIP` | [`Zip`] | `.zip` | `zip` |
//! | `Snappy` | [`Snappy`] (xerial snappy-java stream) | `.snappy` | `snappy-java` |
//! | `HADOOP_SNAPPY` | [`HadoopSnappy`] (Hadoop block stream) | `.snappy` | `hadoop-snappy` |
//! | `ZSTD` (Hydrant only) | [`Zstd`] | `.zst` | `zstd` |

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

mod gzip;
mod hadoop_snappy;
mod snappy_blocks;
mod xerial_snappy;
mod zip_archive;
mod zstd_stream;

#[cfg(test)]
mod tests;

pub use gzip::Gzip;
pub use hadoop_snappy::HadoopSnappy;
pub use xerial_snappy::Snappy;
pub use zip_archive::Zip;
pub use zstd_stream::Zstd;

/// Compression of delivered objects (`CompressionFormat`). The names are case-sensitive, as
/// in Firehose: `Snappy` is valid, `SNAPPY` is not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompressionFormat {
    /// No compression; no extension.
    #[default]
    #[serde(rename = "UNCOMPRESSED")]
    Uncompressed,
    /// One gzip stream over the whole object; `.gz`.
    #[serde(rename = "GZIP")]
    Gzip,
    /// A zip archive with one entry; `.zip`.
    #[serde(rename = "ZIP")]
    Zip,
    /// The snappy-java stream format; `.snappy`.
    #[serde(rename = "Snappy")]
    Snappy,
    /// Hadoop's block-framed Snappy, readable by Spark/Hadoop `SnappyCodec`; `.snappy`.
    #[serde(rename = "HADOOP_SNAPPY")]
    HadoopSnappy,
    /// Zstandard (a Hydrant extension, not in Firehose); `.zst`.
    #[serde(rename = "ZSTD")]
    Zstd,
}

impl CompressionFormat {
    /// The object-name extension Firehose uses for this format (`""` for UNCOMPRESSED).
    pub fn extension(&self) -> &'static str {
        match self {
            CompressionFormat::Uncompressed => "",
            CompressionFormat::Gzip => ".gz",
            CompressionFormat::Zip => ".zip",
            CompressionFormat::Snappy => ".snappy",
            CompressionFormat::HadoopSnappy => ".snappy",
            CompressionFormat::Zstd => ".zst",
        }
    }

    /// The spelling used in configs and on the wire, e.g. `HADOOP_SNAPPY`.
    pub fn as_firehose_str(&self) -> &'static str {
        match self {
            CompressionFormat::Uncompressed => "UNCOMPRESSED",
            CompressionFormat::Gzip => "GZIP",
            CompressionFormat::Zip => "ZIP",
            CompressionFormat::Snappy => "Snappy",
            CompressionFormat::HadoopSnappy => "HADOOP_SNAPPY",
            CompressionFormat::Zstd => "ZSTD",
        }
    }
}

impl fmt::Display for CompressionFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_firehose_str())
    }
}

/// One compression format: its writer, key extension and `Content-Encoding`.
pub trait Compression: Send + Sync + std::fmt::Debug {
    /// Starts a new object.
    fn writer(&self) -> Box<dyn CompressWriter>;
    /// Default key extension (Firehose's, e.g. `.gz`); `FileExtension` may override it.
    fn extension(&self) -> &'static str;
    /// `Content-Encoding` stored with the object, as Firehose sets it.
    fn content_encoding(&self) -> Option<&'static str>;
}

/// Accepts the object's bytes and yields the compressed object.
pub trait CompressWriter: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>>;
}

/// Returns the implementation of a configured format, with Firehose's settings (deflate level
/// 6 for GZIP and ZIP, snappy-java's 32 KiB blocks, Hadoop's 256 KiB buffer) and zstd level 3.
pub fn compression_for(format: CompressionFormat) -> Box<dyn Compression> {
    match format {
        CompressionFormat::Uncompressed => Box::new(Uncompressed),
        CompressionFormat::Gzip => Box::new(Gzip { level: 6 }),
        CompressionFormat::Zip => Box::new(Zip { level: 6 }),
        CompressionFormat::Snappy => Box::new(Snappy::default()),
        CompressionFormat::HadoopSnappy => Box::new(HadoopSnappy::default()),
        CompressionFormat::Zstd => Box::new(Zstd { level: 3 }),
    }
}

/// Records concatenated as they are.
#[derive(Debug)]
pub struct Uncompressed;

impl Compression for Uncompressed {
    fn writer(&self) -> Box<dyn CompressWriter> {
        Box::new(Plain(Vec::new()))
    }
    fn extension(&self) -> &'static str {
        ""
    }
    fn content_encoding(&self) -> Option<&'static str> {
        None
    }
}

struct Plain(Vec<u8>);

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl CompressWriter for Plain {
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        Ok(self.0)
    }
}
