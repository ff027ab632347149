//! The regular-expression natives (`matches`, `split_matches`, `split_`, behind `test`,
//! `match`, `capture`, `scan`, `split/2`, `splits`, `sub` and `gsub`), with a step per match.
//!
//! jaq's own find every match of a global regex in one call and build all of them before
//! returning: `"x" * 4194304 | [match(""; "g")]` makes four million match objects (about
//! 1 GB) and the evaluation's next step comes too late to stop it. Here each match the regex
//! finds goes through [`Budget::step`]: a step for every match that is output, and the clock
//! and memory checks (no step) for an empty match that the `n` flag drops. So a global regex
//! ends after [`super::budget::MAX_STEPS`] matches, as `[...]` ends after as many values,
//! and the memory it builds is checked after every match.
//!
//! Results are jaq's (`jaq-std` 3.0.4, `regex-bites`): the same flags, the same match objects
//! (`offset`, `length`, `string` and `name` for named groups; a group that did not take part
//! is left out), offsets and lengths in characters as `bstr` splits the text. Two differences,
//! where jaq panics: a group that starts before an earlier group (`(?:(a)|(b))+` on `"ba"`)
//! and a match that starts inside a character of invalid UTF-8 get their offsets right
//! instead of failing the record.

use bstr::ByteSlice;
use jaq_core::{Cv, Error, Exn, ValXs};
use jaq_json::Val;
use jaq_std::ValT as _;
use regex_bites::bytes::{Regex, RegexBuilder};

use super::budget::{Budget, Guarded};
use super::compare::BYTES_PER_STEP;

/// The flags jq takes after the regex.
#[derive(Clone, Copy, Default)]
struct Flags {
    /// `g`: every match, not only the first.
    global: bool,
    /// `n`: empty matches are dropped.
    ignore_empty: bool,
    case_insensitive: bool,
    multi_line: bool,
    dot_matches_new_line: bool,
    swap_greed: bool,
    ignore_whitespace: bool,
}

impl Flags {
    fn parse(flags: &str) -> Result<Self, char> {
        let mut out = Self::default();
        for flag in flags.chars() {
            match flag {
                'g' => out.global = true,
                'n' => out.ignore_empty = true,
                'i' => out.case_insensitive = true,
                'm' => out.multi_line = true,
                's' => out.dot_matches_new_line = true,
                'l' => out.swap_greed = true,
                'x' => out.ignore_whitespace = true,
                'p' => {
                    out.multi_line = true;
                    out.dot_matches_new_line = true;
                }
                other => return Err(other),
            }
        }
        Ok(out)
    }

    fn regex(self, re: &str) -> Result<Regex, regex_bites::Error> {
        RegexBuilder::new(re)
            .case_insensitive(self.case_insensitive)
            .multi_line(self.multi_line)
            .dot_matches_new_line(self.dot_matches_new_line)
            .swap_greed(self.swap_greed)
            .ignore_whitespace(self.ignore_whitespace)
            .build()
    }
}

/// Byte offsets to character numbers, for offsets that never go back.
struct CharNumbers<'a> {
    /// (character number, byte offset of its start), the text's end last.
    starts: std::iter::Peekable<std::iter::Enumerate<Box<dyn Iterator<Item = usize> + 'a>>>,
}

impl<'a> CharNumbers<'a> {
    fn new(text: &'a [u8]) -> Self {
        let starts = text.char_indices().map(|(start, _, _)| start).chain([text.len()]);
        let starts: Box<dyn Iterator<Item = usize> + 'a> = Box::new(starts);
        Self { starts: starts.enumerate().peekable() }
    }

    /// The number of the character that starts at `byte` (at or after it, when `byte` is
    /// inside a character). `byte` is at least the one asked before.
    fn at(&mut self, byte: usize) -> usize {
        while self.starts.next_if(|&(_, start)| start < byte).is_some() {}
        self.starts.peek().map_or(0, |&(n, _)| n)
    }
}

/// What one call outputs, in order.
enum Part {
    /// A match: the whole match and each group that took part, with its name.
    Match(Vec<Val>),
    /// The text between two matches.
    Between(Val),
}

