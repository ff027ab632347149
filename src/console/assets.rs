//! The console's files, embedded in the binary (no build step, no CDN): our page, its style
//! and script, and the vendored uPlot (charts) and aws4fetch (SigV4 in the browser), with
//! their licenses. Each is served with its Content-Type, an ETag (a hash of its bytes, so a
//! browser revalidates with one `If-None-Match` and gets 304), and gzip'd when the browser
//! takes gzip (compressed once, on first use).

use std::io::Write;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!("assets/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file; `index.html` is the page at `/console/`, the others are under
/// `/console/assets/`.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", CSS),
    asset!("console.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", TEXT),
    asset!("vendor/aws4fetch.umd.js", JS),
    asset!("vendor/aws4fetch.LICENSE", TEXT),
];

/// What the page loads: these make its weight.
pub const PAGE: [&str; 6] = [
    "index.html",
    "console.css",
    "console.js",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/aws4fetch.umd.js",
];

/// A file ready to serve.
struct Prepared {
    etag: HeaderValue,
    /// `None` when gzip does not make it smaller.
    gzip: Option<Vec<u8>>,
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| ASSETS.iter().map(prepare).collect())
}

fn prepare(asset: &Asset) -> Prepared {
    let digest = Sha256::digest(asset.bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag = HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header value");
    let gzip = gzip(asset.bytes).filter(|g| g.len() < asset.bytes.len());
    Prepared { etag, gzip }
}

/// `bytes` gzip'd at the best level (the files, once).
pub fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    gzip_at(bytes, flate2::Compression::best())
}

/// `bytes` gzip'd quickly (answers made per request).
pub fn gzip_fast(bytes: &[u8]) -> Option<Vec<u8>> {
    gzip_at(bytes, flate2::Compression::fast())
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// The asset named `name`, answering `headers`' `If-None-Match` and `Accept-Encoding`.
pub fn serve(name: &str, headers: &HeaderMap) -> Option<Response> {
    let index = ASSETS.iter().position(|a| a.name == name)?;
    let (asset, ready) = (&ASSETS[index], &prepared()[index]);
    let mut response = if matches(headers, &ready.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match &ready.gzip {
            Some(gz) if accepts_gzip(headers) => {
                let mut r = gz.clone().into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            _ => asset.bytes.into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::ETAG, ready.etag.clone());
    // Revalidate every time (one 304 per file), so a new binary's files are never stale.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    super::security_headers(h);
    Some(response)
}

fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(value) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    value.split(',').map(str::trim).any(|v| v == "*" || v.trim_start_matches("W/") == etag)
}

pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|part| {
        let mut fields = part.split(';');
        let coding = fields.next().unwrap_or_default().trim();
        let refused = fields.any(|f| matches!(f.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// The page's bytes: (raw, gzip'd as served).
pub fn page_weight() -> (usize, usize) {
    PAGE.iter().fold((0, 0), |(raw, gz), name| {
        let index = ASSETS.iter().position(|a| a.name == *name).expect("PAGE names assets");
        let bytes = ASSETS[index].bytes;
        let served = prepared()[index].gzip.as_ref().map_or(bytes.len(), Vec::len);
        (raw + bytes.len(), gz + served)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn assets_have_their_type_an_etag_and_are_gzipd_when_asked() {
        let plain = serve("console.js", &HeaderMap::new()).unwrap();
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], JS);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let etag = plain.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 26, "{etag}");
        let gz = serve("console.js", &headers(&[(header::ACCEPT_ENCODING, "br, gzip;q=0.8")]));
        assert_eq!(gz.unwrap().headers()[header::CONTENT_ENCODING], "gzip");
        let refused = serve("console.js", &headers(&[(header::ACCEPT_ENCODING, "gzip;q=0")]));
        assert!(refused.unwrap().headers().get(header::CONTENT_ENCODING).is_none());
        let again = serve("console.js", &headers(&[(header::IF_NONE_MATCH, &etag)])).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = serve("index.html", &headers(&[(header::IF_NONE_MATCH, &etag)])).unwrap();
        assert_eq!(other.status(), StatusCode::OK, "another file's etag does not match");
        assert!(serve("../Cargo.toml", &HeaderMap::new()).is_none());
        assert!(serve("vendor/uPlot.LICENSE", &HeaderMap::new()).is_some());
    }

    /// The page's weight as docs/console.md states it: keep both bounds honest.
    #[test]
    fn the_page_weighs_little() {
        let (raw, gz) = page_weight();
        println!("page weight: {raw} bytes raw, {gz} bytes gzip'd");
        assert!(raw < 110_000, "the page's files take {raw} bytes");
        assert!(gz < 40_000, "the page's files take {gz} bytes gzip'd");
    }
}
