//! How entries are JetStream messages (§1.4, §3.2 of the design). A record is its data, with
//! the arrival time its publisher gave it (`Hyd-Arrival`) and, when it is encrypted at rest,
//! the epoch whose key sealed it (`Hyd-Enc`). A seal is an empty message with `Hyd-Kind: seal`.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::log::{Seal, SealKind};

pub const KIND: &str = "Hyd-Kind";
pub const SEAL_KIND: &str = "Hyd-Seal";
pub const WATERMARK: &str = "Hyd-Watermark";
pub const ARRIVAL: &str = "Hyd-Arrival";
pub const EPOCH: &str = "Hyd-Enc";

/// A stored message, decoded (a record still sealed when it is encrypted at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Record { arrival_ms: i64, data: Bytes, epoch: Option<String> },
    Seal(Seal),
}

/// The headers of a seal at `position`.
pub fn seal_headers(seal: &Seal) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "seal");
    let kind = match seal.kind {
        SealKind::Window => "window",
        SealKind::Drain => "drain",
    };
    headers.insert(SEAL_KIND, kind);
    headers.insert(WATERMARK, seal.watermark_ms.to_string());
    headers
}

/// Decodes the message at `seq`; `published_ms` is the stream's own time for it, used for
/// records written without `Hyd-Arrival`. `Err` names what is wrong.
pub fn decode(
    seq: u64,
    headers: Option<&HeaderMap>,
    payload: Bytes,
    published_ms: i64,
) -> Result<Decoded, String> {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    match header(KIND) {
        None => {
            let arrival_ms = match header(ARRIVAL) {
                None => published_ms,
                Some(text) => text
                    .parse()
                    .map_err(|_| format!("message {seq}: {ARRIVAL} {text:?} is not a number"))?,
            };
            Ok(Decoded::Record {
                arrival_ms,
                data: payload,
                epoch: header(EPOCH).map(str::to_string),
            })
        }
        Some("seal") => {
            let kind = match header(SEAL_KIND) {
                Some("window") => SealKind::Window,
                Some("drain") => SealKind::Drain,
                other => return Err(format!("seal {seq}: unknown {SEAL_KIND} {other:?}")),
            };
            let watermark_ms = header(WATERMARK)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("seal {seq}: no {WATERMARK}"))?;
            Ok(Decoded::Seal(Seal { position: seq, watermark_ms, kind }))
        }
        Some(other) => Err(format!("message {seq}: unknown {KIND} {other:?}")),
    }
}

/// `time` in Unix epoch milliseconds.
pub fn unix_ms(time: async_nats::datetime::DateTime) -> i64 {
    (time.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_as_it_was_written() {
        for kind in [SealKind::Window, SealKind::Drain] {
            let seal = Seal { position: 7, watermark_ms: 1_700_000_000_123, kind };
            let headers = seal_headers(&seal);
            assert_eq!(decode(7, Some(&headers), Bytes::new(), 0), Ok(Decoded::Seal(seal)));
        }
    }

    #[test]
    fn a_record_takes_its_arrival_from_its_header_or_else_the_stream() {
        let mut headers = HeaderMap::new();
        headers.insert(ARRIVAL, "1234");
        headers.insert(EPOCH, "abc-1");
        let data = Bytes::from_static(b"x");
        assert_eq!(
            decode(1, Some(&headers), data.clone(), 99),
            Ok(Decoded::Record {
                arrival_ms: 1234,
                data: data.clone(),
                epoch: Some("abc-1".into())
            })
        );
        assert_eq!(
            decode(1, None, data.clone(), 99),
            Ok(Decoded::Record { arrival_ms: 99, data, epoch: None })
        );
        let mut bad = HeaderMap::new();
        bad.insert(KIND, "mystery");
        assert!(decode(3, Some(&bad), Bytes::new(), 0).unwrap_err().contains("mystery"));
    }
}
