//! Parsing, the prefix rules and rendering, on the developer guide's examples.

use super::render::push_random_string;
use super::*;
use crate::naming::PatternError;
use chrono_tz::UTC;
use std::collections::BTreeMap;

/// 10:30 UTC, 27 Aug 2018: the instant of the DG examples.
const DG_MS: i64 = 1_535_365_800_000;

fn ctx(arrival_ms: i64) -> KeyContext<'static> {
    KeyContext {
        arrival_ms,
        tz: UTC,
        seed: [7; 16],
        error_output_type: None,
        partition_keys_query: None,
        partition_keys_lambda: None,
    }
}

fn render(template: &str, ctx: &KeyContext<'_>) -> String {
    PrefixTemplate::parse(template)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
        .render(ctx)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

#[test]
fn timestamp_expressions_render_java_patterns_at_the_arrival_instant() {
    assert_eq!(render("!{timestamp:yyyy}", &ctx(DG_MS)), "2018");
    assert_eq!(
        render("dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/", &ctx(DG_MS)),
        "dt=2018-08-27/h=10/"
    );
    assert_eq!(render("!{timestamp:HH:mm}", &ctx(DG_MS)), "10:30");
}

#[test]
fn text_without_expressions_is_kept_verbatim_including_lone_braces_and_bangs() {
    let t = PrefixTemplate::parse("a!b{c}/!/{").unwrap();
    assert!(!t.has_expressions());
    assert_eq!(t.render(&ctx(DG_MS)).unwrap(), "a!b{c}/!/{");
    assert_eq!(t.to_string(), "a!b{c}/!/{");
}

#[test]
fn has_expressions_and_uses_report_what_the_template_contains() {
    let t = PrefixTemplate::parse(
        "!{partitionKeyFromQuery:c}/!{firehose:random-string}/!{timestamp:yyyy}",
    )
    .unwrap();
    assert!(t.has_expressions());
    assert!(t.uses(Namespace::PartitionKeyFromQuery));
    assert!(t.uses(Namespace::Firehose));
    assert!(t.uses(Namespace::Timestamp));
    assert!(!t.uses(Namespace::PartitionKeyFromLambda));
    assert_eq!(
        t.expressions().collect::<Vec<_>>(),
        [
            Expression::PartitionKeyFromQuery("c"),
            Expression::RandomString,
            Expression::Timestamp("yyyy"),
        ]
    );
}

#[test]
fn random_string_is_eleven_lowercase_alphanumerics_and_differs_per_occurrence() {
    let s = render("!{firehose:random-string}/!{firehose:random-string}", &ctx(DG_MS));
    let (a, b) = s.split_once('/').unwrap();
    for part in [a, b] {
        assert_eq!(part.len(), RANDOM_STRING_LEN, "{part}");
        assert!(part.bytes().all(|c| RANDOM_STRING_ALPHABET.contains(&c)), "{part}");
    }
    assert_ne!(a, b);
}

#[test]
fn random_string_depends_only_on_the_seed_and_occurrence() {
    let t = PrefixTemplate::parse("!{firehose:random-string}").unwrap();
    let mut c = ctx(DG_MS);
    let first = t.render(&c).unwrap();
    c.arrival_ms += 3_600_000;
    assert_eq!(t.render(&c).unwrap(), first, "time must not matter");
    c.seed[0] ^= 1;
    assert_ne!(t.render(&c).unwrap(), first, "the seed must matter");
}

#[test]
fn partition_keys_come_from_their_own_namespace_and_missing_ones_are_named() {
    let query = BTreeMap::from([("customer_id".to_owned(), "42".to_owned())]);
    let lambda = BTreeMap::from([("device".to_owned(), "phone".to_owned())]);
    let t = PrefixTemplate::parse(
        "customer_id=!{partitionKeyFromQuery:customer_id}/device=!{partitionKeyFromLambda:device}/",
    )
    .unwrap();
    let mut c = ctx(DG_MS);
    c.partition_keys_query = Some(&query);
    c.partition_keys_lambda = Some(&lambda);
    assert_eq!(t.render(&c).unwrap(), "customer_id=42/device=phone/");

    c.partition_keys_lambda = Some(&query);
    let err = t.render(&c).unwrap_err();
    assert_eq!(
        err,
        RenderError::MissingPartitionKey {
            namespace: Namespace::PartitionKeyFromLambda,
            key: "device".into()
        }
    );
    assert!(err.to_string().contains("!{partitionKeyFromLambda:device}"), "{err}");
    c.partition_keys_query = None;
    assert!(matches!(
        t.render(&c),
        Err(RenderError::MissingPartitionKey { namespace: Namespace::PartitionKeyFromQuery, .. })
    ));
}

#[test]
fn error_output_type_renders_every_occurrence_and_is_required() {
    let t = PrefixTemplate::parse("!{firehose:error-output-type}/x/!{firehose:error-output-type}")
        .unwrap();
    let mut c = ctx(DG_MS);
    assert_eq!(t.render(&c), Err(RenderError::MissingErrorOutputType));
    c.error_output_type = Some("processing-failed");
    assert_eq!(t.render(&c).unwrap(), "processing-failed/x/processing-failed");
}

#[test]
fn evaluated_prefix_longer_than_512_characters_is_rejected() {
    let ok = "é".repeat(512);
    assert_eq!(render(&ok, &ctx(DG_MS)), ok, "512 two-byte chars are 512 chars");
    let t = PrefixTemplate::parse(&format!("{}!{{timestamp:yyyy}}", "a".repeat(509))).unwrap();
    assert_eq!(t.render(&ctx(DG_MS)), Err(RenderError::PrefixTooLong { chars: 513 }));
}

#[test]
fn arrival_time_outside_the_calendar_is_an_error_not_a_panic() {
    let t = PrefixTemplate::parse("!{timestamp:yyyy}").unwrap();
    assert_eq!(
        t.render(&ctx(i64::MAX)),
        Err(RenderError::ArrivalOutOfRange { arrival_ms: i64::MAX })
    );
}

fn parse_err(s: &str) -> PrefixError {
    PrefixTemplate::parse(s).expect_err(s)
}

#[test]
fn unknown_namespace_is_rejected_naming_the_expression_and_position() {
    let err = parse_err("logs/!{foo:bar}/");
    assert_eq!(
        err,
        PrefixError::UnknownNamespace {
            expression: "!{foo:bar}".into(),
            position: 5,
            namespace: "foo".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("`!{foo:bar}`") && msg.contains("unknown namespace `foo`"), "{msg}");
}

#[test]
fn unterminated_expression_is_rejected_naming_it() {
    let err = parse_err("x/!{timestamp:yyyy");
    assert_eq!(
        err,
        PrefixError::Unterminated { expression: "!{timestamp:yyyy".into(), position: 2 }
    );
    assert!(err.to_string().contains("!{timestamp:yyyy"), "{err}");
}

#[test]
fn unknown_firehose_value_is_rejected_naming_it() {
    let err = parse_err("!{firehose:nope}");
    assert!(matches!(err, PrefixError::UnknownFirehoseValue { position: 0, .. }));
    assert!(err.to_string().contains("!{firehose:nope}"), "{err}");
}

#[test]
fn malformed_and_empty_expressions_are_rejected() {
    assert!(matches!(parse_err("!{timestamp}"), PrefixError::Malformed { .. }));
    assert!(matches!(parse_err("!{}"), PrefixError::Malformed { .. }));
    assert!(matches!(parse_err("!{timestamp:}"), PrefixError::EmptyValue { .. }));
    assert!(matches!(parse_err("!{partitionKeyFromQuery:}"), PrefixError::EmptyValue { .. }));
    // A value of white space only names nothing either.
    assert!(matches!(parse_err("!{partitionKeyFromQuery: }"), PrefixError::EmptyValue { .. }));
    assert!(matches!(parse_err("!{timestamp:\t}"), PrefixError::EmptyValue { .. }));
    assert!(matches!(parse_err("!{timestamp:!{x}"), PrefixError::Nested { position: 0, .. }));
    assert!(matches!(parse_err("!{Timestamp:yyyy}"), PrefixError::UnknownNamespace { .. }));
    assert!(matches!(
        parse_err("!{firehose:Random-String}"),
        PrefixError::UnknownFirehoseValue { .. }
    ));
}

#[test]
fn invalid_timestamp_patterns_are_rejected_naming_the_letter_and_expression() {
    let err = parse_err("ü/!{timestamp:yyyy-bb}");
    assert!(
        matches!(
            &err,
            PrefixError::InvalidTimestampPattern {
                position: 2,
                source: PatternError::UnknownLetter { letter: 'b', position: 5 },
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("!{timestamp:yyyy-bb}") && msg.contains("'b'"), "{msg}");
}

#[test]
fn parse_stops_at_the_first_invalid_expression_and_parse_all_reports_each() {
    assert!(matches!(
        parse_err("!{a:b}/!{timestamp:yyyy}/!{c:d}"),
        PrefixError::UnknownNamespace { position: 0, .. }
    ));
    let (template, errors) = PrefixTemplate::parse_all("!{a:b}/!{timestamp:yyyy}/!{c:d}");
    let positions: Vec<_> = errors
        .iter()
        .map(|e| match e {
            PrefixError::UnknownNamespace { position, .. } => *position,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(positions, [0, 25]);
    // The invalid expressions stay as text; the valid one is still an expression.
    assert_eq!(template.expressions().collect::<Vec<_>>(), [Expression::Timestamp("yyyy")]);
    assert_eq!(template.as_str(), "!{a:b}/!{timestamp:yyyy}/!{c:d}");
}

// The prefix rules (rules.rs), on the developer guide's examples.

const DG_TIMESTAMP_PREFIX: &str =
    "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/";
const DG_ERROR_PREFIX: &str = "myFirehoseFailures/!{firehose:error-output-type}/";

fn ok(prefix: Option<&str>, error: Option<&str>, dp: bool) -> CheckedPrefixes {
    check_prefixes(prefix, error, dp).unwrap_or_else(|p| panic!("{prefix:?} / {error:?}: {p:#?}"))
}

fn bad(prefix: Option<&str>, error: Option<&str>, dp: bool, expect: &str) -> Vec<PrefixProblem> {
    let problems = check_prefixes(prefix, error, dp).expect_err(expect);
    assert!(
        problems.iter().any(|p| p.to_string().contains(expect)),
        "{prefix:?} / {error:?}: expected a problem containing {expect:?}, got {problems:#?}"
    );
    problems
}

#[test]
fn the_dg_examples_are_accepted() {
    ok(None, Some(DG_ERROR_PREFIX), false);
    let checked = ok(Some(DG_TIMESTAMP_PREFIX), Some(DG_ERROR_PREFIX), false);
    assert_eq!(checked.prefix.as_str(), DG_TIMESTAMP_PREFIX);
    assert_eq!(checked.error_output_prefix.as_str(), DG_ERROR_PREFIX);
    ok(
        Some("dt=!{timestamp:yyyy'-'MM'-'dd}/"),
        Some("errors/!{firehose:error-output-type}/"),
        false,
    );
    ok(Some("myFirehosePrefix/"), None, false);
    let unset = ok(None, None, false);
    assert_eq!((unset.prefix.as_str(), unset.error_output_prefix.as_str()), ("", ""));
}

#[test]
fn rule_1_accepts_every_known_expression() {
    let checked = ok(
        Some("a/!{timestamp:yyyy}/!{firehose:random-string}/!{partitionKeyFromQuery:k}/!{partitionKeyFromLambda:l}"),
        Some(DG_ERROR_PREFIX),
        true,
    );
    assert_eq!(
        checked.prefix.expressions().collect::<Vec<_>>(),
        [
            Expression::Timestamp("yyyy"),
            Expression::RandomString,
            Expression::PartitionKeyFromQuery("k"),
            Expression::PartitionKeyFromLambda("l"),
        ]
    );
    ok(
        Some("r/!{firehose:random-string}/"),
        Some("e/!{firehose:random-string}/!{firehose:error-output-type}/"),
        false,
    );
    // `{`, `}` and `!` on their own are plain text.
    ok(Some("a{b}!c/!x{/"), None, false);
}

#[test]
fn rule_1_rejects_a_bang_brace_that_is_not_a_valid_expression() {
    let e = Some(DG_ERROR_PREFIX);
    bad(Some("data/!{timestamp:yyyy"), e, false, "without a closing");
    bad(Some("data/!{yyyy}/"), e, false, "expected !{namespace:value}");
    bad(Some("data/!{Timestamp:yyyy}/"), e, false, "unknown namespace `Timestamp`");
    bad(Some("data/!{firehose:uuid}/"), e, false, "not `uuid`");
    bad(Some("data/!{timestamp:}/"), e, false, "is empty");
    bad(Some("data/!{partitionKeyFromQuery: }/"), e, true, "is empty");
    bad(Some("data/!{timestamp:!{x}}/"), e, false, "cannot be nested");
    bad(Some("data/!{timestamp:yyyy-bb}/"), e, false, "unknown pattern letter 'b'");
    bad(Some("data/!{timestamp:yyyy'}/"), e, false, "is not closed");
    let problems = bad(None, Some("errors/!{oops:x}/"), false, "unknown namespace");
    assert_eq!(problems[0].field(), PrefixField::ErrorOutputPrefix);
}

#[test]
fn rule_1_reports_every_invalid_expression() {
    let problems =
        check_prefixes(Some("!{a:b}/!{c:d}/"), Some(DG_ERROR_PREFIX), false).unwrap_err();
    let invalid: Vec<_> =
        problems.iter().filter(|p| matches!(p, PrefixProblem::Invalid { .. })).collect();
    assert_eq!(invalid.len(), 2, "{problems:#?}");
    assert!(invalid[0].to_string().contains("invalid expression `!{a:b}`"));
    assert!(invalid[1].to_string().contains("invalid expression `!{c:d}`"));
}

#[test]
fn rule_2_prefix_with_expressions_needs_an_error_output_prefix() {
    let problems = bad(Some(DG_TIMESTAMP_PREFIX), None, false, "is required because Prefix");
    assert_eq!(problems[0].field(), PrefixField::ErrorOutputPrefix);
    bad(Some(DG_TIMESTAMP_PREFIX), Some(""), false, "is required");
    ok(Some(DG_TIMESTAMP_PREFIX), Some(DG_ERROR_PREFIX), false);
    // A prefix without expressions needs no error prefix.
    ok(Some("myFirehosePrefix/"), None, false);
    // An invalid expression is no expression for this rule (rule 1 reports it).
    let problems = check_prefixes(Some("!{bogus:x}/"), None, false).unwrap_err();
    assert!(matches!(problems[..], [PrefixProblem::Invalid { .. }]), "{problems:#?}");
}

#[test]
fn rule_3_error_output_prefix_with_expressions_names_the_error_type() {
    bad(None, Some("errors/!{timestamp:yyyy}/"), false, "not !{firehose:error-output-type}");
    ok(None, Some("errors/"), false);
    ok(None, Some("errors/!{firehose:error-output-type}/!{timestamp:yyyy}/"), false);
}

#[test]
fn rule_4_prefix_must_not_contain_the_error_type() {
    let problems = bad(
        Some("data/!{firehose:error-output-type}/"),
        Some(DG_ERROR_PREFIX),
        false,
        "allowed only in ErrorOutputPrefix",
    );
    assert_eq!(problems[0].field(), PrefixField::Prefix);
    ok(Some("data/!{firehose:random-string}/"), Some(DG_ERROR_PREFIX), false);
}

#[test]
fn rule_5_partition_keys_need_dynamic_partitioning_and_stay_out_of_the_error_prefix() {
    let prefix = Some("data/customer_id=!{partitionKeyFromQuery:customer_id}/");
    ok(prefix, Some(DG_ERROR_PREFIX), true);
    bad(prefix, Some(DG_ERROR_PREFIX), false, "needs dynamic partitioning");
    bad(
        Some("data/!{partitionKeyFromLambda:k}/"),
        Some(DG_ERROR_PREFIX),
        false,
        "needs dynamic partitioning",
    );
    bad(
        prefix,
        Some("errors/!{firehose:error-output-type}/!{partitionKeyFromQuery:customer_id}/"),
        true,
        "allowed only in Prefix",
    );
}

#[test]
fn rule_6_prefixes_are_at_most_1024_characters() {
    let max = "a".repeat(1024);
    ok(Some(&max), Some(&max), false);
    let long = "a".repeat(1025);
    let problems = bad(Some(&long), None, false, "is 1025 characters long");
    assert_eq!(problems[0].field(), PrefixField::Prefix);
    let problems = bad(None, Some(&long), false, "is 1025 characters long");
    assert_eq!(problems[0].field(), PrefixField::ErrorOutputPrefix);
}

#[test]
fn messages_start_with_the_field_name() {
    let problems = check_prefixes(Some("!{firehose:error-output-type}"), None, false).unwrap_err();
    for problem in &problems {
        assert!(problem.to_string().starts_with(problem.field().as_str()), "{problem}");
    }
    let fields: Vec<_> = problems.iter().map(PrefixProblem::field).collect();
    assert!(fields.contains(&PrefixField::Prefix), "{problems:?}");
    assert!(fields.contains(&PrefixField::ErrorOutputPrefix), "{problems:?}");
}

#[test]
fn the_messages_are_pinned() {
    // Config files, scripts and the API's InvalidArgumentException show these words.
    let message = |prefix: &str, error: Option<&str>| {
        check_prefixes(Some(prefix), error, false)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        message("d/!{timestamp:yyyy}/", None),
        ["ErrorOutputPrefix is required because Prefix \"d/!{timestamp:yyyy}/\" contains \
          expressions (Firehose: \"ErrorOutputPrefix can't be null when Prefix contains \
          expressions\"); add e.g. ErrorOutputPrefix: \"errors/!{firehose:error-output-type}/\""]
    );
    assert_eq!(
        message("d/!{foo:x}/!{timestamp:", Some(DG_ERROR_PREFIX)),
        [
            "Prefix has an invalid expression `!{foo:x}`: unknown namespace `foo`; use \
             timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda (names are \
             case-sensitive)",
            "Prefix has `!{` without a closing `}` in \"!{timestamp:\"; an expression has the \
             form !{namespace:value} with namespace timestamp, firehose, partitionKeyFromQuery \
             or partitionKeyFromLambda",
        ]
    );
    assert_eq!(
        message("d/!{timestamp:yyyy-bb}/", Some(DG_ERROR_PREFIX)),
        ["Prefix has an invalid expression `!{timestamp:yyyy-bb}`: the pattern `yyyy-bb` is not \
          a Java DateTimeFormatter pattern: unknown pattern letter 'b' at position 5; e.g. \
          !{timestamp:yyyy/MM/dd} or !{timestamp:yyyy'-'MM'-'dd}"]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(s in "(\\PC|!\\{|\\}|:){0,30}") {
            let _ = PrefixTemplate::parse(&s);
        }

        #[test]
        fn parse_fails_exactly_when_parse_all_reports_an_error(s in "(\\PC|!\\{|\\}|:|timestamp|firehose){0,30}") {
            let (template, errors) = PrefixTemplate::parse_all(&s);
            match PrefixTemplate::parse(&s) {
                Ok(parsed) => {
                    prop_assert!(errors.is_empty());
                    prop_assert_eq!(parsed, template);
                }
                Err(first) => prop_assert_eq!(Some(&first), errors.first()),
            }
        }

        #[test]
        fn text_without_bang_brace_renders_to_itself(s in "[^!]{0,100}") {
            let t = PrefixTemplate::parse(&s).unwrap();
            prop_assert!(!t.has_expressions());
            prop_assert_eq!(t.render(&ctx(DG_MS)).unwrap(), s);
        }

        #[test]
        fn random_strings_are_always_eleven_alphabet_characters(seed in any::<[u8; 16]>(), index in any::<u32>()) {
            let mut out = String::new();
            push_random_string(&mut out, &seed, index);
            prop_assert_eq!(out.len(), RANDOM_STRING_LEN);
            prop_assert!(out.bytes().all(|c| RANDOM_STRING_ALPHABET.contains(&c)));
        }
    }
}
