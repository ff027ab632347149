//! `CompressionFormat`: how the concatenated records of one object are compressed.
//!
//! Compression is streaming: the delivery worker pushes each record into a [`CompressWriter`]
//! as it reads it from the log, so memory holds compressed bytes, not the raw batch.

use std::io::{self, Write};

use crate::config::CompressionFormat;

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

/// Returns the implementation of a configured format. Formats not built yet are rejected by
/// config validation, so reaching the fallback here is a bug.
pub fn compression_for(format: CompressionFormat) -> Box<dyn Compression> {
    match format {
        CompressionFormat::Uncompressed => Box::new(Uncompressed),
        CompressionFormat::Gzip => Box::new(Gzip { level: 6 }),
        other => unreachable!("config validation rejects {other:?} until it is implemented"),
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

/// One gzip member for the whole object (what Firehose writes), through flate2's zlib-rs
/// backend: about twice miniz_oxide's speed at level 6 on this class of machine.
#[derive(Debug)]
pub struct Gzip {
    pub level: u32,
}

impl Compression for Gzip {
    fn writer(&self) -> Box<dyn CompressWriter> {
        let encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(1 << 20),
            flate2::Compression::new(self.level),
        );
        Box::new(GzipWriter(encoder))
    }
    fn extension(&self) -> &'static str {
        ".gz"
    }
    fn content_encoding(&self) -> Option<&'static str> {
        Some("gzip")
    }
}

struct GzipWriter(flate2::write::GzEncoder<Vec<u8>>);

impl Write for GzipWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl CompressWriter for GzipWriter {
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(c: &dyn Compression, parts: &[&[u8]]) -> Vec<u8> {
        let mut w = c.writer();
        for p in parts {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn uncompressed_objects_are_the_records_concatenated() {
        let out = compress(&Uncompressed, &[b"a\n", b"", b"bc"]);
        assert_eq!(out, b"a\nbc");
        assert_eq!(Uncompressed.extension(), "");
    }

    #[test]
    fn gzip_objects_are_one_member_that_decodes_to_the_records() {
        let out = compress(&Gzip { level: 6 }, &[b"hello ", b"world\n"]);
        assert_eq!(&out[..2], &[0x1f, 0x8b]);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_string(&mut decoded).unwrap();
        assert_eq!(decoded, "hello world\n");
        // exactly one member: a multi-member reader sees nothing after the first
        let mut multi = flate2::read::MultiGzDecoder::new(&out[..]);
        let mut all = String::new();
        multi.read_to_string(&mut all).unwrap();
        assert_eq!(all, decoded);
    }
}
