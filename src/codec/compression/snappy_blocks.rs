//! The part the two Snappy container formats share: cut the object into fixed-size blocks
//! of input, compress each with raw Snappy (`snap::raw`, the block format of
//! <https://github.com/google/snappy/blob/main/format_description.txt>) and put a small
//! big-endian preamble in front of it. What the preamble holds, and what comes before the
//! first block, is each format's [`BlockFraming`].
//!
//! Blocks are cut at fixed offsets of the object (every `block_size` bytes; only the last
//! block may be shorter), whatever the sizes of the writes, so one object always compresses
//! to the same bytes. Memory: the compressed output, one partial block of input and one
//! block-sized scratch buffer.

use std::io::{self, Write};

use super::CompressWriter;

/// Largest block a writer accepts. Both formats store lengths as 32-bit signed integers;
/// readers allocate a block at a time, so blocks stay far below that.
pub(super) const MAX_BLOCK_SIZE: usize = 4 << 20;

/// What one Snappy container format writes around the raw Snappy blocks.
pub(super) trait BlockFraming: Send + 'static {
    /// Bytes at the very start of every object, before any block.
    const HEADER: &'static [u8];
    /// Bytes after the header when the object has no bytes at all (no block is written).
    const EMPTY_BODY: &'static [u8];
    /// Bytes in front of each block's compressed data.
    const PREAMBLE_LEN: usize;
    /// Fills the `PREAMBLE_LEN` bytes in front of one block.
    fn preamble(preamble: &mut [u8], uncompressed_len: u32, compressed_len: u32);
}

/// Streaming writer for a [`BlockFraming`].
pub(super) struct BlockWriter<F: BlockFraming> {
    encoder: snap::raw::Encoder,
    block_size: usize,
    /// Input not yet compressed; always shorter than `block_size` between calls.
    pending: Vec<u8>,
    /// Where a block is compressed before it is copied behind its preamble.
    scratch: Vec<u8>,
    out: Vec<u8>,
    wrote_block: bool,
    framing: std::marker::PhantomData<F>,
}

impl<F: BlockFraming> BlockWriter<F> {
    pub(super) fn new(block_size: usize) -> Self {
        let block_size = block_size.clamp(1, MAX_BLOCK_SIZE);
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(F::HEADER);
        BlockWriter {
            encoder: snap::raw::Encoder::new(),
            block_size,
            pending: Vec::with_capacity(block_size),
            scratch: vec![0; snap::raw::max_compress_len(block_size)],
            out,
            wrote_block: false,
            framing: std::marker::PhantomData,
        }
    }

    #[cfg(test)]
    pub(super) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn compress_pending(&mut self) -> io::Result<()> {
        let block = std::mem::take(&mut self.pending);
        let result = self.compress_block(&block);
        self.pending = block;
        self.pending.clear();
        result
    }

    fn compress_block(&mut self, block: &[u8]) -> io::Result<()> {
        let compressed_len =
            self.encoder.compress(block, &mut self.scratch).map_err(io::Error::other)?;
        let start = self.out.len();
        self.out.resize(start + F::PREAMBLE_LEN, 0);
        // Both lengths are at most `max_compress_len(MAX_BLOCK_SIZE)`, far below `u32::MAX`.
        F::preamble(&mut self.out[start..], block.len() as u32, compressed_len as u32);
        self.out.extend_from_slice(&self.scratch[..compressed_len]);
        self.wrote_block = true;
        Ok(())
    }
}

impl<F: BlockFraming> Write for BlockWriter<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if !self.pending.is_empty() {
            let take = (self.block_size - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.pending.len() < self.block_size {
                return Ok(());
            }
            self.compress_pending()?;
        }
        // Whole blocks straight from the caller's buffer, without a copy into `pending`.
        while buf.len() >= self.block_size {
            let (block, rest) = buf.split_at(self.block_size);
            self.compress_block(block)?;
            buf = rest;
        }
        self.pending.extend_from_slice(buf);
        Ok(())
    }

    /// Does not cut a block: blocks stay at fixed offsets.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: BlockFraming> CompressWriter for BlockWriter<F> {
    fn finish(mut self: Box<Self>) -> io::Result<Vec<u8>> {
        if !self.pending.is_empty() {
            self.compress_pending()?;
        }
        if !self.wrote_block {
            self.out.extend_from_slice(F::EMPTY_BODY);
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct LengthsOnly;

    impl BlockFraming for LengthsOnly {
        const HEADER: &'static [u8] = b"H";
        const EMPTY_BODY: &'static [u8] = b"E";
        const PREAMBLE_LEN: usize = 8;
        fn preamble(preamble: &mut [u8], uncompressed_len: u32, compressed_len: u32) {
            preamble[..4].copy_from_slice(&uncompressed_len.to_be_bytes());
            preamble[4..8].copy_from_slice(&compressed_len.to_be_bytes());
        }
    }

    fn block_lengths(out: &[u8]) -> Vec<usize> {
        let mut rest = &out[1..];
        let mut lens = Vec::new();
        while !rest.is_empty() {
            let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let c = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
            lens.push(n);
            rest = &rest[8 + c..];
        }
        lens
    }

    #[test]
    fn the_writer_never_holds_more_than_one_block_of_input() {
        let mut w = BlockWriter::<LengthsOnly>::new(1000);
        for i in 0..5000usize {
            w.write_all(&vec![b'x'; i % 2500]).unwrap();
            assert!(w.pending_len() < 1000);
        }
    }

    #[test]
    fn blocks_are_cut_every_block_size_bytes_whatever_the_writes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut one = Box::new(BlockWriter::<LengthsOnly>::new(1024));
        one.write_all(&data).unwrap();
        let one = one.finish().unwrap();
        let mut bytewise = Box::new(BlockWriter::<LengthsOnly>::new(1024));
        for b in &data {
            bytewise.write_all(std::slice::from_ref(b)).unwrap();
        }
        let bytewise = bytewise.finish().unwrap();
        assert_eq!(one, bytewise);
        let mut expected = vec![1024; 9];
        expected.push(10_000 - 9 * 1024);
        assert_eq!(block_lengths(&one), expected);
    }

    #[test]
    fn an_empty_object_is_the_header_and_the_empty_body() {
        let mut w = Box::new(BlockWriter::<LengthsOnly>::new(1024));
        w.write_all(b"").unwrap();
        assert_eq!(w.finish().unwrap(), b"HE");
    }

    #[test]
    fn a_zero_block_size_is_taken_as_one_byte() {
        let mut w = Box::new(BlockWriter::<LengthsOnly>::new(0));
        w.write_all(b"abc").unwrap();
        assert_eq!(block_lengths(&w.finish().unwrap()), vec![1, 1, 1]);
    }
}
