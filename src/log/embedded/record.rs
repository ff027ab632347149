//! Frame codec: `u32 payload_len | u32 crc32c | u64 seq | i64 arrival_ms | payload`, all
//! little-endian. The CRC32C covers every byte of the frame but the checksum field itself.

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 24;

/// Largest payload a frame may carry (16 MiB). Larger appends are rejected, and a larger
/// length field on disk is treated as damage ("implausible length").
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;

/// One committed record, as a reader returns it (the log's [`Record`](crate::log::Record):
/// sequence numbers are per shard and consecutive, and every record of one group commit shares
/// its arrival time).
pub use crate::log::Record;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_len: u32,
    pub crc: u32,
    pub seq: u64,
    pub arrival_ms: i64,
}

impl FrameHeader {
    /// Parses the 24 header bytes (no validation).
    pub fn parse(b: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            payload_len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            crc: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            seq: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
            arrival_ms: i64::from_le_bytes([
                b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23],
            ]),
        }
    }

    /// Whether the length field can belong to a real frame.
    pub fn plausible_len(&self) -> bool {
        self.payload_len as usize <= MAX_PAYLOAD_LEN
    }

    /// Total frame length (header + payload).
    pub fn frame_len(&self) -> u64 {
        frame_len(self.payload_len as usize)
    }

    /// Whether `payload` matches the stored checksum.
    pub fn verify(&self, payload: &[u8]) -> bool {
        payload.len() == self.payload_len as usize
            && checksum(self.payload_len, self.seq, self.arrival_ms, payload) == self.crc
    }
}

/// Total bytes of a frame carrying `payload_len` bytes.
pub fn frame_len(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

/// CRC32C over `payload_len | seq | arrival_ms | payload` (the frame without its checksum).
pub fn checksum(payload_len: u32, seq: u64, arrival_ms: i64, payload: &[u8]) -> u32 {
    let mut fixed = [0u8; 20];
    fixed[0..4].copy_from_slice(&payload_len.to_le_bytes());
    fixed[4..12].copy_from_slice(&seq.to_le_bytes());
    fixed[12..20].copy_from_slice(&arrival_ms.to_le_bytes());
    let crc = crc32c::crc32c(&fixed);
    crc32c::crc32c_append(crc, payload)
}

/// Appends one encoded frame to `buf`. The caller guarantees
/// `payload.len() <= MAX_PAYLOAD_LEN`.
pub fn encode_frame(buf: &mut Vec<u8>, seq: u64, arrival_ms: i64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    let len = payload.len() as u32;
    let crc = checksum(len, seq, arrival_ms, payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&arrival_ms.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The result of decoding the bytes at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame with a correct checksum; `payload` is its range in the buffer.
    Frame { header: FrameHeader, payload: std::ops::Range<usize> },
    /// The header or the payload extends past the end of the buffer.
    Incomplete,
    /// The length field is larger than [`MAX_PAYLOAD_LEN`].
    ImplausibleLength(FrameHeader),
    /// The frame is complete but its checksum does not match.
    BadChecksum(FrameHeader),
}

/// Decodes the frame at the start of `buf`.
pub fn decode_frame(buf: &[u8]) -> Decoded {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Decoded::Incomplete;
    };
    let header = FrameHeader::parse(head);
    if !header.plausible_len() {
        return Decoded::ImplausibleLength(header);
    }
    let end = HEADER_LEN + header.payload_len as usize;
    if buf.len() < end {
        return Decoded::Incomplete;
    }
    if !header.verify(&buf[HEADER_LEN..end]) {
        return Decoded::BadChecksum(header);
    }
    Decoded::Frame { header, payload: HEADER_LEN..end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_frame_decodes_to_the_same_fields() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 7, -3, b"hello");
        assert_eq!(buf.len() as u64, frame_len(5));
        match decode_frame(&buf) {
            Decoded::Frame { header, payload } => {
                assert_eq!(header.seq, 7);
                assert_eq!(header.arrival_ms, -3);
                assert_eq!(&buf[payload], b"hello");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_checksum_covers_every_byte_but_itself() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 1, 2, b"abc");
        for i in (0..buf.len()).filter(|i| !(4..8).contains(i)) {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert!(
                !matches!(decode_frame(&bad), Decoded::Frame { .. }),
                "flipping byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_truncated_frame_is_incomplete() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 1, 2, b"abcdef");
        for cut in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
    }
}
