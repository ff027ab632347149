//! A global allocator that counts the bytes the current thread holds while metering is on.
//!
//! Hydrant bounds the memory one jq evaluation may hold (`src/processors/extract/budget.rs`).
//! jaq builds values in hundreds of places (every builtin, every path update that copies a
//! shared array, ...), so the bound is applied where memory is actually taken: [`Metered`]
//! wraps the system allocator and, on a thread that called [`start`], adds every allocation's
//! size to a thread-local count and subtracts every deallocation. The evaluation reads the
//! count ([`live_bytes`]) at each of its steps and stops when it is over its limit (an
//! allocator must not unwind, so the check cannot happen here).
//!
//! Install it in the binary:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: hydrant_alloc_meter::Metered = hydrant_alloc_meter::Metered::SYSTEM;
//! ```
//!
//! Without it [`installed`] is false and nothing is counted. Threads that never call
//! [`start`] pay one thread-local read per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::OnceLock;

thread_local! {
    /// Whether this thread's allocations are counted now.
    static METERING: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated minus bytes freed on this thread since [`start`] (negative when the
    /// thread freed memory it held before).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The counting allocator, over `A` (the system allocator unless another is wrapped).
pub struct Metered<A = System>(pub A);

impl Metered {
    /// Over the system allocator.
    pub const SYSTEM: Metered = Metered(System);
}

/// Adds `delta` to the count when this thread is metering. Never panics (the thread-locals
/// have no destructor, so they are always accessible) and never allocates.
#[inline]
fn count(delta: isize) {
    let metering = METERING.try_with(Cell::get).unwrap_or(false);
    if metering {
        let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(delta)));
    }
}

// SAFETY: every method forwards its arguments unchanged to `A`, which upholds the
// `GlobalAlloc` contract; the counting touches only thread-local `Cell`s and does not
// allocate, panic or unwind.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Metered<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees on `layout` are passed on unchanged.
        let ptr = unsafe { self.0.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { self.0.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. from `A`.
        let new = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as in `realloc`.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Metering on the current thread, from [`start`] until this is dropped (then the thread is
/// back to what it was before).
pub struct Metering {
    was_metering: bool,
    was_live: isize,
    /// Thread-local state: the guard must be dropped on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

/// Counts the current thread's allocations from zero until the returned guard is dropped.
pub fn start() -> Metering {
    let was_metering = METERING.with(|m| m.replace(true));
    let was_live = LIVE.with(|l| l.replace(0));
    Metering { was_metering, was_live, _not_send: PhantomData }
}

impl Drop for Metering {
    fn drop(&mut self) {
        METERING.with(|m| m.set(self.was_metering));
        LIVE.with(|l| l.set(self.was_live));
    }
}

/// Bytes the current thread allocated and has not freed since [`start`] (0 when it is not
/// metering or [`Metered`] is not the global allocator).
pub fn live_bytes() -> isize {
    if METERING.with(Cell::get) {
        LIVE.with(Cell::get)
    } else {
        0
    }
}

/// Whether [`Metered`] is the process's global allocator (checked once, by metering one
/// allocation).
pub fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let _metering = start();
        let probe = std::hint::black_box(vec![0u8; 4096]);
        let counted = live_bytes() >= 4096;
        drop(probe);
        counted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: Metered = Metered::SYSTEM;

    #[test]
    fn what_a_thread_holds_is_counted_while_metering() {
        assert!(installed());
        let before = vec![0u8; 1 << 20];
        let metering = start();
        let held = std::hint::black_box(vec![0u8; 10 << 20]);
        let live = live_bytes();
        assert!((10 << 20..11 << 20).contains(&live), "{live}");
        let mut grown = std::hint::black_box(Vec::<u8>::with_capacity(1 << 20));
        grown.reserve_exact(3 << 20);
        // A realloc counts the difference: 1 MiB grown to 3 MiB.
        assert!((13 << 20..14 << 20).contains(&live_bytes()), "{}", live_bytes());
        drop((held, grown));
        assert!(live_bytes() < 1 << 20, "{}", live_bytes());
        // Another thread's allocations are not this thread's.
        std::thread::spawn(|| std::hint::black_box(vec![0u8; 8 << 20]).len()).join().unwrap();
        assert!(live_bytes() < 1 << 20, "{}", live_bytes());
        drop(metering);
        assert_eq!(live_bytes(), 0);
        drop(before);
    }
}
