//! Native filters that replace or wrap jaq's where one step could otherwise make unbounded
//! work or memory (see [`super::budget`] for the step and stack bounds).
//!
//! * `range/3`, `last/1`, `skip/2` and `_hydrant_array/1` (what `[f]` becomes, see
//!   [`super::rewrite`]) charge one step per value they produce or consume: jaq's own run
//!   natively without touching the budget, so `last(range(1e15))` would spin and `[range(1e9)]`
//!   would fill memory within one "step".
//! * `_hydrant_add/2` and `_hydrant_mul/2` (what `+`, `*`, `+=`, `*=` and string interpolation
//!   become) refuse strings over [`MAX_STRING_BYTES`], arrays and objects over
//!   [`MAX_ITEMS`] and integers over [`MAX_INTEGER_BITS`], so `"x" * 1e12` or forty doublings
//!   of a string fail the record with a clear message (what the evaluation holds in all is
//!   bounded by the allocator, [`super::budget`]).
//! * `tojson`, `_hydrant_tostring` (what `tostring` and interpolation use) write JSON with the
//!   same caps and a depth limit: values built from shared parts (`[., .]` forty times) are
//!   small in memory but huge as text.
//! * `fromjson` parses with serde_json (nesting up to 128 levels): jaq's parser recurses once
//!   per level of the text, so `"[" * 100000 | fromjson` would overflow the stack.
//! * `indices` (behind `index`, `rindex`) and `contains` (behind `inside`) run in
//!   [`super::compare`], in linear time or a step per comparison.
//! * `debug` and `stderr` print nothing: a query must not write records into the server's log.
//!
//! The audit of jaq's natives that are kept. Memory is bounded for all of them by the
//! allocator count ([`super::budget`]); what matters here is the time one call can take
//! before the next step reads the clock:
//!
//! | natives | one call costs | bounded by |
//! |---|---|---|
//! | string and array builtins (`explode`, `implode`, `ascii_*`, `@base64`/`@html`/..., `split`, `ltrimstr`, `reverse`, `keys`, `to_entries`, `tostring`, `length`, ...) | linear in the input (4 MiB or 2^20 elements at most) | the size caps; `what_any_builtin_builds_counts_against_the_memory_limit` |
//! | `sort`, `sort_by`, `group_by`, `unique_by`, `min_by`, `max_by` | `n log n` comparisons | the size caps |
//! | `test`, `match`, `capture`, `splits`, `sub`, `gsub` (the `regex` crate) | linear in the input | the clock at every step; `many_slow_builtin_calls_meet_the_time_limit` |
//! | `indices`, `index`, `rindex`, `contains`, `inside` | replaced ([`super::compare`]) | steps; `indices_and_contains_take_linear_time_or_run_out_of_steps` |
//! | comparing, hashing or printing values built from shared parts (`==`, `sort`, error messages) | the value's unshared size, exponential in its depth | nothing: out of scope, see docs/security.md |

use std::fmt::Write as _;

use jaq_core::native::{v, Fun};
use jaq_core::{Bind, Cv, Error, Exn, Native, ValX, ValXs};
use jaq_json::{Num, Val};

use super::budget::{Budget, Guarded};
use super::compare;

/// Longest string a query may build (records are at most 1,000 KiB).
pub const MAX_STRING_BYTES: usize = 4 << 20;
/// Most elements of an array (or members of an object) a query may build.
pub const MAX_ITEMS: usize = 1 << 20;
/// Widest integer a query may build by multiplication.
pub const MAX_INTEGER_BITS: u64 = 1 << 16;
/// Deepest value `tojson` / `tostring` write.
pub const MAX_TEXT_DEPTH: usize = 10_000;

