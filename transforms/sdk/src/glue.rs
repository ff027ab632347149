//! The raw-memory glue behind the exports that the `transform*!` macros generate.
//!
//! This is the only module with `unsafe`: it turns the `(ptr, len)` pairs the host passes
//! into slices, and hands the host the address of the response.
//!
//! Memory protocol (see `docs/transforms.md`): the host calls `hydrant_alloc(len)`, writes
//! the request into the returned buffer, then calls `hydrant_transform(ptr, len)` (or
//! `hydrant_transform_json`) with the same pointer and length. The guest owns that buffer
//! and frees it before returning. The response lives in a buffer the guest keeps and reuses;
//! it stays valid until the host's next call into the module.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;

use crate::abi::{self, Batch, Outcome, Record};

/// The response buffer, reused across invocations so it keeps its capacity.
///
/// A plain static rather than a `thread_local!`: statics are never dropped, whereas
/// wasm-ld wraps every export of a wasip1 module in `__wasm_call_ctors`/`__wasm_call_dtors`,
/// and the buffer must outlive the export call that filled it.
struct Output(UnsafeCell<Vec<u8>>);

// SAFETY: wasm32-wasip1 has a single thread, and the buffer is only touched from inside an
// export call (`with_request`), never re-entrantly.
unsafe impl Sync for Output {}

static OUTPUT: Output = Output(UnsafeCell::new(Vec::new()));

fn layout(len: usize) -> Layout {
    // Alignment 8 lets a host (or a hand-written guest) read u64s in place if it wants to.
    Layout::from_size_align(len.max(1), 8).expect("request length fits a layout")
}

/// `hydrant_alloc`: a buffer of `len` bytes for the next request, or 0 when out of memory.
pub fn alloc(len: i32) -> i32 {
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc::alloc(layout(len as u32 as usize)) };
    ptr as usize as i32
}

/// Runs `f` over the request at `(ptr, len)`, frees the request, and returns the packed
/// `(response ptr << 32) | response len`.
fn with_request(ptr: i32, len: i32, f: impl FnOnce(&[u8], &mut Vec<u8>)) -> i64 {
    let len = len as u32 as usize;
    let ptr = ptr as u32 as usize as *mut u8;
    // SAFETY: single-threaded and not re-entrant (see `Output`): this is the only live
    // reference to the buffer.
    let out = unsafe { &mut *OUTPUT.0.get() };
    out.clear();
    {
        // SAFETY: per the ABI the host passes back exactly the buffer `alloc(len)` returned,
        // fully written, and does not touch it while the guest runs.
        let request = unsafe { std::slice::from_raw_parts(ptr, len) };
        f(request, out);
    }
    let packed = ((out.as_ptr() as usize as u64) << 32) | out.len() as u64;
    // SAFETY: `ptr` came from `alloc(len)` with this very layout and is not used again.
    unsafe { alloc::dealloc(ptr, layout(len)) };
    packed as i64
}

fn decode(request: &[u8]) -> Batch<'_> {
    match abi::decode_request(request) {
        Ok(batch) => batch,
        Err(e) => panic!("{e}"),
    }
}

/// `hydrant_transform` for a per-record function.
pub fn run_records<F>(ptr: i32, len: i32, mut f: F) -> i64
where
    F: for<'a> FnMut(Record<'a>) -> Outcome<'a>,
{
    with_request(ptr, len, |request, out| {
        let batch = decode(request);
        out.reserve(request.len() + 16 * batch.records.len());
        abi::begin_response(out, batch.records.len() as u32);
        for (i, record) in batch.records.iter().enumerate() {
            let outcome = f(*record);
            abi::encode_outcome(out, i as u32, &outcome);
        }
    })
}

/// `hydrant_transform` for a whole-batch function: outcome `i` belongs to record `i`.
/// Outcomes past the number of records are ignored; records without an outcome are
/// reported missing by the host (`Lambda.MissingRecordId`).
pub fn run_batch<F>(ptr: i32, len: i32, f: F) -> i64
where
    F: for<'a> FnOnce(Batch<'a>) -> Vec<Outcome<'a>>,
{
    with_request(ptr, len, |request, out| {
        let batch = decode(request);
        let n = batch.records.len();
        let outcomes = f(batch);
        let count = outcomes.len().min(n);
        out.reserve(request.len() + 16 * count);
        abi::begin_response(out, count as u32);
        for (i, outcome) in outcomes.iter().take(count).enumerate() {
            abi::encode_outcome(out, i as u32, outcome);
        }
    })
}

/// `hydrant_transform_json` for a function over the Firehose JSON event.
#[cfg(feature = "json")]
pub fn run_json<F>(ptr: i32, len: i32, f: F) -> i64
where
    F: FnOnce(crate::json::KinesisFirehoseEvent) -> crate::json::KinesisFirehoseResponse,
{
    with_request(ptr, len, |request, out| {
        let event = match serde_json::from_slice(request) {
            Ok(event) => event,
            Err(e) => panic!("bad hydrant JSON event: {e}"),
        };
        let response = f(event);
        if let Err(e) = serde_json::to_writer(&mut *out, &response) {
            panic!("cannot serialise the response: {e}");
        }
    })
}
