//! `ZSTD` (a Hydrant extension; Firehose has no zstd): one Zstandard frame per object, with
//! a content checksum (as the `zstd` command line writes by default), through the `zstd`
//! crate's streaming encoder.

use std::io::{self, Write};

use super::{CompressWriter, Compression};

/// One zstd frame per object.
#[derive(Debug)]
pub struct Zstd {
    /// zstd level (1..=22; 3 is zstd's default).
    pub level: i32,
}

impl Compression for Zstd {
    fn writer(&self) -> Box<dyn CompressWriter> {
        let encoder = zstd::stream::write::Encoder::new(Vec::with_capacity(1 << 20), self.level)
            .and_then(|mut encoder| {
                encoder.include_checksum(true)?;
                Ok(encoder)
            });
        Box::new(ZstdWriter(encoder.map_err(|e| e.to_string())))
    }
    fn extension(&self) -> &'static str {
        ".zst"
    }
    fn content_encoding(&self) -> Option<&'static str> {
        Some("zstd")
    }
}

/// `Err` when the encoder could not be set up; reported by the first write or `finish`.
struct ZstdWriter(Result<zstd::stream::write::Encoder<'static, Vec<u8>>, String>);

impl ZstdWriter {
    fn encoder(&mut self) -> io::Result<&mut zstd::stream::write::Encoder<'static, Vec<u8>>> {
        self.0.as_mut().map_err(|e| io::Error::other(format!("zstd encoder: {e}")))
    }
}

impl Write for ZstdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.encoder()?.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.encoder()?.flush()
    }
}

impl CompressWriter for ZstdWriter {
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        self.0.map_err(|e| io::Error::other(format!("zstd encoder: {e}")))?.finish()
    }
}