/// The natives above, named as the compiled query calls them.
pub fn funs() -> impl Iterator<Item = Fun<Guarded>> {
    let fun = || -> Box<[Bind]> { [Bind::Fun(())].into() };
    let var_fun = || -> Box<[Bind]> { [Bind::Var(()), Bind::Fun(())].into() };
    [
        ("range", v(3), Native::<Guarded>::new(range)),
        ("_hydrant_array", fun(), Native::<Guarded>::new(array)),
        ("_hydrant_add", v(2), Native::<Guarded>::new(add)),
        ("_hydrant_mul", v(2), Native::<Guarded>::new(mul)),
        ("_hydrant_tostring", v(0), Native::<Guarded>::new(tostring)),
        ("tojson", v(0), Native::<Guarded>::new(tojson)),
        ("fromjson", v(0), Native::<Guarded>::new(fromjson)),
        ("indices", v(1), Native::<Guarded>::new(compare::indices)),
        ("contains", v(1), Native::<Guarded>::new(compare::contains)),
        ("debug_empty", v(0), Native::<Guarded>::new(|_| Box::new(std::iter::empty()))),
        ("stderr_empty", v(0), Native::<Guarded>::new(|_| Box::new(std::iter::empty()))),
        (
            "last",
            fun(),
            Native::<Guarded>::new(|mut cv| {
                let budget = budget(&cv);
                let (f, fc) = cv.0.pop_fun();
                last_of(budget, f.run((fc, cv.1)))
            })
            .with_paths(|mut cv| {
                let budget = cv.0.data().budget();
                let (f, fc) = cv.0.pop_fun();
                last_of(budget, f.paths((fc, cv.1)))
            }),
        ),
        (
            "skip",
            var_fun(),
            Native::<Guarded>::new(|mut cv| {
                let budget = budget(&cv);
                let ((f, fc), n) = (cv.0.pop_fun(), cv.0.pop_var());
                skip_of(budget, n, f.run((fc, cv.1)))
            })
            .with_paths(|mut cv| {
                let budget = cv.0.data().budget();
                let ((f, fc), n) = (cv.0.pop_fun(), cv.0.pop_var());
                skip_of(budget, n, f.paths((fc, cv.1)))
            }),
        ),
    ]
    .into_iter()
}

/// Names of jaq's natives that [`funs`] replaces.
pub const REPLACED: &[&str] = &[
    "range",
    "last",
    "skip",
    "tojson",
    "fromjson",
    "indices",
    "contains",
    "debug_empty",
    "stderr_empty",
];

fn budget<'a>(cv: &Cv<'a, Guarded>) -> &'a Budget {
    cv.0.data().budget()
}

fn fail<'a, T: 'a>(
    message: impl std::fmt::Display,
) -> Box<dyn Iterator<Item = ValX<'a, T, Val>> + 'a> {
    Box::new(std::iter::once(Err(Exn::from(Error::str(message)))))
}

fn once<'a>(v: Val) -> ValXs<'a, Val> {
    Box::new(std::iter::once(Ok(v)))
}

/// `range($from; $to; $by)` as jaq defines it, one step per value.
fn range(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let budget = budget(&cv);
    let by = cv.0.pop_var();
    let to = cv.0.pop_var();
    let from = cv.0.pop_var();
    let direction = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
    let mut next: ValX<'_, Val> = Ok(from);
    Box::new(std::iter::from_fn(move || match next.clone() {
        Ok(x) => {
            let more = match direction {
                Greater => x < to,
                Less => x > to,
                Equal => x != to,
            };
            more.then(|| {
                budget.step(1);
                std::mem::replace(&mut next, (x + by.clone()).map_err(Exn::from))
            })
        }
        error @ Err(_) => {
            next = Ok(to.clone()); // nothing after an error
            Some(error)
        }
    }))
}

/// The last output of `outputs` (or its first error), one step per output.
fn last_of<'a, T: 'a>(
    budget: &Budget,
    outputs: impl Iterator<Item = ValX<'a, T, Val>>,
) -> Box<dyn Iterator<Item = ValX<'a, T, Val>> + 'a> {
    let mut last = None;
    for output in outputs {
        budget.step(1);
        match output {
            Ok(x) => last = Some(x),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        }
    }
    Box::new(last.map(Ok).into_iter())
}