/// Runs `re` over `input` like jaq's `regex`, a step per match (see the module doc).
/// `between`: output the text between matches; `matches`: output the matches.
fn scan(
    budget: &Budget,
    input: &Val,
    text: &[u8],
    re: &Regex,
    flags: Flags,
    (between, matches): (bool, bool),
) -> Vec<Part> {
    let mut chars = CharNumbers::new(text);
    let mut out = Vec::new();
    let mut last_end = 0;
    for captures in re.captures_iter(text) {
        let Some(whole) = captures.get(0) else { continue };
        if flags.ignore_empty && whole.is_empty() {
            budget.step(0);
            continue;
        }
        budget.step(1);
        if between {
            out.push(Part::Between(input.as_sub_str(&text[last_end..whole.start()])));
            last_end = whole.end();
        }
        if matches {
            let groups: Vec<_> = captures
                .iter()
                .zip(re.capture_names())
                .filter_map(|(group, name)| Some((group?, name)))
                .collect();
            // Groups can start before an earlier group: number their starts in order.
            let mut by_start: Vec<usize> = (0..groups.len()).collect();
            by_start.sort_by_key(|&i| groups[i].0.start());
            let mut offsets = vec![0; groups.len()];
            for i in by_start {
                offsets[i] = chars.at(groups[i].0.start());
            }
            let objects = groups.iter().zip(offsets).map(|((group, name), offset)| {
                let string = group.as_bytes();
                budget.step((string.len() / BYTES_PER_STEP) as u64);
                let length = string.chars().count();
                let fields = [
                    ("offset", Val::from(offset as isize)),
                    ("length", Val::from(length as isize)),
                    ("string", input.as_sub_str(string)),
                ]
                .into_iter()
                .chain(name.map(|name| ("name", Val::from(name.to_owned()))))
                .map(|(key, value)| (Val::from(key.to_owned()), value));
                Val::obj(fields.collect())
            });
            out.push(Part::Match(objects.collect()));
        }
        if !flags.global {
            break;
        }
    }
    if between {
        out.push(Part::Between(input.as_sub_str(&text[last_end..])));
    }
    out
}

/// A string argument, as jaq's `try_as_str` reads it.
fn text_of(v: &Val) -> Result<&str, Error<Val>> {
    v.try_as_utf8_bytes().and_then(|bytes| std::str::from_utf8(bytes).map_err(Error::str))
}

/// jaq's `re`: the regex and flags from the arguments, run over the input, one array out.
fn run(between: bool, matches: bool, mut cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    let budget = cv.0.data().budget();
    let flags = cv.0.pop_var();
    let re = cv.0.pop_var();
    let out = run_on(budget, &cv.1, &re, &flags, (between, matches));
    Box::new(std::iter::once(out.map_err(Exn::from)))
}

fn run_on(
    budget: &Budget,
    input: &Val,
    re: &Val,
    flags: &Val,
    what: (bool, bool),
) -> Result<Val, Error<Val>> {
    let flags = Flags::parse(text_of(flags)?)
        .map_err(|e| Error::str(format_args!("invalid regex flag: {e}")))?;
    let re =
        flags.regex(text_of(re)?).map_err(|e| Error::str(format_args!("invalid regex: {e}")))?;
    let text = input.try_as_utf8_bytes()?;
    let items: Vec<Val> = scan(budget, input, text, &re, flags, what)
        .into_iter()
        .map(|part| match part {
            Part::Match(groups) => Val::Arr(groups.into()),
            Part::Between(text) => text,
        })
        .collect();
    Ok(Val::Arr(items.into()))
}

/// The `matches/2` native: every match (only the first without `g`).
pub fn matches(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    run(false, true, cv)
}

/// The `split_matches/2` native: the text between matches and the matches, alternating.
pub fn split_matches(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    run(true, true, cv)
}

