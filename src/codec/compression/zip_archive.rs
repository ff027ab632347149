//! `ZIP`: a zip archive holding one deflated entry named by a random UUID (FIREHOSE.md §3.5),
//! written with the `zip` crate over flate2's zlib-rs backend.
//!
//! Writing a zip needs `Seek` (the local header's CRC and sizes are patched after the data),
//! so the archive is built in a `Cursor<Vec<u8>>`: memory holds the compressed archive only.

use std::io::{self, Cursor, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{CompressWriter, Compression};

/// One zip archive per object with a single deflated entry.
#[derive(Debug)]
pub struct Zip {
    /// Deflate level, 0..=9.
    pub level: u32,
}

impl Compression for Zip {
    fn writer(&self) -> Box<dyn CompressWriter> {
        Box::new(ZipArchiveWriter::new(self.level, &uuid::Uuid::new_v4().to_string()))
    }
    fn extension(&self) -> &'static str {
        ".zip"
    }
    fn content_encoding(&self) -> Option<&'static str> {
        Some("zip")
    }
}

struct ZipArchiveWriter {
    /// `Err` when the entry could not be started; reported by the first write or `finish`.
    zip: Result<ZipWriter<Cursor<Vec<u8>>>, String>,
}

impl ZipArchiveWriter {
    fn new(level: u32, entry_name: &str) -> Self {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(i64::from(level.min(9))))
            .last_modified_time(zip_time_now())
            .unix_permissions(0o644);
        // No Zip64: objects are bounded by the buffering hints (at most 128 MiB), far below
        // the 4 GiB at which the zip crate would refuse an entry without `large_file`.
        let mut zip = ZipWriter::new(Cursor::new(Vec::with_capacity(1 << 20)));
        let zip = match zip.start_file(entry_name, options) {
            Ok(()) => Ok(zip),
            Err(e) => Err(format!("cannot start zip entry: {e}")),
        };
        ZipArchiveWriter { zip }
    }

    fn zip(&mut self) -> io::Result<&mut ZipWriter<Cursor<Vec<u8>>>> {
        self.zip.as_mut().map_err(|e| io::Error::other(e.clone()))
    }
}

impl Write for ZipArchiveWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.zip()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.zip()?.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.zip()?.flush()
    }
}

impl CompressWriter for ZipArchiveWriter {
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        let zip = self.zip.map_err(io::Error::other)?;
        Ok(zip.finish().map_err(io::Error::other)?.into_inner())
    }
}

/// The entry's modification time: now, in UTC (zip stores a zone-less DOS date and time).
fn zip_time_now() -> DateTime {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    zip_time(secs)
}

/// Unix seconds to a DOS date and time; 1980-01-01 00:00 when out of the DOS range.
fn zip_time(unix_secs: u64) -> DateTime {
    let days = (unix_secs / 86_400) as i64;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    u16::try_from(year)
        .ok()
        .and_then(|year| {
            DateTime::from_date_and_time(
                year,
                month,
                day,
                (secs_of_day / 3600) as u8,
                (secs_of_day / 60 % 60) as u8,
                (secs_of_day % 60) as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_the_utc_dos_date_and_time() {
        // 2024-02-29 23:59:58 UTC
        let t = zip_time(1_709_251_198);
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()),
            (2024, 2, 29, 23, 59, 58)
        );
        // 2000-03-01 00:00:00 UTC
        let t = zip_time(951_868_800);
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2000, 3, 1, 0));
    }

    #[test]
    fn times_outside_the_dos_range_fall_back_to_1980() {
        assert_eq!(zip_time(0), DateTime::default());
        assert_eq!(zip_time(u64::from(u32::MAX) * 2), DateTime::default());
    }
}