/// The outputs of `outputs` after the first `n`, one step per output skipped.
fn skip_of<'a, T: 'a>(
    budget: &'a Budget,
    n: Val,
    outputs: impl Iterator<Item = ValX<'a, T, Val>> + 'a,
) -> Box<dyn Iterator<Item = ValX<'a, T, Val>> + 'a> {
    let mut outputs = Box::new(outputs);
    let mut left = n;
    while left > Val::from(0isize) {
        left = match left - Val::from(1isize) {
            Ok(left) => left,
            Err(e) => return Box::new(std::iter::once(Err(Exn::from(e)))),
        };
        budget.step(1);
        match outputs.next() {
            None => return Box::new(std::iter::empty()),
            Some(Err(e)) => return Box::new(std::iter::once(Err(e))),
            Some(Ok(_)) => {}
        }
    }
    outputs
}

/// `[f]`: collects `f`'s outputs, one step per value, at most [`MAX_ITEMS`].
fn array(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let budget = budget(&cv);
    let (f, fc) = cv.0.pop_fun();
    let mut items = Vec::new();
    for output in f.run((fc, cv.1)) {
        budget.step(1);
        match output {
            Ok(x) if items.len() < MAX_ITEMS => items.push(x),
            Ok(_) => return fail(format!("an array would have more than {MAX_ITEMS} elements")),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        }
    }
    once(Val::Arr(items.into()))
}

fn text_len(v: &Val) -> Option<usize> {
    match v {
        Val::TStr(b) | Val::BStr(b) => Some(b.len()),
        _ => None,
    }
}

fn members(v: &Val) -> Option<usize> {
    match v {
        Val::Arr(a) => Some(a.len()),
        Val::Obj(o) => Some(o.len()),
        _ => None,
    }
}

fn integer_bits(n: &Num) -> Option<u64> {
    match n {
        Num::Int(i) => Some(u64::from(isize::BITS - i.unsigned_abs().leading_zeros())),
        Num::BigInt(b) => Some(b.bits()),
        _ => None,
    }
}

/// Checks what `l <op> r` would build before jaq builds it (what it holds is counted by the
/// allocator, [`super::budget`]).
fn check_size(l: &Val, r: &Val, multiply: bool) -> Result<(), String> {
    let too_long = || format!("a string would be longer than {MAX_STRING_BYTES} bytes");
    let too_many = || format!("an array or object would have more than {MAX_ITEMS} members");
    if let (Some(a), Some(b)) = (text_len(l), text_len(r)) {
        if !multiply && a + b > MAX_STRING_BYTES {
            return Err(too_long());
        }
        return Ok(());
    }
    if let (Some(a), Some(b)) = (members(l), members(r)) {
        if a + b > MAX_ITEMS {
            return Err(too_many());
        }
        return Ok(());
    }
    if multiply {
        // A string times a count repeats it.
        let repeat = match (l, r) {
            (s, n @ Val::Num(_)) | (n @ Val::Num(_), s) => text_len(s).map(|len| (len, n)),
            _ => None,
        };
        if let Some((len, count)) = repeat {
            let most = (MAX_STRING_BYTES / len.max(1)) as isize;
            if len > 0 && *count > Val::from(most) {
                return Err(too_long());
            }
            return Ok(());
        }
        if let (Val::Num(a), Val::Num(b)) = (l, r) {
            if let (Some(a), Some(b)) = (integer_bits(a), integer_bits(b)) {
                if a + b > MAX_INTEGER_BITS {
                    return Err(format!("an integer would be wider than {MAX_INTEGER_BITS} bits"));
                }
            }
        }
    }
    Ok(())
}

