//! Hydrant's fuzz targets (docs/fuzzing.md). The targets' bodies are in [`targets`]; each
//! binary in `fuzz_targets/` hands libFuzzer's input to one of them.
//!
//! Besides panics (libfuzzer-sys turns them into aborts) and hangs (libFuzzer's `-timeout`),
//! a target must not allocate without bound. libFuzzer's `-malloc_limit_mb` needs a
//! sanitizer's allocator hooks, which `--sanitizer none` builds do not have, so the global
//! allocator below aborts on any single allocation larger than [`MAX_ALLOCATION`]; libFuzzer
//! then saves the input like any other crash. Growth through many smaller allocations is
//! caught by `-rss_limit_mb` (scripts/fuzz.sh sets it). Under the size check is the server's
//! own allocator, the counting [`hydrant_alloc_meter::Metered`]: jq's memory bound reads it, so
//! a query the server stops at its limit stops here too.

// The one place of unsafe code in this repository outside the WebAssembly host: a
// `GlobalAlloc` cannot be written without it. It only adds a size check in front of the
// server's allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use hydrant_alloc_meter::Metered;
use std::io::Write;

pub mod targets;

/// The largest single allocation a target may make. The largest legitimate one is the
/// encrypted-object reader's chunk buffer (16 MiB + a tag, `MAX_CHUNK_SIZE`), which an
/// object header may ask for; fuzz inputs are at most a few MiB.
pub const MAX_ALLOCATION: usize = 64 << 20;

struct CappedAllocator;

/// What the server allocates with (`src/main.rs`).
static INNER: Metered = Metered::SYSTEM;

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // Unbuffered and allocation-free: the allocator must not allocate to report.
        let _ = std::io::stderr()
            .write_all(b"hydrant-fuzz: a single allocation of more than 64 MiB: aborting\n");
        std::process::abort();
    }
}

// SAFETY: every method checks the size and then forwards its arguments unchanged to
// `INNER`, which upholds the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's guarantees on `layout` are passed on unchanged.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { INNER.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `INNER`.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `INNER`.
        unsafe { INNER.dealloc(ptr, layout) }
    }
}
