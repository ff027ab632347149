//! Segment files (`{first_seq:020}.seg`): naming, the 16-byte header, and the scan that
//! validates sealed segments and recovers the active one. See docs/log-format.md.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::checkpoint::sync_dir;
use super::error::OpenError;
use super::record::{self, Decoded, FrameHeader, HEADER_LEN};

/// First 8 bytes of every segment this version writes: format version 2, whose segments may
/// hold seal frames.
pub const MAGIC: &[u8; 8] = b"HYDSEG02";
/// First 8 bytes of a segment written before seals existed (version 1: records only). Read as
/// it is; the writer never adds a seal to one (it starts a new segment first).
pub const MAGIC_V1: &[u8; 8] = b"HYDSEG01";
/// The format version of [`MAGIC`].
pub const VERSION: u8 = 2;
/// Bytes of the segment header (magic + base sequence number).
pub const SEGMENT_HEADER_LEN: u64 = 16;
const SUFFIX: &str = ".seg";
const SCAN_BUFFER: usize = 1 << 20;

/// One segment file of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Sequence number of the segment's first record.
    pub base: u64,
    pub path: PathBuf,
    /// File length in bytes (for the active segment: up to the last committed frame).
    pub len: u64,
    /// Format version of its header: 1 (records only) or 2 (records and seals).
    pub version: u8,
}

/// `{base:020}.seg`
pub fn file_name(base: u64) -> String {
    format!("{base:020}{SUFFIX}")
}

/// The base of a segment file name, if `name` is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The 16-byte header of a segment starting at `base`, in the current [`VERSION`].
pub fn encode_header(base: u64) -> [u8; 16] {
    encode_header_of_version(base, VERSION)
}

/// The 16-byte header of a segment starting at `base` in format `version` (1 or 2).
pub fn encode_header_of_version(base: u64, version: u8) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(if version == 1 { MAGIC_V1 } else { MAGIC });
    h[8..].copy_from_slice(&base.to_le_bytes());
    h
}

/// The base stored in a header and the header's format version, or `None` if the magic is
/// neither version's.
pub fn parse_header(h: &[u8; 16]) -> Option<(u64, u8)> {
    let version = match &h[..8] {
        m if m == MAGIC => VERSION,
        m if m == MAGIC_V1 => 1,
        _ => return None,
    };
    Some((u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]), version))
}

/// Whether a segment of format `version` may hold seal frames.
pub fn holds_seals(version: u8) -> bool {
    version >= 2
}