/// `l + r` within the size caps.
fn add(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let r = cv.0.pop_var();
    let l = cv.0.pop_var();
    if let Err(message) = check_size(&l, &r, false) {
        return fail(message);
    }
    Box::new(std::iter::once((l + r).map_err(Exn::from)))
}

/// `l * r` within the size caps.
fn mul(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let r = cv.0.pop_var();
    let l = cv.0.pop_var();
    if let Err(message) = check_size(&l, &r, true) {
        return fail(message);
    }
    Box::new(std::iter::once((l * r).map_err(Exn::from)))
}

/// `tostring`: strings as they are, anything else as JSON text.
fn tostring(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    if text_len(&cv.1).is_some() {
        return once(cv.1);
    }
    tojson(cv)
}

/// `tojson` within the size and depth caps.
fn tojson(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let mut out = String::new();
    match write_json(&cv.1, &mut out, MAX_STRING_BYTES, MAX_TEXT_DEPTH) {
        Ok(()) => once(Val::from(out)),
        Err(TooBig) => fail(format!(
            "the value is too large to write as text (more than {MAX_STRING_BYTES} bytes or \
             {MAX_TEXT_DEPTH} levels)"
        )),
    }
}

/// `fromjson` with serde_json's nesting limit (128 levels).
fn fromjson(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let (Val::TStr(text) | Val::BStr(text)) = &cv.1 else {
        return fail(format!("{} cannot be parsed as JSON: only a string can", render(&cv.1, 64)));
    };
    match serde_json::from_slice::<Val>(text) {
        Ok(v) => once(v),
        Err(e) => fail(format!("{} cannot be parsed as JSON: {e}", render(&cv.1, 64))),
    }
}

/// The text was cut off at its limit.
#[derive(Debug)]
pub struct TooBig;

/// Writes `v` as compact JSON (jaq's `tojson` format) into `out`, failing once `out` would
/// pass `max_bytes` or the value nests deeper than `depth`.
pub fn write_json(v: &Val, out: &mut String, max_bytes: usize, depth: usize) -> Result<(), TooBig> {
    match v {
        Val::Arr(items) => {
            let depth = depth.checked_sub(1).ok_or(TooBig)?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out, max_bytes, depth)?;
            }
            out.push(']');
        }
        Val::Obj(members) => {
            let depth = depth.checked_sub(1).ok_or(TooBig)?;
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(key, out, max_bytes, depth)?;
                out.push(':');
                write_json(value, out, max_bytes, depth)?;
            }
            out.push('}');
        }
        // Scalars (strings included) are written by jaq itself: its escaping, its numbers.
        scalar => {
            if text_len(scalar).is_some_and(|len| out.len() + len > max_bytes) {
                return Err(TooBig);
            }
            let _ = write!(out, "{scalar}");
        }
    }
    if out.len() > max_bytes {
        return Err(TooBig);
    }
    Ok(())
}

/// `v` as JSON for an error message: at most `max_chars` characters, `…` when cut.
pub fn render(v: &Val, max_chars: usize) -> String {
    let mut out = String::new();
    let cut = write_json(v, &mut out, max_chars * 4, 64).is_err();
    let mut chars = out.char_indices();
    match chars.nth(max_chars) {
        Some((at, _)) => {
            out.truncate(at);
            out.push('…');
        }
        None if cut => out.push('…'),
        None => {}
    }
    out
}

/// `x`'s `Display` text, cut after `max_chars` characters (the writing stops there: jaq's
/// error messages embed whole values, which can be deep or huge).
pub fn capped_display(x: &impl std::fmt::Display, max_chars: usize) -> String {
    struct Capped {
        out: String,
        left: usize,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.left == 0 {
                    return Err(std::fmt::Error);
                }
                self.out.push(c);
                self.left -= 1;
            }
            Ok(())
        }
    }
    let mut capped = Capped { out: String::new(), left: max_chars };
    if write!(capped, "{x}").is_err() && capped.left == 0 {
        capped.out.push('…');
    }
    capped.out
}