/// The `split_/2` native: the text between matches.
pub fn split(cv: Cv<'_, Guarded>) -> ValXs<'_, Val> {
    run(true, false, cv)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::processors::extract::{
        mark_evaluator_thread, ExtractError, MetadataExtractor, EVALUATOR_THREAD_STACK_BYTES,
    };

    /// The time limit, plus room for one slow builtin call of a debug build.
    const AFTER_THE_TIME_LIMIT: Duration = Duration::from_secs(12);

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn extract(query: &str, record: &str) -> Result<BTreeMap<String, String>, ExtractError> {
        MetadataExtractor::new(query).unwrap().extract(record.as_bytes())
    }

    fn query_failed_with(query: &str, record: &str, needle: &str) {
        match extract(query, record) {
            Err(ExtractError::QueryFailed { detail }) => {
                assert!(detail.contains(needle), "{query}: {detail}")
            }
            other => panic!("{query}: expected a query failure, got {other:?}"),
        }
    }

    #[test]
    fn character_numbers_never_go_back_and_round_up_inside_a_character() {
        let mut chars = CharNumbers::new("xéaé".as_bytes());
        assert_eq!(chars.at(0), 0);
        assert_eq!(chars.at(1), 1);
        assert_eq!(chars.at(2), 2); // inside `é`: the next character
        assert_eq!(chars.at(4), 3);
        assert_eq!(chars.at(6), 4); // the end
    }

    /// What `query` gives on `record`, how long it took, and the most memory the evaluation held
    /// at once (the allocator's count, as the memory bound reads it).
    fn extract_metered(
        query: &str,
        record: &str,
    ) -> (Result<BTreeMap<String, String>, ExtractError>, Duration, isize) {
        assert!(hydrant_alloc_meter::installed());
        let e = MetadataExtractor::new(query).unwrap();
        let record = record.to_owned();
        std::thread::Builder::new()
            .stack_size(EVALUATOR_THREAD_STACK_BYTES)
            .spawn(move || {
                mark_evaluator_thread();
                let metering = hydrant_alloc_meter::start();
                let started = std::time::Instant::now();
                let out = e.extract(record.as_bytes());
                let took = started.elapsed();
                let peak = hydrant_alloc_meter::peak_bytes();
                drop(metering);
                (out, took, peak)
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_global_regex_over_a_large_string_is_stopped_match_by_match() {
        // Four million matches: jaq's natives built every match object in one call (about 1 GB)
        // before the next step read the memory count.
        for query in [
            r#"{k: ("x" * 4194304) | [match(""; "g")] | length}"#,
            r#"{k: ("x" * 4194304) | test("y|"; "g")}"#,
            r#"{k: ("x" * 4194304) | split(""; null) | length}"#,
            r#"{k: ("x" * 4194304) | gsub("(?<c>.)"; "y") | length}"#,
        ] {
            let (out, took, peak) = extract_metered(query, "{}");
            println!("{took:?} peak {} MiB {query}: {out:?}", peak >> 20);
            match out {
                Err(e @ ExtractError::LimitExceeded { .. }) => {
                    assert_eq!(e.code(), "MetadataExtraction.QueryLimitExceeded")
                }
                other => panic!("{query}: expected a limit, got {other:?}"),
            }
            assert!(
                peak < super::super::budget::MAX_BYTES as isize,
                "{query}: held {} MiB",
                peak >> 20
            );
            assert!(took < AFTER_THE_TIME_LIMIT, "{query}: took {took:?}");
        }
        // What jq gives is unchanged, also where jaq's natives panicked (a group that starts
        // before an earlier one).
        let q = r#"{a: ("a1b22" | [match("(?<d>\\d+)|(?<l>[a-z])"; "g") | [.offset, .length, .string, (.captures | map(.name))]] | tojson),
                   b: ("x, y,z" | split(", *"; null) | tojson), c: ("a-b-c" | sub("-"; "+")),
                   d: ("abc" | [match("x*"; "gn")] | length), e: ("ab" | [scan("(a)(b)")] | tojson),
                   f: ("éxé" | [match("x|é"; "g") | .offset] | tojson), g: ("AB" | test("b"; "xi")),
                   h: ("ba" | [match("(?:(a)|(b))+") | .captures[] | .offset] | tojson),
                   i: ("a,b" | [splits(",")] | tojson), j: ("aXbX" | [match("x"; "gi").string] | tojson)}"#;
        assert_eq!(
            extract(q, "{}").unwrap(),
            keys(&[
                ("a", r#"[[0,1,"a",["l"]],[1,1,"1",["d"]],[2,1,"b",["l"]],[3,2,"22",["d"]]]"#),
                ("b", r#"["x","y","z"]"#),
                ("c", "a+b-c"),
                ("d", "0"),
                ("e", r#"[["a","b"]]"#),
                ("f", "[0,1,2]"),
                ("g", "true"),
                ("h", "[1,0]"),
                ("i", r#"["a","b"]"#),
                ("j", r#"["X","X"]"#),
            ])
        );
        // Bad arguments fail as in jaq.
        query_failed_with(r#"{k: ("a" | test("a"; "q"))}"#, "{}", "invalid regex flag: q");
        query_failed_with(r#"{k: ("a" | test("("))}"#, "{}", "invalid regex");
        query_failed_with(r#"{k: (1 | test("a"))}"#, "{}", "string");
    }
}
