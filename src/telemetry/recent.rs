//! What was delivered lately, per stream: the last objects written (key, size, records) and
//! the last error-output objects (their first documents), kept in small bounded rings for the
//! console (`src/console`). Fed once per object, never per record, so it costs nothing on the
//! ingest path; memory is bounded by [`OBJECTS_KEPT`], [`ERRORS_KEPT`] and
//! [`ERROR_SAMPLE_BYTES`] per stream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};

/// Delivered objects kept per stream.
pub const OBJECTS_KEPT: usize = 20;
/// Error-output objects kept per stream.
pub const ERRORS_KEPT: usize = 10;
/// Bytes kept of each error-output object (its first documents).
pub const ERROR_SAMPLE_BYTES: usize = 16 << 10;

/// A ring that keeps the last `capacity` items pushed.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T: Clone> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        Self { items: VecDeque::with_capacity(capacity.min(64)), capacity: capacity.max(1) }
    }

    /// Adds `item`, dropping the oldest when full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// The items, newest first.
    pub fn newest_first(&self) -> Vec<T> {
        self.items.iter().rev().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One object a stream delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredObject {
    /// When it was written (epoch ms).
    pub at_ms: i64,
    pub shard: u32,
    pub key: String,
    /// Bytes of the object as stored.
    pub bytes: u64,
    pub records: u64,
}

/// One error-output object a stream wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    pub at_ms: i64,
    pub shard: u32,
    pub key: String,
    /// `processing-failed`, `format-conversion-failed`, ...
    pub output_type: String,
    pub records: u64,
    /// Its first [`ERROR_SAMPLE_BYTES`] bytes (JSON lines, unless the stream encrypts).
    pub sample: Vec<u8>,
}

#[derive(Debug)]
struct StreamRecent {
    objects: Ring<DeliveredObject>,
    errors: Ring<ErrorObject>,
}

impl Default for StreamRecent {
    fn default() -> Self {
        Self { objects: Ring::new(OBJECTS_KEPT), errors: Ring::new(ERRORS_KEPT) }
    }
}

/// The rings of every stream.
#[derive(Debug, Default)]
pub struct Recent {
    streams: Mutex<BTreeMap<String, StreamRecent>>,
}

impl Recent {
    /// The process-wide rings.
    pub fn global() -> &'static Recent {
        static RECENT: OnceLock<Recent> = OnceLock::new();
        RECENT.get_or_init(Recent::default)
    }

    fn with<R>(&self, stream: &str, f: impl FnOnce(&mut StreamRecent) -> R) -> R {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(recent) = streams.get_mut(stream) {
            return f(recent);
        }
        f(streams.entry(stream.to_string()).or_default())
    }

    pub fn object_delivered(&self, stream: &str, object: DeliveredObject) {
        self.with(stream, |r| r.objects.push(object));
    }

    /// Keeps the first [`ERROR_SAMPLE_BYTES`] of `body`, cut after its last whole line.
    pub fn error_written(
        &self,
        stream: &str,
        shard: u32,
        key: &str,
        output_type: &str,
        records: u64,
        body: &[u8],
    ) {
        let mut sample = &body[..body.len().min(ERROR_SAMPLE_BYTES)];
        if sample.len() < body.len() {
            if let Some(end) = sample.iter().rposition(|&b| b == b'\n') {
                sample = &sample[..=end];
            }
        }
        let object = ErrorObject {
            at_ms: crate::clock::now_ms(),
            shard,
            key: key.to_string(),
            output_type: output_type.to_string(),
            records,
            sample: sample.to_vec(),
        };
        self.with(stream, |r| r.errors.push(object));
    }

    /// The stream's last delivered objects, newest first.
    pub fn objects(&self, stream: &str) -> Vec<DeliveredObject> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(stream).map(|r| r.objects.newest_first()).unwrap_or_default()
    }

    /// The stream's last error-output objects, newest first.
    pub fn errors(&self, stream: &str) -> Vec<ErrorObject> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(stream).map(|r| r.errors.newest_first()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_items_newest_first() {
        let mut ring = Ring::new(3);
        assert!(ring.is_empty());
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.newest_first(), vec![4, 3, 2]);
    }

    #[test]
    fn each_stream_keeps_its_own_bounded_objects_and_errors() {
        let recent = Recent::default();
        for i in 0..(OBJECTS_KEPT as u64 + 5) {
            let object =
                DeliveredObject { at_ms: 1, shard: 0, key: format!("k{i}"), bytes: i, records: 1 };
            recent.object_delivered("a", object);
        }
        let objects = recent.objects("a");
        assert_eq!(objects.len(), OBJECTS_KEPT);
        assert_eq!(objects[0].key, format!("k{}", OBJECTS_KEPT + 4));
        assert!(recent.objects("b").is_empty());
        let mut body = b"{\"errorCode\":\"X\"}\n".repeat(2000);
        body.extend_from_slice(b"tail without newline");
        recent.error_written("a", 1, "err/k", "processing-failed", 2001, &body);
        let errors = recent.errors("a");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].sample.len() <= ERROR_SAMPLE_BYTES);
        assert!(errors[0].sample.ends_with(b"}\n"), "cut after a whole line");
        assert_eq!(errors[0].output_type, "processing-failed");
    }
}
