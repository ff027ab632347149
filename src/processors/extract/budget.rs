//! What one record's query evaluation may spend, and the stack it runs on.
//!
//! jaq has no fuel, depth or memory limit: `def f: f; f` loops forever, `def f: 1 + f; f`
//! recurses until the thread's stack overflows, which aborts the whole process (Rust cannot
//! catch a stack overflow), and a restart replays the same record into the same abort. So
//! every evaluation gets a [`Budget`] and runs on a stack of known size:
//!
//! * **Steps.** jaq clones the context's data ([`Guarded`]'s [`Budget`] reference) on every
//!   definition call, every tail call of a loop and every value passing a pipe, `reduce` or
//!   `foreach`; our natives charge one step per value they produce or consume (`range`,
//!   `last`, `skip`, `[...]`). Each clone charges a step, so any loop written in jq, and every
//!   long generator, ends after [`MAX_STEPS`].
//! * **Stack.** The same clone compares the stack pointer with a floor [`EVAL_STACK_BYTES`]
//!   below where the evaluation started. Evaluation runs on a thread whose stack has at least
//!   [`UNCHECKED_STACK_BYTES`] more below that floor, for what recurses without a step in
//!   between: dropping, comparing or hashing a deep value (at most one level per two steps,
//!   so at most `MAX_STEPS / 2` levels, a few hundred bytes of stack each in a debug build),
//!   and the literal nesting of the query itself (bounded by its length).
//! * **Time.** A wall-clock deadline, checked at every step, catches natives whose cost grows
//!   with their input (a sort, a regular expression) called many times. The natives whose
//!   single call could take more than linear time are replaced ([`super::compare`]). It is the
//!   one limit that depends on the machine: a record that needs about that long may fail on
//!   one run and pass on a replay (it then lands in one place or the other, never nowhere).
//! * **Memory.** Every allocation the evaluating thread makes is counted by the process's
//!   global allocator ([`hydrant_alloc_meter`], installed by the `hydrant` binary), and each
//!   step compares what the evaluation holds with [`MAX_BYTES`]. This covers every builtin
//!   and every copy jaq makes (a path update on a shared array, `explode`, `@base64`,
//!   `sort`, ...), not a list of operators. One builtin call runs between two steps, so it can
//!   overshoot by its own output: at most about 200 MiB (`split("")` or `explode` of a
//!   4 MiB string, the longest a query can build). The size caps of [`super::natives`]
//!   (strings of 4 MiB, arrays of 2^20 elements) keep each single value small.
//!
//! Running out unwinds the evaluation with [`std::panic::resume_unwind`] (which does not run
//! the panic hook: nothing is printed) and [`evaluate`] turns it into an error for the record.
//! Unwinding is sound here: everything the evaluation touches (its values, iterators and
//! context) is created by it and dropped while unwinding; the compiled filter it reads is
//! immutable. A query cannot catch it: `try` only sees jq errors. Unwinding needs
//! `panic = "unwind"`, which the build enforces below.
//!
//! The thread: a delivery worker's cutter thread is spawned with
//! [`EVALUATOR_THREAD_STACK_BYTES`] and marks itself with [`mark_evaluator_thread`], so records
//! are evaluated inline, without a thread switch. Anywhere else (tests, tools) [`evaluate`]
//! runs the evaluation on a scoped thread of that size. The stack is reserved address space:
//! only the pages a query touches use memory.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use jaq_core::data::{DataT, HasLut};
use jaq_json::Val;

#[cfg(panic = "abort")]
compile_error!(
    "jq evaluation limits unwind the evaluating thread; build with panic = \"unwind\" (the default)"
);

/// Steps one record's evaluation may take (about 0.02 s of CPU in a release build; a `map`
/// over some 14,000 array elements).
pub const MAX_STEPS: u64 = 100_000;
/// Stack the evaluation itself may use, checked at every step.
pub const EVAL_STACK_BYTES: usize = 32 << 20;
/// Stack kept free below [`EVAL_STACK_BYTES`] for what recurses between two steps.
pub const UNCHECKED_STACK_BYTES: usize = 96 << 20;
/// Stack an evaluator thread keeps for its own work above the evaluations it runs.
const THREAD_WORK_STACK_BYTES: usize = 8 << 20;
/// Stack of a thread that evaluates queries inline (reserved address space, not memory).
pub const EVALUATOR_THREAD_STACK_BYTES: usize =
    THREAD_WORK_STACK_BYTES + EVAL_STACK_BYTES + UNCHECKED_STACK_BYTES;
/// Wall-clock time one record's evaluation may take.
pub const MAX_EVAL_TIME: Duration = Duration::from_secs(5);
/// Bytes one evaluation may hold at once (its values, the parsed record, jaq's own state).
pub const MAX_BYTES: u64 = 256 << 20;

/// What an evaluation ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Steps,
    Stack,
    Time,
    Memory,
}

impl Exhausted {
    /// Why the record failed, for its error document.
    pub fn describe(self) -> String {
        match self {
            Exhausted::Steps => format!(
                "the query took more than {MAX_STEPS} evaluation steps on this record (does it \
                 loop or recurse without end?)"
            ),
            Exhausted::Stack => "the query recursed too deeply on this record".to_owned(),
            Exhausted::Time => {
                format!("the query ran longer than {} s on this record", MAX_EVAL_TIME.as_secs())
            }
            Exhausted::Memory => {
                format!("the query held more than {} MiB of values on this record", MAX_BYTES >> 20)
            }
        }
    }
}

