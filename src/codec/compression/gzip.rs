//! `GZIP`: one gzip member for the whole object.

use std::io::{self, Write};

use super::{CompressWriter, Compression};

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

    #[test]
    fn gzip_objects_are_one_member_that_decodes_to_the_records() {
        let mut w = Gzip { level: 6 }.writer();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world\n").unwrap();
        let out = w.finish().unwrap();
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
