//! Reading a shard's committed entries (records and seals) in order, with synchronous file
//! I/O.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::state::{lock, Shared};
use crate::log::embedded::error::ReadError;
use crate::log::embedded::record::{self, FrameHeader, Record, HEADER_LEN};
use crate::log::embedded::segment::{self, SEGMENT_HEADER_LEN};
use crate::log::{Entry, Seal};

/// Reads a segment file through `pread`, never past `limit` (the committed length of the
/// active segment), so that bytes of an uncommitted write are never buffered.
struct Bounded {
    file: File,
    pos: u64,
    limit: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(room) as usize;
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Bounded {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        self.pos = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

struct Cursor {
    base: u64,
    /// The segment's format version (whether it may hold seals).
    version: u8,
    path: PathBuf,
    /// First sequence number of the following segment, once this one is known to be sealed.
    end: Option<u64>,
    /// Byte offset of the next frame.
    offset: u64,
    io: BufReader<Bounded>,
}

const READ_BUFFER: usize = 256 << 10;

/// Reads committed entries in order: records and seals, each at its own sequence number.
/// Synchronous (blocking) file I/O: call it from a blocking
/// context (`spawn_blocking`, a dedicated thread) or accept short blocking reads of the page
/// cache. Survives segment rolls and retention deleting segments behind it.
pub struct ShardReader {
    shared: Arc<Shared>,
    next: u64,
    /// Committed `next_seq` as of the last refresh.
    visible: u64,
    cur: Option<Cursor>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("dir", &self.shared.dir)
            .field("next", &self.next)
            .finish()
    }
}

impl ShardReader {
    /// A reader at `next`, with `visible` the committed `next_seq` when it was made.
    pub(super) fn new(shared: Arc<Shared>, next: u64, visible: u64) -> Self {
        Self { shared, next, visible, cur: None }
    }

    /// Sequence number of the entry the next call returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next committed entry ([`Entry::Record`] or [`Entry::Seal`]), or `None` when caught
    /// up with `next_seq()`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry>, ReadError> {
        if self.next >= self.visible {
            self.refresh();
            if self.next >= self.visible {
                return Ok(None);
            }
        }
        let switch = match &self.cur {
            None => true,
            Some(c) => c.end == Some(self.next),
        };
        if switch {
            self.open_segment()?;
        }
        let next = self.next;
        let cur = self.cur.as_mut().expect("a segment is open");
        let rec = read_frame(cur, next)?;
        self.next += 1;
        Ok(Some(rec))
    }

    /// Takes a new snapshot of the committed position and of the current segment's bounds.
    fn refresh(&mut self) {
        let st = lock(&self.shared.state);
        self.visible = st.committed;
        if let Some(cur) = &mut self.cur {
            let active = st.segments.last().expect("at least one segment");
            if active.base == cur.base {
                cur.io.get_mut().limit = active.len;
            } else {
                cur.end = st.segments.iter().find(|s| s.base > cur.base).map(|s| s.base);
                cur.io.get_mut().limit = u64::MAX;
            }
        }
    }

    fn trimmed(&self) -> ReadError {
        ReadError::Trimmed { requested: self.next, first_retained: self.shared.first_retained() }
    }

    /// Opens the segment holding `self.next` and positions on that record.
    fn open_segment(&mut self) -> Result<(), ReadError> {
        self.cur = None;
        let (base, path, end, limit) = {
            let st = lock(&self.shared.state);
            let Some(i) = st.segments.iter().rposition(|s| s.base <= self.next) else {
                drop(st);
                return Err(self.trimmed());
            };
            let seg = &st.segments[i];
            let active = i + 1 == st.segments.len();
            let end = st.segments.get(i + 1).map(|s| s.base);
            let limit = if active { seg.len } else { u64::MAX };
            (seg.base, seg.path.clone(), end, limit)
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.trimmed()),
            Err(source) => return Err(ReadError::Io { path, source }),
        };
        let mut io = BufReader::with_capacity(READ_BUFFER, Bounded { file, pos: 0, limit });
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        read_exact(&mut io, &mut header, &path, 0)?;
        let version = match segment::parse_header(&header) {
            Some((b, version)) if b == base => version,
            _ => {
                return Err(ReadError::Corrupt {
                    path,
                    offset: 0,
                    reason: "invalid segment header".into(),
                })
            }
        };
        let mut cur = Cursor { base, version, path, end, offset: SEGMENT_HEADER_LEN, io };
        // Skip the frames before `next` (reading only their headers).
        let mut seq = base;
        while seq < self.next {
            let h = read_header(&mut cur, seq)?;
            let skip = h.payload_len as i64;
            cur.io
                .seek_relative(skip)
                .map_err(|source| ReadError::Io { path: cur.path.clone(), source })?;
            cur.offset += h.frame_len();
            seq += 1;
        }
        self.cur = Some(cur);
        Ok(())
    }
}

fn read_exact(
    io: &mut BufReader<Bounded>,
    buf: &mut [u8],
    path: &Path,
    offset: u64,
) -> Result<(), ReadError> {
    io.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: "committed frame ends before the end of the file".into(),
            }
        } else {
            ReadError::Io { path: path.to_path_buf(), source: e }
        }
    })
}

/// Reads and checks the header of the frame with sequence number `seq` at the cursor.
fn read_header(cur: &mut Cursor, seq: u64) -> Result<FrameHeader, ReadError> {
    let mut head = [0u8; HEADER_LEN];
    read_exact(&mut cur.io, &mut head, &cur.path, cur.offset)?;
    let h = FrameHeader::parse(&head);
    let reason = if h.seq != seq {
        format!("expected sequence number {seq}, found {}", h.seq)
    } else if !h.plausible_len() {
        h.implausible_reason()
    } else if h.kind == record::SEAL && !segment::holds_seals(cur.version) {
        format!("a seal frame in a version {} segment", cur.version)
    } else {
        return Ok(h);
    };
    Err(ReadError::Corrupt { path: cur.path.clone(), offset: cur.offset, reason })
}

fn read_frame(cur: &mut Cursor, seq: u64) -> Result<Entry, ReadError> {
    let h = read_header(cur, seq)?;
    let mut data = vec![0u8; h.payload_len as usize];
    read_exact(&mut cur.io, &mut data, &cur.path, cur.offset)?;
    let corrupt = |cur: &Cursor, reason: String| ReadError::Corrupt {
        path: cur.path.clone(),
        offset: cur.offset,
        reason,
    };
    if !h.verify(&data) {
        return Err(corrupt(cur, "checksum mismatch".into()));
    }
    let entry = if h.kind == record::SEAL {
        let Some(kind) = record::seal_kind(&data) else {
            return Err(corrupt(cur, format!("unknown seal kind {data:?}")));
        };
        Entry::Seal(Seal { position: seq, watermark_ms: h.arrival_ms, kind })
    } else {
        Entry::Record(Record { seq, arrival_ms: h.arrival_ms, data: Bytes::from(data) })
    };
    cur.offset += h.frame_len();
    Ok(entry)
}
