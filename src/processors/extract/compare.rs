//! `indices` (and with it `index`, `rindex`) and `contains` (and with it `inside`), with work
//! bounded by the [`Budget`].
//!
//! jaq's own run inside one native call without a step: `indices` compares every window
//! (`("a" * 4e6) | indices("a" * 2e6 + "b")` is 4·10^12 byte comparisons) and array `contains`
//! tests every element against every element, recursively. No step means no clock check,
//! so one call could pin a core for minutes. Here:
//!
//! * `indices` finds every (overlapping) match in linear time (Knuth–Morris–Pratt), charges a
//!   step per [`BYTES_PER_STEP`] bytes scanned and per match, and compares array elements with
//!   [`equal`];
//! * `contains` charges a step per pair it compares, so the quadratic case runs out of steps;
//! * [`equal`] charges a step per value it visits (and per [`BYTES_PER_STEP`] string bytes):
//!   values built from shared parts (`[., .]` forty times) are small in memory but have 2^40
//!   leaves to compare.
//!
//! Results are jaq's: string offsets count characters (as `char_indices` splits the string),
//! byte strings count bytes, and `contains` is true for equal values of other types.

use std::rc::Rc;

use bstr::ByteSlice;
use jaq_core::{Cv, Error, Exn, ValXs};
use jaq_json::Val;

use super::budget::{Budget, Guarded};

/// Bytes compared or scanned per step (a step is a few hundred nanoseconds of work).
pub const BYTES_PER_STEP: usize = 4096;

fn charge_bytes(budget: &Budget, bytes: usize) {
    budget.step(1 + (bytes / BYTES_PER_STEP) as u64);
}

/// `a == b` as jaq defines it, a step per value visited.
pub fn equal(budget: &Budget, a: &Val, b: &Val) -> bool {
    budget.step(1);
    match (a, b) {
        (Val::BStr(x) | Val::TStr(x), Val::BStr(y) | Val::TStr(y)) => {
            charge_bytes(budget, x.len().min(y.len()));
            x == y
        }
        (Val::Arr(x), Val::Arr(y)) => {
            Rc::ptr_eq(x, y)
                || (x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| equal(budget, x, y)))
        }
        (Val::Obj(x), Val::Obj(y)) => {
            Rc::ptr_eq(x, y)
                || (x.len() == y.len()
                    && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(budget, v, w))))
        }
        _ => a == b,
    }
}

/// `l | contains(r)` as jaq defines it, a step per pair compared.
pub fn contains_in(budget: &Budget, l: &Val, r: &Val) -> bool {
    budget.step(1);
    match (l, r) {
        (Val::BStr(l), Val::BStr(r)) | (Val::TStr(l), Val::TStr(r)) => {
            // A two-way search: linear in both lengths.
            charge_bytes(budget, l.len() + r.len());
            let (l, r): (&[u8], &[u8]) = (l, r);
            l.contains_str(r)
        }
        (Val::Arr(l), Val::Arr(r)) => r.iter().all(|r| l.iter().any(|l| contains_in(budget, l, r))),
        (Val::Obj(l), Val::Obj(r)) => {
            r.iter().all(|(k, r)| l.get(k).is_some_and(|l| contains_in(budget, l, r)))
        }
        _ => equal(budget, l, r),
    }
}

/// The start of every (overlapping) occurrence of `needle` in `haystack`, in order, in
/// `O(|haystack| + |needle|)` calls of `eq` (Knuth–Morris–Pratt). `needle` is not empty.
fn occurrences<T>(haystack: &[T], needle: &[T], eq: impl Fn(&T, &T) -> bool) -> Vec<usize> {
    let m = needle.len();
    // border[i]: length of the longest proper border of needle[..=i].
    let mut border = vec![0usize; m];
    let mut k = 0;
    for i in 1..m {
        while k > 0 && !eq(&needle[i], &needle[k]) {
            k = border[k - 1];
        }
        if eq(&needle[i], &needle[k]) {
            k += 1;
        }
        border[i] = k;
    }
    let mut found = Vec::new();
    let mut k = 0;
    for (i, x) in haystack.iter().enumerate() {
        while k > 0 && !eq(x, &needle[k]) {
            k = border[k - 1];
        }
        if eq(x, &needle[k]) {
            k += 1;
        }
        if k == m {
            found.push(i + 1 - m);
            k = border[k - 1];
        }
    }
    found
}

