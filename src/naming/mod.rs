//! S3 object naming, as Amazon Data Firehose does it, made deterministic.
//!
//! - [`java_time`]: Java `DateTimeFormatter` patterns (the `!{timestamp:...}` language).
//! - [`prefix`]: `Prefix` / `ErrorOutputPrefix` templates with `!{namespace:value}`: the one
//!   parser of the language, and Firehose's rules for the two prefixes, which configuration
//!   checks and [`ObjectNamer::new`] both apply.
//! - [`object_key`]: whole keys, `<prefix><stream>-<version>-<time>-<uuid><ext>`, with
//!   Firehose's defaults for missing or expression-free prefixes, and the batch identity that
//!   makes re-delivered batches land on the same key.
//!
//! Everything is parsed once when a destination is configured ([`ObjectNamer::new`]); naming an
//! object only renders pre-parsed tokens into one `String`.

pub mod java_time;
pub mod object_key;
pub mod prefix;

pub use java_time::{JavaDateTimePattern, PatternError};
pub use object_key::{
    error_output_type, BatchIdentity, NamerError, ObjectNamer, Partition, UnnameableRecord,
    DEFAULT_PREFIX_PATTERN,
};
pub use prefix::{
    check_prefixes, CheckedPrefixes, Expression, KeyContext, Namespace, PrefixError, PrefixField,
    PrefixProblem, PrefixTemplate, RenderError, MAX_EVALUATED_PREFIX_CHARS, MAX_PREFIX_CHARS,
    RANDOM_STRING_ALPHABET, RANDOM_STRING_LEN,
};