/// One evaluation's allowance. Shared by reference with every context clone of the
/// evaluation; single-threaded (values are `Rc`), hence `Cell`s.
pub struct Budget {
    steps_left: Cell<u64>,
    stack_floor: usize,
    deadline: Instant,
}

impl Budget {
    fn new(stack_floor: usize) -> Self {
        Self {
            steps_left: Cell::new(MAX_STEPS),
            stack_floor,
            deadline: Instant::now() + MAX_EVAL_TIME,
        }
    }

    /// Charges `n` steps and checks the stack, the memory held and the clock; unwinds when
    /// one is used up.
    pub fn step(&self, n: u64) {
        let left = self.steps_left.get();
        if left < n {
            resume_unwind(Box::new(Exhausted::Steps));
        }
        self.steps_left.set(left - n);
        if stack_pointer() < self.stack_floor {
            resume_unwind(Box::new(Exhausted::Stack));
        }
        if hydrant_alloc_meter::live_bytes() > MAX_BYTES as isize {
            resume_unwind(Box::new(Exhausted::Memory));
        }
        // Every step, not every few hundred: a builtin call between two steps may be slow (a
        // regular expression over a 4 MiB string), and hundreds of them would each add to the
        // overshoot. Reading the clock costs tens of nanoseconds, a step hundreds.
        if Instant::now() > self.deadline {
            resume_unwind(Box::new(Exhausted::Time));
        }
    }
}

/// The data type the query is compiled for: jaq's values, with the look-up table and the
/// [`Budget`] as the context's data.
pub struct Guarded;

impl DataT for Guarded {
    type V<'a> = Val;
    type Data<'a> = GuardedData<'a>;
}

/// The context's data. jaq clones it on every definition call and every pipe: each clone is
/// a step.
pub struct GuardedData<'a> {
    lut: &'a jaq_core::Lut<Guarded>,
    budget: &'a Budget,
}

impl<'a> GuardedData<'a> {
    pub fn budget(&self) -> &'a Budget {
        self.budget
    }
}

impl Clone for GuardedData<'_> {
    fn clone(&self) -> Self {
        self.budget.step(1);
        Self { lut: self.lut, budget: self.budget }
    }
}

impl<'a> HasLut<'a, Guarded> for GuardedData<'a> {
    fn lut(&self) -> &'a jaq_core::Lut<Guarded> {
        self.lut
    }
}

/// Why an evaluation did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aborted {
    Exhausted(Exhausted),
    /// A panic inside jaq: a bug there, confined to this record.
    Panicked(String),
}

/// Runs `f` with a fresh [`Budget`] on a stack that has room for it (see the module doc),
/// and turns running out (or a panic inside jaq) into [`Aborted`].
pub fn evaluate<T: Send>(
    lut: &jaq_core::Lut<Guarded>,
    f: impl FnOnce(GuardedData<'_>) -> T + Send,
) -> Result<T, Aborted> {
    on_large_stack(move || {
        let budget = Budget::new(stack_pointer().saturating_sub(EVAL_STACK_BYTES));
        let data = GuardedData { lut, budget: &budget };
        // Counts what the evaluation allocates (its values are dropped inside the closure,
        // also when it unwinds, so the count ends near zero).
        let _metering = hydrant_alloc_meter::start();
        catch_unwind(AssertUnwindSafe(|| f(data))).map_err(|payload| {
            match payload.downcast::<Exhausted>() {
                Ok(why) => Aborted::Exhausted(*why),
                Err(payload) => Aborted::Panicked(panic_message(payload)),
            }
        })
    })
}

/// Runs `f` where the stack has [`EVALUATOR_THREAD_STACK_BYTES`] of room: inline on a marked
/// evaluator thread that still has it, else on a scoped thread of that size.
pub fn on_large_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if room_here() {
        return f();
    }
    if EVALUATOR_FLOOR.with(Cell::get) != 0 {
        // A marked thread called deeper than it should: correct, but a thread per record.
        tracing::warn!(
            "jq evaluation handed to a new thread: the evaluator thread's stack is used up"
        );
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("jq-eval".into())
            .stack_size(EVALUATOR_THREAD_STACK_BYTES)
            .spawn_scoped(scope, || {
                mark_evaluator_thread();
                f()
            });
        match handle {
            Ok(handle) => match handle.join() {
                Ok(out) => out,
                Err(payload) => resume_unwind(payload),
            },
            // No thread can be made (out of memory or threads): nothing sound is left to do.
            Err(e) => panic!("cannot start a jq evaluation thread: {e}"),
        }
    })
}

thread_local! {
    /// Lowest stack address an evaluation may reach on this thread (0: not an evaluator).
    static EVALUATOR_FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// Declares that the current thread was spawned with [`EVALUATOR_THREAD_STACK_BYTES`] of
/// stack, so queries are evaluated on it inline (as long as the thread calls them within
/// [`THREAD_WORK_STACK_BYTES`] of where it marked itself). Call it first thing in the thread.
pub fn mark_evaluator_thread() {
    // The thread's own start-up used a little of the top; 1 MiB of slack covers it.
    let floor = stack_pointer().saturating_sub(EVALUATOR_THREAD_STACK_BYTES - (1 << 20));
    EVALUATOR_FLOOR.with(|f| f.set(floor));
}

/// Whether an evaluation starting here has all the stack it may need, so it runs inline.
pub(crate) fn room_here() -> bool {
    let floor = EVALUATOR_FLOOR.with(Cell::get);
    floor != 0 && stack_pointer().saturating_sub(EVAL_STACK_BYTES + UNCHECKED_STACK_BYTES) >= floor
}

/// An address in the current stack frame (stacks grow down on every platform Hydrant runs on).
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "unknown panic".to_owned(),
        },
    }
}