/// The character numbers of the byte offsets `starts` (ascending) that begin a character of
/// `text` (as jaq's `char_indices` splits it, invalid UTF-8 included).
fn char_numbers(text: &[u8], starts: &[usize]) -> Vec<usize> {
    let mut chars = text.char_indices().map(|(start, _, _)| start).enumerate().peekable();
    let mut out = Vec::with_capacity(starts.len());
    for &at in starts {
        while chars.next_if(|&(_, start)| start < at).is_some() {}
        if let Some(&(n, start)) = chars.peek() {
            if start == at {
                out.push(n);
            }
        }
    }
    out
}

/// `x | indices(y)`.
fn indices_of(budget: &Budget, x: &Val, y: &Val) -> Result<Vec<usize>, Error<Val>> {
    let found = match (x, y) {
        (Val::BStr(_), Val::BStr(y)) | (Val::TStr(_), Val::TStr(y)) if y.is_empty() => Vec::new(),
        (Val::TStr(x), Val::TStr(y)) => {
            charge_bytes(budget, x.len() + y.len());
            let bytes = occurrences(x, y, |a, b| a == b);
            char_numbers(x, &bytes)
        }
        (Val::BStr(x), Val::BStr(y)) => {
            charge_bytes(budget, x.len() + y.len());
            occurrences(x, y, |a, b| a == b)
        }
        (Val::Arr(_), Val::Arr(y)) if y.is_empty() => Vec::new(),
        (Val::Arr(x), Val::Arr(y)) => occurrences(x, y, |a, b| equal(budget, a, b)),
        (Val::Arr(x), y) => {
            x.iter().enumerate().filter(|(_, x)| equal(budget, x, y)).map(|(i, _)| i).collect()
        }
        (x, y) => return Err(Error::index(x.clone(), y.clone())),
    };
    budget.step(found.len() as u64);
    Ok(found)
}

/// The `indices/1` native.
pub fn indices(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let budget = cv.0.data().budget();
    let y = cv.0.pop_var();
    let out = indices_of(budget, &cv.1, &y).map(|found| {
        let items: Vec<Val> = found.into_iter().map(|i| Val::from(i as isize)).collect();
        Val::Arr(items.into())
    });
    Box::new(std::iter::once(out.map_err(Exn::from)))
}

/// The `contains/1` native.
pub fn contains(mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let budget = cv.0.data().budget();
    let y = cv.0.pop_var();
    Box::new(std::iter::once(Ok(Val::from(contains_in(budget, &cv.1, &y)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_overlap_and_take_linear_comparisons() {
        assert_eq!(occurrences(b"aaaa", b"aa", |a, b| a == b), [0, 1, 2]);
        assert_eq!(occurrences(b"abcabcab", b"cab", |a, b| a == b), [2, 5]);
        assert_eq!(occurrences(b"ab", b"abc", |a, b| a == b), Vec::<usize>::new());
        let calls = std::cell::Cell::new(0usize);
        let hay = vec![b'a'; 100_000];
        let mut needle = vec![b'a'; 50_000];
        needle.push(b'b');
        let found = occurrences(&hay, &needle, |a, b| {
            calls.set(calls.get() + 1);
            a == b
        });
        assert!(found.is_empty());
        assert!(calls.get() < 4 * (hay.len() + needle.len()), "{}", calls.get());
    }

    #[test]
    fn character_numbers_follow_the_characters() {
        let text = "xéaé".as_bytes();
        assert_eq!(char_numbers(text, &[1, 4]), [1, 3]);
        // An offset inside a character is no match.
        assert_eq!(char_numbers(text, &[2]), Vec::<usize>::new());
    }
}
