//! Write a Hydrant record transform as one Rust function.
//!
//! Hydrant runs transforms where Amazon Data Firehose would invoke a Lambda function: once per
//! buffered batch of records, and each record comes back `Ok` (with new bytes and optional
//! partition keys), `Dropped`, or `ProcessingFailed`. A transform is a WebAssembly module
//! built for `wasm32-wasip1` as a `cdylib`; this crate generates the exports Hydrant calls
//! (the ABI is described byte by byte in Hydrant's `docs/transforms.md`).
//!
//! Three forms, one per module:
//!
//! ```ignore
//! use hydrant_transform_sdk::{Outcome, Record};
//!
//! // 1. One record at a time (fastest; the binary ABI, no JSON or base64 involved).
//! hydrant_transform_sdk::transform!(fn shout(record: Record) -> Outcome {
//!     Outcome::ok(record.data.to_ascii_uppercase())
//! });
//!
//! // 2. The whole batch at once: outcome i belongs to record i.
//! fn dedupe(batch: Batch) -> Vec<Outcome> { /* ... */ }
//! hydrant_transform_sdk::transform_batch!(dedupe);
//!
//! // 3. Firehose's JSON event and response (feature `json`), for porting a Lambda.
//! fn handler(event: KinesisFirehoseEvent) -> KinesisFirehoseResponse { /* ... */ }
//! hydrant_transform_sdk::transform_json!(handler);
//! ```
//!
//! A panic fails the whole invocation (Hydrant retries it, then sends every record of the
//! batch to the error output as `Lambda.FunctionError`); the panic message, which goes to
//! stderr, ends up in the error message. Use `Outcome::failed` to fail a single record.
//!
//! Build with `panic = "abort"` and `crate-type = ["cdylib"]`; the examples show the setup.

pub mod abi;
#[cfg(feature = "json")]
pub mod json;

#[doc(hidden)]
pub mod glue;

pub use abi::{Batch, Outcome, Record, ABI_VERSION};

/// Exports a per-record transform: `fn(Record) -> Outcome`.
///
/// Either name a function, `transform!(my_fn);`, or define it inside the macro,
/// `transform!(fn my_fn(record: Record) -> Outcome { ... });`.
#[macro_export]
macro_rules! transform {
    (fn $name:ident $($rest:tt)*) => {
        fn $name $($rest)*
        $crate::transform!($name);
    };
    ($f:path) => {
        $crate::__exports!();
        #[unsafe(no_mangle)]
        pub extern "C" fn hydrant_transform(ptr: i32, len: i32) -> i64 {
            $crate::glue::run_records(ptr, len, $f)
        }
    };
}

/// Exports a whole-batch transform: `fn(Batch) -> Vec<Outcome>`, outcome `i` for record `i`.
#[macro_export]
macro_rules! transform_batch {
    (fn $name:ident $($rest:tt)*) => {
        fn $name $($rest)*
        $crate::transform_batch!($name);
    };
    ($f:path) => {
        $crate::__exports!();
        #[unsafe(no_mangle)]
        pub extern "C" fn hydrant_transform(ptr: i32, len: i32) -> i64 {
            $crate::glue::run_batch(ptr, len, $f)
        }
    };
}

/// Exports a transform over Firehose's JSON event:
/// `fn(json::KinesisFirehoseEvent) -> json::KinesisFirehoseResponse` (feature `json`).
#[cfg(feature = "json")]
#[macro_export]
macro_rules! transform_json {
    (fn $name:ident $($rest:tt)*) => {
        fn $name $($rest)*
        $crate::transform_json!($name);
    };
    ($f:path) => {
        $crate::__exports!();
        #[unsafe(no_mangle)]
        pub extern "C" fn hydrant_transform_json(ptr: i32, len: i32) -> i64 {
            $crate::glue::run_json(ptr, len, $f)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __exports {
    () => {
        #[unsafe(no_mangle)]
        pub extern "C" fn hydrant_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn hydrant_alloc(len: i32) -> i32 {
            $crate::glue::alloc(len)
        }
    };
}
