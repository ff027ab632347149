//! Frame codec: `u32 kind_and_len | u32 crc32c | u64 seq | i64 time_ms | payload`, all
//! little-endian. The CRC32C covers every byte of the frame but the checksum field itself.
//!
//! The top four bits of the first field say what the frame is ([`RECORD`], 0: a record, whose
//! time is its arrival; [`SEAL`], 1: a seal, whose time is its watermark and whose one-byte
//! payload its [`SealKind`]), the low 28 bits the payload length. Frames written before seals
//! existed are records (their top bits are 0). See docs/log-format.md.

use crate::log::SealKind;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 24;

/// Largest payload a frame may carry (16 MiB). Larger appends are rejected, and a larger
/// length field on disk is treated as damage ("implausible length").
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;

/// One committed record, as a reader returns it (the log's [`Record`](crate::log::Record):
/// sequence numbers are per shard and consecutive, and every record of one group commit shares
/// its arrival time).
pub use crate::log::Record;

/// Frame kind of a record.
pub const RECORD: u8 = 0;
/// Frame kind of a seal (segments of version 2 and later only).
pub const SEAL: u8 = 1;
/// Payload bytes of a seal frame: its [`SealKind`].
pub const SEAL_PAYLOAD_LEN: usize = 1;
const KIND_SHIFT: u32 = 28;
const LEN_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// [`RECORD`] or [`SEAL`]; anything else is damage.
    pub kind: u8,
    pub payload_len: u32,
    pub crc: u32,
    pub seq: u64,
    /// A record's arrival time; a seal's watermark.
    pub arrival_ms: i64,
}

impl FrameHeader {
    /// Parses the 24 header bytes (no validation).
    pub fn parse(b: &[u8; HEADER_LEN]) -> FrameHeader {
        let kind_and_len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        FrameHeader {
            kind: (kind_and_len >> KIND_SHIFT) as u8,
            payload_len: kind_and_len & LEN_MASK,
            crc: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            seq: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
            arrival_ms: i64::from_le_bytes([
                b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23],
            ]),
        }
    }

    /// Whether the kind and length fields can belong to a real frame: a record of at most
    /// [`MAX_PAYLOAD_LEN`] bytes or a seal of [`SEAL_PAYLOAD_LEN`].
    pub fn plausible_len(&self) -> bool {
        match self.kind {
            RECORD => self.payload_len as usize <= MAX_PAYLOAD_LEN,
            SEAL => self.payload_len as usize == SEAL_PAYLOAD_LEN,
            _ => false,
        }
    }

    /// Why [`plausible_len`](Self::plausible_len) is false, for an error message.
    pub fn implausible_reason(&self) -> String {
        match self.kind {
            RECORD | SEAL => format!("implausible payload length {}", self.payload_len),
            kind => format!("unknown frame kind {kind}"),
        }
    }

    /// Total frame length (header + payload).
    pub fn frame_len(&self) -> u64 {
        frame_len(self.payload_len as usize)
    }

    /// Whether `payload` matches the stored checksum.
    pub fn verify(&self, payload: &[u8]) -> bool {
        payload.len() == self.payload_len as usize
            && checksum(self.kind_and_len(), self.seq, self.arrival_ms, payload) == self.crc
    }

    /// The first field as stored.
    fn kind_and_len(&self) -> u32 {
        (self.kind as u32) << KIND_SHIFT | self.payload_len
    }
}

/// Total bytes of a frame carrying `payload_len` bytes.
pub fn frame_len(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

/// CRC32C over `kind_and_len | seq | arrival_ms | payload` (the frame without its checksum).
pub fn checksum(kind_and_len: u32, seq: u64, arrival_ms: i64, payload: &[u8]) -> u32 {
    let mut fixed = [0u8; 20];
    fixed[0..4].copy_from_slice(&kind_and_len.to_le_bytes());
    fixed[4..12].copy_from_slice(&seq.to_le_bytes());
    fixed[12..20].copy_from_slice(&arrival_ms.to_le_bytes());
    let crc = crc32c::crc32c(&fixed);
    crc32c::crc32c_append(crc, payload)
}

/// Appends one encoded record frame to `buf`. The caller guarantees
/// `payload.len() <= MAX_PAYLOAD_LEN`.
pub fn encode_frame(buf: &mut Vec<u8>, seq: u64, arrival_ms: i64, payload: &[u8]) {
    encode_frame_of_kind(buf, RECORD, seq, arrival_ms, payload)
}

/// Appends one encoded seal frame to `buf`: a cut at `seq` with its watermark.
pub fn encode_seal(buf: &mut Vec<u8>, seq: u64, watermark_ms: i64, kind: SealKind) {
    let payload = match kind {
        SealKind::Window => 0u8,
        SealKind::Drain => 1u8,
    };
    encode_frame_of_kind(buf, SEAL, seq, watermark_ms, &[payload])
}

/// The kind of a seal frame's payload, or `None` when it names none.
pub fn seal_kind(payload: &[u8]) -> Option<SealKind> {
    match payload {
        [0] => Some(SealKind::Window),
        [1] => Some(SealKind::Drain),
        _ => None,
    }
}

/// Appends one encoded frame of `kind` to `buf`. The caller guarantees that the kind and the
/// length are plausible ([`FrameHeader::plausible_len`]).
pub fn encode_frame_of_kind(buf: &mut Vec<u8>, kind: u8, seq: u64, time_ms: i64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN && kind <= SEAL);
    let kind_and_len = (kind as u32) << KIND_SHIFT | payload.len() as u32;
    let crc = checksum(kind_and_len, seq, time_ms, payload);
    buf.extend_from_slice(&kind_and_len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&time_ms.to_le_bytes());
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
    fn a_seal_frame_decodes_to_its_position_watermark_and_kind() {
        for kind in [SealKind::Window, SealKind::Drain] {
            let mut buf = Vec::new();
            encode_seal(&mut buf, 9, 1_234, kind);
            assert_eq!(buf.len() as u64, frame_len(SEAL_PAYLOAD_LEN));
            let Decoded::Frame { header, payload } = decode_frame(&buf) else { panic!() };
            assert_eq!((header.kind, header.seq, header.arrival_ms), (SEAL, 9, 1_234));
            assert_eq!(seal_kind(&buf[payload]), Some(kind));
        }
    }

    #[test]
    fn a_frame_of_an_unknown_kind_or_a_seal_of_another_length_is_implausible() {
        let mut buf = Vec::new();
        encode_frame_of_kind(&mut buf, SEAL, 1, 2, b"ab");
        assert!(matches!(decode_frame(&buf), Decoded::ImplausibleLength(_)));
        let mut buf = Vec::new();
        encode_frame(&mut buf, 1, 2, b"a");
        buf[3] |= 0x20; // kind 2
        let Decoded::ImplausibleLength(header) = decode_frame(&buf) else { panic!() };
        assert_eq!(header.implausible_reason(), "unknown frame kind 2");
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