/// Segment files in `dir`, sorted by base.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Creates a new segment file (must not exist) and writes its header. Not synced: the caller
/// `fdatasync`s the file and fsyncs the directory.
pub fn create(dir: &Path, base: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(file_name(base));
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    if let Err(e) = file.write_all_at(&encode_header(base), 0) {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok((file, path))
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// Every segment, oldest first; the last is the active one.
    pub segments: Vec<SegmentInfo>,
    /// One past the last record.
    pub next_seq: u64,
    /// Arrival time of the last record, if there is one.
    pub last_arrival_ms: Option<i64>,
}

/// The first frame a scan could not accept.
#[derive(Debug)]
struct BadFrame {
    offset: u64,
    reason: String,
    /// A complete frame with a correct checksum in the wrong place: never a torn write.
    hard: bool,
}

#[derive(Debug)]
struct Scan {
    next_seq: u64,
    valid_len: u64,
    last_arrival_ms: Option<i64>,
    bad: Option<BadFrame>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_path_buf(), source }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> OpenError {
    OpenError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
}

/// Reads the frames of a segment from offset 16, stopping at the first bad one.
fn scan_frames(file: &File, file_len: u64, base: u64, version: u8) -> io::Result<Scan> {
    let mut r = BufReader::with_capacity(SCAN_BUFFER, file);
    r.seek(SeekFrom::Start(SEGMENT_HEADER_LEN))?;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut expected = base;
    let mut last_arrival_ms = None;
    let mut head = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    let bad = |offset: u64, reason: String, hard: bool| Some(BadFrame { offset, reason, hard });
    let bad = loop {
        if offset == file_len {
            break None;
        }
        if file_len - offset < HEADER_LEN as u64 {
            break bad(
                offset,
                format!(
                    "incomplete frame header ({} of {HEADER_LEN} bytes before end of file)",
                    file_len - offset
                ),
                false,
            );
        }
        r.read_exact(&mut head)?;
        let h = FrameHeader::parse(&head);
        if !h.plausible_len() {
            break bad(offset, h.implausible_reason(), false);
        }
        if offset + h.frame_len() > file_len {
            break bad(
                offset,
                format!(
                    "incomplete frame (payload length {} extends past end of file)",
                    h.payload_len
                ),
                false,
            );
        }
        payload.resize(h.payload_len as usize, 0);
        r.read_exact(&mut payload)?;
        if !h.verify(&payload) {
            break bad(offset, "checksum mismatch".to_string(), false);
        }
        if h.seq != expected {
            break bad(
                offset,
                format!("expected sequence number {expected}, found {}", h.seq),
                true,
            );
        }
        if h.kind == record::SEAL {
            if !holds_seals(version) {
                break bad(offset, format!("a seal frame in a version {version} segment"), true);
            }
            if record::seal_kind(&payload).is_none() {
                break bad(offset, format!("unknown seal kind {:?}", payload), true);
            }
        }
        let Some(next) = expected.checked_add(1) else {
            break bad(
                offset,
                "sequence number 2^64-1 leaves no room for a next record".into(),
                true,
            );
        };
        expected = next;
        offset += h.frame_len();
        if h.kind == record::RECORD {
            last_arrival_ms = Some(h.arrival_ms);
        }
    };
    Ok(Scan { next_seq: expected, valid_len: offset, last_arrival_ms, bad })
}

/// The first offset in `tail` (after 0) where a valid frame with a sequence number of at least
/// `expected` starts, with that sequence number.
fn find_valid_frame(tail: &[u8], expected: u64) -> Option<(usize, u64)> {
    let max_seq = expected.saturating_add((tail.len() / HEADER_LEN) as u64 + 1);
    (1..tail.len().saturating_sub(HEADER_LEN - 1)).find_map(|p| {
        let seq_bytes: [u8; 8] = tail[p + 8..p + 16].try_into().ok()?;
        let seq = u64::from_le_bytes(seq_bytes);
        if seq < expected || seq > max_seq {
            return None;
        }
        match record::decode_frame(&tail[p..]) {
            Decoded::Frame { header, .. } => Some((p, header.seq)),
            _ => None,
        }
    })
}

/// Validates every segment of `dir` and repairs the active one's torn tail (rules in
/// docs/log-format.md). With no segment at all, creates one starting at `empty_base`.
pub fn recover(dir: &Path, empty_base: u64) -> Result<Recovered, OpenError> {
    let files = list(dir).map_err(io_err(dir))?;
    if files.is_empty() {
        let (file, path) = create(dir, empty_base).map_err(io_err(dir))?;
        file.sync_data().map_err(io_err(&path))?;
        sync_dir(dir).map_err(io_err(dir))?;
        return Ok(Recovered {
            segments: vec![SegmentInfo {
                base: empty_base,
                path,
                len: SEGMENT_HEADER_LEN,
                version: VERSION,
            }],
            next_seq: empty_base,
            last_arrival_ms: None,
        });
    }
    let newest = files.len() - 1;
    let mut segments = Vec::with_capacity(files.len());
    let mut next_seq: Option<u64> = None;
    let mut last_arrival_ms = None;
    for (i, (base, path)) in files.into_iter().enumerate() {
        let active = i == newest;
        if let Some(expected) = next_seq {
            if base != expected {
                return Err(corrupt(
                    &path,
                    0,
                    format!(
                        "segment starts at sequence number {base} but the previous segment ends \
                         before {expected} (records missing or duplicated between segments)"
                    ),
                ));
            }
        }
        let file =
            OpenOptions::new().read(true).write(active).open(&path).map_err(io_err(&path))?;
        let mut len = file.metadata().map_err(io_err(&path))?.len();
        let mut header = [0u8; 16];
        let header_ok = len >= SEGMENT_HEADER_LEN
            && file.read_exact_at(&mut header, 0).is_ok()
            && parse_header(&header).is_some();
        if !header_ok {
            if active && len <= SEGMENT_HEADER_LEN {
                tracing::warn!(segment = %path.display(), bytes = len,
                    "rewriting the header of the newest segment (crash right after it was created)");
                file.set_len(0).map_err(io_err(&path))?;
                file.write_all_at(&encode_header(base), 0).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
                sync_dir(dir).map_err(io_err(dir))?;
                len = SEGMENT_HEADER_LEN;
                header = encode_header(base);
            } else {
                return Err(corrupt(&path, 0, "missing or invalid segment header"));
            }
        }
        let (header_base, version) = parse_header(&header).expect("checked above");
        if header_base != base {
            return Err(corrupt(
                &path,
                8,
                format!(
                    "header says the segment starts at sequence number {header_base} but the file name says {base}"
                ),
            ));
        }
        let scan = scan_frames(&file, len, base, version).map_err(io_err(&path))?;
        if let Some(bad) = scan.bad {
            if !active || bad.hard {
                let where_ = if active { "" } else { " (sealed segment)" };
                return Err(corrupt(&path, bad.offset, format!("{}{where_}", bad.reason)));
            }
            let mut tail = vec![0u8; (len - bad.offset) as usize];
            file.read_exact_at(&mut tail, bad.offset).map_err(io_err(&path))?;
            if let Some((at, seq)) = find_valid_frame(&tail, scan.next_seq) {
                return Err(corrupt(
                    &path,
                    bad.offset,
                    format!(
                        "{}, but a valid frame with sequence number {seq} follows at offset {}: \
                         damage in the middle of written data, not a torn write",
                        bad.reason,
                        bad.offset + at as u64
                    ),
                ));
            }
            tracing::warn!(
                segment = %path.display(),
                offset = bad.offset,
                discarded_bytes = len - bad.offset,
                reason = %bad.reason,
                "truncating the torn tail of the newest segment (a write that was never acknowledged)"
            );
            file.set_len(scan.valid_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            len = scan.valid_len;
        }
        next_seq = Some(scan.next_seq);
        if scan.last_arrival_ms.is_some() {
            last_arrival_ms = scan.last_arrival_ms;
        }
        segments.push(SegmentInfo { base, path, len, version });
    }
    Ok(Recovered { segments, next_seq: next_seq.unwrap_or(empty_base), last_arrival_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort_numerically() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("0000000000000000004x.seg"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn a_header_round_trips_and_rejects_a_wrong_magic() {
        assert_eq!(parse_header(&encode_header(7)), Some((7, VERSION)));
        assert_eq!(parse_header(&encode_header_of_version(7, 1)), Some((7, 1)));
        assert_eq!(&encode_header_of_version(7, 1)[..8], b"HYDSEG01");
        let mut h = encode_header(7);
        h[0] = b'X';
        assert_eq!(parse_header(&h), None);
    }

    /// From the `log_recovery` fuzz target (fuzz/corpus/log_recovery/u64-max-sequence-number):
    /// counting past the last possible sequence number overflowed.
    #[test]
    fn a_frame_with_the_largest_sequence_number_is_corruption_not_an_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = encode_header(u64::MAX).to_vec();
        record::encode_frame(&mut file, u64::MAX, 1, b"x");
        fs::write(dir.path().join(file_name(u64::MAX)), file).unwrap();
        match recover(dir.path(), 0) {
            Err(OpenError::Corrupt { offset: 16, reason, .. }) => {
                assert!(reason.contains("no room for a next record"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_frame_is_found_after_garbage() {
        let mut tail = vec![0xAB; 30];
        record::encode_frame(&mut tail, 11, 5, b"payload");
        assert_eq!(find_valid_frame(&tail, 10), Some((30, 11)));
        assert_eq!(find_valid_frame(&tail, 12), None);
        assert_eq!(find_valid_frame(&tail[..40], 10), None);
    }
}
