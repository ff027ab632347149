use super::*;

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn extract(query: &str, record: &str) -> Result<BTreeMap<String, String>, ExtractError> {
    MetadataExtractor::new(query).unwrap().extract(record.as_bytes())
}

const FIREHOSE_EXAMPLE: &str =
    r#"{customer_id:.customer_id, device:.type.device, day:(.ts/1000|strftime("%Y-%m-%d"))}"#;

#[test]
fn the_firehose_md_example_with_strftime_on_milliseconds_works() {
    let record = r#"{"customer_id":"1234","type":{"device":"mobile"},"ts":1690000000123}"#;
    assert_eq!(
        extract(FIREHOSE_EXAMPLE, record).unwrap(),
        keys(&[("customer_id", "1234"), ("device", "mobile"), ("day", "2023-07-22")])
    );
}

#[test]
fn a_single_key_query_gives_one_key() {
    assert_eq!(
        extract("{customer_id: .customer_id}", r#"{"customer_id":"c-1","x":2}"#).unwrap(),
        keys(&[("customer_id", "c-1")])
    );
}

#[test]
fn the_dg_date_partitioning_query_works_on_epoch_seconds() {
    let q = r#"{year: .event_timestamp | strftime("%Y"), month: .event_timestamp | strftime("%m"), day: .event_timestamp | strftime("%d"), hour: .event_timestamp | strftime("%H")}"#;
    assert_eq!(
        extract(q, r#"{"event_timestamp":1425599621}"#).unwrap(),
        keys(&[("year", "2015"), ("month", "03"), ("day", "05"), ("hour", "23")])
    );
}

#[test]
fn multi_key_queries_with_nested_paths_and_string_functions_work() {
    let q = r#"{region: .meta.region | ascii_downcase, kind: (.event | split(".") | .[0]), id: .user.id}"#;
    let r = r#"{"meta":{"region":"EU-West"},"event":"order.created","user":{"id":42}}"#;
    assert_eq!(
        extract(q, r).unwrap(),
        keys(&[("region", "eu-west"), ("kind", "order"), ("id", "42")])
    );
}

#[test]
fn regex_and_conditional_queries_work() {
    let q = r#"{tier: (if .amount > 100 then "big" else "small" end), code: (.ref | capture("(?<c>[A-Z]+)-").c), ok: (.ref | test("^[A-Z]+-\\d+$"))}"#;
    assert_eq!(
        extract(q, r#"{"amount":250,"ref":"ABC-123"}"#).unwrap(),
        keys(&[("tier", "big"), ("code", "ABC"), ("ok", "true")])
    );
}

#[test]
fn numbers_and_booleans_become_their_json_text() {
    let q = "{i: .i, f: .f, whole: .w, big: .big, t: .t, div: (.ms / 1000)}";
    let r = r#"{"i":-7,"f":1.5,"w":3.0,"big":12345678901234567890,"t":false,"ms":1690000000000}"#;
    assert_eq!(
        extract(q, r).unwrap(),
        keys(&[
            ("i", "-7"),
            ("f", "1.5"),
            ("whole", "3"),
            ("big", "12345678901234567890"),
            ("t", "false"),
            ("div", "1690000000"),
        ])
    );
}

#[test]
fn an_empty_string_value_is_kept() {
    assert_eq!(extract("{k: .k}", r#"{"k":""}"#).unwrap(), keys(&[("k", "")]));
}

#[test]
fn an_absent_field_is_a_missing_key_error_naming_the_key() {
    let err = extract(
        FIREHOSE_EXAMPLE.replace("day:(.ts/1000|strftime(\"%Y-%m-%d\"))", "day:.day").as_str(),
        r#"{"customer_id":"1","type":{"device":"d"}}"#,
    )
    .unwrap_err();
    assert_eq!(err, ExtractError::MissingKey { key: "day".into() });
    assert_eq!(err.code(), "MetadataExtraction.MissingKey");
    assert!(err.to_string().contains("\"day\""), "{err}");
}

#[test]
fn an_object_or_array_value_is_rejected_naming_the_key() {
    let err = extract("{device: .type}", r#"{"type":{"device":"d"}}"#).unwrap_err();
    assert!(
        matches!(&err, ExtractError::InvalidKeyValue { key, .. } if key == "device"),
        "{err:?}"
    );
    assert_eq!(err.code(), "MetadataExtraction.InvalidKeyValue");
    let err = extract("{tags: .tags}", r#"{"tags":[1,2]}"#).unwrap_err();
    assert!(err.to_string().contains("an array"), "{err}");
}

#[test]
fn a_non_finite_number_is_rejected() {
    let err = extract("{k: (.a / 0)}", r#"{"a":1}"#).unwrap_err();
    assert_eq!(
        err,
        ExtractError::InvalidKeyValue { key: "k".into(), found: "the number Infinity".into() }
    );
    let err = extract("{k: nan}", "{}").unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.InvalidKeyValue");
}

#[test]
fn a_record_that_is_not_json_is_a_non_json_record_error() {
    for record in ["not json", "{\"a\":", "{\"a\":1}{\"a\":2}", "NaN", ""] {
        let err = extract("{a: .a}", record).unwrap_err();
        assert_eq!(err.code(), "MetadataExtraction.NonJsonRecord", "{record:?}: {err:?}");
        assert!(err.to_string().starts_with("Non JSON record provided"), "{err}");
    }
}

#[test]
fn a_trailing_newline_after_the_json_is_fine() {
    assert_eq!(extract("{a: .a}", "{\"a\":1}\n").unwrap(), keys(&[("a", "1")]));
}

#[test]
fn a_runtime_error_in_the_query_is_a_query_failed_error() {
    let err = extract("{a: (.a | tonumber)}", r#"{"a":"x"}"#).unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.QueryFailed");
    let err = extract(r#"{a: error("custom")}"#, "{}").unwrap_err();
    assert_eq!(err, ExtractError::QueryFailed { detail: "custom".into() });
    let err = extract("{a: (.s | .[0])}", r#"{"s":"str"}"#).unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.QueryFailed");
}

#[test]
fn a_query_with_no_output_is_an_error() {
    let err = extract("select(.a == 2) | {a: .a}", r#"{"a":1}"#).unwrap_err();
    assert_eq!(err, ExtractError::NoResult);
    assert_eq!(err.code(), "MetadataExtraction.NoResult");
}

#[test]
fn a_query_with_several_outputs_is_an_error() {
    let err = extract("{a: .a[]}", r#"{"a":[1,2]}"#).unwrap_err();
    assert_eq!(err, ExtractError::MultipleResults);
}

#[test]
fn a_query_whose_output_is_not_an_object_is_an_error() {
    let err = extract(".customer_id", r#"{"customer_id":"1"}"#).unwrap_err();
    assert_eq!(err, ExtractError::NotAnObject { found: "the string \"1\"".into() });
    assert_eq!(err.code(), "MetadataExtraction.NotAnObject");
}

#[test]
fn a_non_string_key_name_is_an_error() {
    let err = extract("{(1): 2}", "{}").unwrap_err();
    assert_eq!(err, ExtractError::NonStringKey { key: "1".into() });
    assert_eq!(err.code(), "MetadataExtraction.InvalidKeyName");
}

#[test]
fn an_empty_object_gives_no_keys() {
    assert!(extract("{}", r#"{"a":1}"#).unwrap().is_empty());
}

#[test]
fn time_builtins_of_jq_1_6_are_there() {
    let q = r#"{
        iso: (.t | todate), back: (.iso | fromdate), date: (.t | date),
        broken: (.t | gmtime | mktime), parsed: (.d | strptime("%d %B %Y") | mktime),
        add: (.t | dateadd("seconds"; 10)), week: (.t | strftime("%A %j %U"))
    }"#;
    let r = r#"{"t":1425599621,"iso":"2015-03-05T23:51:47Z","d":"10 March 2015"}"#;
    assert_eq!(
        extract(q, r).unwrap(),
        keys(&[
            ("iso", "2015-03-05T23:53:41Z"),
            ("back", "1425599507"),
            ("date", "2015-03-05T23:53:41Z"),
            ("broken", "1425599621"),
            ("parsed", "1425945600"),
            ("add", "1425599631"),
            ("week", "Thursday 064 09"),
        ])
    );
}

#[test]
fn strftime_uses_the_c_locale_for_c_x_x_and_r() {
    let q = r#"{k: (.t | strftime("%c|%x|%X|%r|%Ey|%Om|%%c"))}"#;
    assert_eq!(
        extract(q, r#"{"t":1690000000}"#).unwrap(),
        keys(&[("k", "Sat Jul 22 04:26:40 2023|07/22/23|04:26:40|04:26:40 AM|23|07|%c")])
    );
}

#[test]
fn strftime_accepts_a_broken_down_time_and_rejects_a_non_string_format() {
    let q = r#"{k: ([2015,2,5,23,51,47,4,63] | strftime("%Y-%m-%dT%H:%M:%SZ"))}"#;
    assert_eq!(extract(q, "{}").unwrap(), keys(&[("k", "2015-03-05T23:51:47Z")]));
    let err = extract("{k: (1 | strftime(5))}", "{}").unwrap_err();
    assert!(err.to_string().contains("string format"), "{err}");
}

#[test]
fn c_locale_format_keeps_other_specifiers_and_literal_percent() {
    assert_eq!(c_locale_format("%Y/%m/%d %%x %x"), "%Y/%m/%d %%x %m/%d/%y");
    assert_eq!(c_locale_format("100%"), "100%");
}

#[test]
fn compat_builtins_csv_tsv_in_index_and_leaf_paths_work() {
    let q = r#"{
        csv: ([1,"a\"b",null,true] | @csv), tsv: (["a\tb","c\\d",2] | @tsv),
        inn: (.x | IN(1, 2)), idx: ([{"id":"k"}] | INDEX(.id) | keys[0]),
        leaves: ([leaf_paths] | length)
    }"#;
    assert_eq!(
        extract(q, r#"{"x":2,"y":{"z":1}}"#).unwrap(),
        keys(&[
            ("csv", r#"1,"a""b",,true"#),
            ("tsv", "a\\tb\tc\\\\d\t2"),
            ("inn", "true"),
            ("idx", "k"),
            ("leaves", "2"),
        ])
    );
}

#[test]
fn env_is_disabled_so_server_secrets_cannot_leak_into_keys() {
    let err = extract("{k: env.HOME}", "{}").unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.QueryFailed");
    assert!(err.to_string().contains("env is not available"), "{err}");
    let err = MetadataExtractor::new("{k: $ENV.HOME}").unwrap_err();
    assert!(err.message.contains("undefined variable `$ENV`"), "{}", err.message);
}

#[test]
fn halt_fails_the_record_instead_of_exiting_the_process() {
    let err = extract("{k: halt}", "{}").unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.QueryFailed");
    let err = extract(r#"{k: ("bye" | halt_error(1))}"#, "{}").unwrap_err();
    assert_eq!(err.code(), "MetadataExtraction.QueryFailed");
}

#[test]
fn input_and_module_loading_are_unavailable() {
    assert!(MetadataExtractor::new("{k: input}").unwrap_err().message.contains("input/0"));
    let err = MetadataExtractor::new(r#"import "foo" as foo; {k: 1}"#).unwrap_err();
    assert!(err.message.contains("cannot load module"), "{}", err.message);
}

#[test]
fn syntax_errors_name_the_position() {
    let err = MetadataExtractor::new("{customer_id: .customer_id").unwrap_err();
    assert!(err.message.starts_with("invalid jq query: syntax error"), "{}", err.message);
    let err = MetadataExtractor::new("{a: .a} | | .").unwrap_err();
    assert!(err.message.contains("at character"), "{}", err.message);
}

#[test]
fn undefined_functions_are_named_with_their_arity() {
    let err = MetadataExtractor::new("{a: (.a | strftimee(\"%Y\"))}").unwrap_err();
    assert_eq!(err.message, "invalid jq query: undefined function `strftimee/1`");
}

#[test]
fn an_empty_query_is_rejected() {
    assert!(MetadataExtractor::new("  ").unwrap_err().message.contains("empty"));
}

#[test]
fn long_error_messages_are_truncated() {
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(5000));
    let err = extract("{k: (.a | tonumber)}", &big).unwrap_err();
    assert!(err.to_string().chars().count() < 700, "{}", err.to_string().len());
}

#[test]
fn the_extractor_is_send_sync_and_clones_share_the_program() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<MetadataExtractor>();
    let e = MetadataExtractor::new("{a: .a}").unwrap();
    let c = e.clone();
    assert!(Arc::ptr_eq(&e.filter, &c.filter));
    assert_eq!(c.query(), "{a: .a}");
    let handle = std::thread::spawn(move || c.extract(br#"{"a":"t"}"#).unwrap());
    assert_eq!(handle.join().unwrap(), keys(&[("a", "t")]));
}

// --- Limits: no query, record or combination of both stops the thread or the process. ---

fn limit_exceeded(query: &str, record: &str) -> String {
    match extract(query, record) {
        Err(e @ ExtractError::LimitExceeded { .. }) => {
            assert_eq!(e.code(), "MetadataExtraction.QueryLimitExceeded");
            e.to_string()
        }
        other => panic!("{query}: expected a limit, got {other:?}"),
    }
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
fn a_query_that_calls_itself_forever_fails_the_record_after_its_steps() {
    let message = limit_exceeded("def f: f; f", "{}");
    assert!(message.contains(&MAX_STEPS.to_string()), "{message}");
}

#[test]
fn a_query_that_recurses_without_end_fails_the_record_instead_of_overflowing_the_stack() {
    let message = limit_exceeded("def f: 1 + f; f", "{}");
    assert!(message.contains("recursed too deeply"), "{message}");
    limit_exceeded("def f: [f]; {k: f}", "{}");
    limit_exceeded("def f(x): x | f(x + 1); f(0)", "{}");
}

#[test]
fn long_generators_and_loops_are_counted_value_by_value() {
    limit_exceeded("{k: last(range(1e15))}", "{}");
    limit_exceeded("{k: [range(1e9)] | length}", "{}");
    limit_exceeded("{k: [limit(1e9; repeat(1))] | length}", "{}");
    limit_exceeded("{k: first(skip(1e12; range(1e13)))}", "{}");
    limit_exceeded("{k: until(false; .)}", "{}");
    limit_exceeded("{k: reduce range(1e9) as $i (0; . + 1)}", "{}");
    // `repeat(.)` itself is an endless stream: its second output already fails the query.
    assert_eq!(extract("repeat(.)", "{}").unwrap_err(), ExtractError::MultipleResults);
}

#[test]
fn try_cannot_catch_a_limit() {
    limit_exceeded(r#"{k: (try (def f: f; f) catch "caught")}"#, "{}");
    limit_exceeded(r#"{k: ((def f: 1 + f; f)? // "caught")}"#, "{}");
}

#[test]
fn one_step_cannot_build_a_huge_value() {
    query_failed_with(r#"{k: ("x" * 1000000000000)}"#, "{}", "longer than");
    query_failed_with(r#"{k: (.s * 1e15)}"#, r#"{"s":"ab"}"#, "longer than");
    query_failed_with(r#"{k: reduce range(64) as $i ("x"; . + .)}"#, "{}", "longer than");
    query_failed_with(r#"{k: reduce range(64) as $i ("x"; "\(.)\(.)")}"#, "{}", "longer than");
    query_failed_with(r#"{k: reduce range(64) as $i ([1]; . + .) | length}"#, "{}", "members");
    query_failed_with(r#"{k: reduce range(64) as $i (3; . * .)}"#, "{}", "wider than");
    // Shared parts: small in memory, huge as text.
    query_failed_with(
        r#"{k: reduce range(64) as $i ([1]; [., .]) | tojson}"#,
        "{}",
        "too large to write as text",
    );
    query_failed_with(
        r#"{k: reduce range(64) as $i ([1]; [., .]) | tostring}"#,
        "{}",
        "too large to write as text",
    );
    query_failed_with(r#"{k: reduce range(64) as $i ("x"; . += .)}"#, "{}", "longer than");
}

#[test]
fn deep_values_fail_cleanly() {
    // Built by the query: every level costs steps, so the budget ends it.
    limit_exceeded("{k: reduce range(1e9) as $i (null; [.]) | length}", "{}");
    limit_exceeded("{k: reduce range(1e9) as $i (null; {a: .}) | length}", "{}");
    // Parsed by the query: serde_json's nesting limit, not jaq's recursive parser.
    query_failed_with(r#"{k: ("[" * 100000 | fromjson)}"#, "{}", "cannot be parsed as JSON");
    // In the record: serde_json's limit.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert_eq!(extract("{k: 1}", &deep).unwrap_err().code(), "MetadataExtraction.NonJsonRecord");
}

#[test]
fn the_longest_allowed_query_compiles_and_runs_even_when_deeply_nested() {
    let half = (MAX_QUERY_CHARS - 8) / 2;
    let nested = format!("{{k: {}1{}}}", "[".repeat(half), "]".repeat(half));
    assert!(nested.chars().count() <= MAX_QUERY_CHARS);
    let e = MetadataExtractor::new(&nested).unwrap();
    assert_eq!(e.extract(b"{}").unwrap_err().code(), "MetadataExtraction.InvalidKeyValue");
    let negations = format!("{{k: {}1}}", "-".repeat(MAX_QUERY_CHARS - 10));
    MetadataExtractor::new(&negations).unwrap().extract(b"{}").unwrap();
    let too_long = format!("{{k: .k}}{}", " ".repeat(MAX_QUERY_CHARS));
    let err = MetadataExtractor::new(&too_long).unwrap_err();
    assert!(err.message.contains("at most 5120"), "{}", err.message);
}

#[test]
fn the_extractor_keeps_working_after_a_record_ran_out() {
    let e = MetadataExtractor::new("{k: (if .loop then (def f: 1 + f; f) else .k end)}").unwrap();
    for _ in 0..3 {
        assert_eq!(
            e.extract(br#"{"loop":true}"#).unwrap_err().code(),
            "MetadataExtraction.QueryLimitExceeded"
        );
        assert_eq!(e.extract(br#"{"k":"v"}"#).unwrap(), keys(&[("k", "v")]));
    }
}

#[test]
fn a_marked_evaluator_thread_evaluates_inline_within_the_same_limits() {
    let e = MetadataExtractor::new("{k: (if .loop then (def f: 1 + f; f) else .k end)}").unwrap();
    let handle = std::thread::Builder::new()
        .stack_size(EVALUATOR_THREAD_STACK_BYTES)
        .spawn(move || {
            assert!(!budget::room_here(), "an unmarked thread hands evaluations off");
            mark_evaluator_thread();
            assert!(budget::room_here(), "a marked thread evaluates inline");
            let looped = e.extract(br#"{"loop":true}"#).unwrap_err();
            (looped.code(), e.extract(br#"{"k":"v"}"#).unwrap())
        })
        .unwrap();
    let (code, ok) = handle.join().unwrap();
    assert_eq!(code, "MetadataExtraction.QueryLimitExceeded");
    assert_eq!(ok, keys(&[("k", "v")]));
}

#[test]
fn the_guarded_operators_keep_jq_semantics() {
    let record = r#"{"a":"x","b":"y","n":2,"arr":[1,2],"o":{"p":1}}"#;
    assert_eq!(
        extract(
            r#"{i: "<\(.a)-\(.n)-\(.arr)>", sum: (.n + 1), cat: (.a + .b), rep: (.a * 3),
               arr: (.arr + [3] | tojson), merge: (.o * {q: 2} | tojson),
               upd: (.n += 5 | .n), mulupd: (.n *= 4 | .n), col: ([.arr[] * 10] | tojson),
               b64: @base64 "\(.a)\(.b)", js: (.o | tojson), str: (.arr | tostring),
               nested: ({"a":[1,"x\n",null,true,1.5]} | tojson),
               order: ([(1,2) + (10,20)] | tojson), joined: ([.a, .b] | join("-")),
               csv: ([.a, .n] | @csv), last: last(.arr[]), skip: ([skip(1; .arr[])] | tojson),
               range: ([range(0; 10; 3)] | tojson), dbg: (.n | debug | . + 0)}"#,
            record
        )
        .unwrap(),
        keys(&[
            ("i", "<x-2-[1,2]>"),
            ("sum", "3"),
            ("cat", "xy"),
            ("rep", "xxx"),
            ("arr", "[1,2,3]"),
            ("merge", r#"{"p":1,"q":2}"#),
            ("upd", "7"),
            ("mulupd", "8"),
            ("col", "[10,20]"),
            ("b64", "eA==eQ=="), // the format applies to each interpolated part, as in jq
            ("js", r#"{"p":1}"#),
            ("str", "[1,2]"),
            ("nested", r#"{"a":[1,"x\n",null,true,1.5]}"#),
            ("order", "[11,21,12,22]"),
            ("joined", "x-y"),
            ("csv", r#""x",2"#),
            ("last", "2"),
            ("skip", "[2]"),
            ("range", "[0,3,6,9]"),
            ("dbg", "2"),
        ])
    );
    assert_eq!(
        extract("{k: (.a | fromjson | .b)}", r#"{"a":"{\"b\":7}"}"#).unwrap(),
        keys(&[("k", "7")])
    );
    assert_eq!(extract("{k: ([paths] | length)}", r#"{"a":[1,2]}"#).unwrap(), keys(&[("k", "3")]));
}

fn limit_exceeded_within(query: &str, record: &str, within: std::time::Duration) -> String {
    let started = std::time::Instant::now();
    let message = limit_exceeded(query, record);
    let took = started.elapsed();
    println!("{took:?} {query}: {message}");
    assert!(took < within, "{query}: took {took:?}");
    message
}

/// The time limit, plus room for one slow builtin call of a debug build.
const AFTER_THE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(12);

#[test]
fn what_any_builtin_builds_counts_against_the_memory_limit() {
    // Each call builds a fresh value from a shared input and the results are kept: 65 × 4
    // MiB, ... Before, only `+`, `*`, `[...]` and `tojson` were counted. (`explode`,
    // `@html` and `@base64` are counted the same way, but a debug build meets the time limit
    // first.)
    for query in [
        r#"{k: ("x" * 4194304) as $s | [range(100) | $s | ascii_downcase] | length}"#,
        r#"{k: (reduce range(19) as $i ([0]; . + .)) as $a | [range(60) | $a | reverse] | length}"#,
        r#"{k: ("x" * 1048576) as $s | [range(12) | $s / ""] | length}"#,
        // Not a builtin: a path update copies the shared array it changes.
        r#"{k: (reduce range(19) as $i ([0]; . + .)) as $a | [range(60) | $a | .[0] = 1] | length}"#,
    ] {
        let message = limit_exceeded_within(query, "{}", AFTER_THE_TIME_LIMIT);
        assert!(message.contains("MiB of values"), "{query}: {message}");
    }
}

#[test]
fn many_slow_builtin_calls_meet_the_time_limit() {
    // Regular expression scans of 4 MiB, a few steps each: before, the clock was read only
    // every 256 steps, so some 80 scans ran past the deadline.
    let message = limit_exceeded_within(
        r#"{k: ("a" * 4194304) as $s | [range(1000) | $s | test("[ab]*c")] | length}"#,
        "{}",
        AFTER_THE_TIME_LIMIT,
    );
    assert!(message.contains("ran longer than"), "{message}");
    // What jq gives is unchanged.
    let q = r#"{m: ("xaby" | [match("(?<l>a)(b)"; "g") | .offset, .length, .string, .captures[0].name] | tojson),
               s: ("a,b, c" | [splits(", *")] | tojson), t: ("AbC" | test("abc"; "i")),
               sub: ("abab" | gsub("b"; "X")), c: ("k=v" | capture("(?<key>\\w)=(?<val>\\w)") | tojson),
               u: ("éaé" | [match("é"; "g").offset] | tojson), e: ("aaa" | [match(""; "g")] | length)}"#;
    assert_eq!(
        extract(q, "{}").unwrap(),
        keys(&[
            ("m", r#"[1,2,"ab","l"]"#),
            ("s", r#"["a","b","c"]"#),
            ("t", "true"),
            ("sub", "aXaX"),
            ("c", r#"{"key":"k","val":"v"}"#),
            ("u", "[0,2]"),
            ("e", "4"),
        ])
    );
}

#[test]
fn indices_and_contains_take_linear_time_or_run_out_of_steps() {
    // A naive window compare would take 10^11 byte comparisons.
    let started = std::time::Instant::now();
    let found =
        extract(r#"{k: ("a" * 1000000) | indices(("a" * 500000) + "b") | length}"#, "{}").unwrap();
    assert_eq!(found, keys(&[("k", "0")]));
    assert!(started.elapsed() < AFTER_THE_TIME_LIMIT, "{:?}", started.elapsed());
    // Every r against every l: 65536 × 65537 comparisons.
    let arrays = r#"((reduce range(16) as $i ([0]; . + .)) + [1]) as $a
                    | (reduce range(16) as $i ([1]; . + .)) as $b"#;
    limit_exceeded_within(
        &format!("{arrays} | {{k: ($a | contains($b))}}"),
        "{}",
        AFTER_THE_TIME_LIMIT,
    );
    limit_exceeded_within(
        &format!("{arrays} | {{k: ($b | inside($a))}}"),
        "{}",
        AFTER_THE_TIME_LIMIT,
    );
    // What jq gives is unchanged.
    let q = r#"{a: ("aaa" | indices("aa") | tojson), b: ("xéaé" | indices("é") | tojson),
               c: ([1,2,1,2,1] | indices([1,2,1]) | tojson), d: ([1,2,1] | indices(1) | tojson),
               e: ("abc" | index("c")), f: ("abcb" | rindex("b")), g: ("" | indices("") | tojson),
               h: ([] | indices([]) | tojson), i: ({a: [1, "xyz"]} | contains({a: ["y"]})),
               j: ([[1,2],3] | contains([[2]])), l: ("foobar" | contains("bar")),
               m: ("bar" | inside("foobar")), n: ([1] | contains([1, 2]))}"#;
    assert_eq!(
        extract(q, "{}").unwrap(),
        keys(&[
            ("a", "[0,1]"),
            ("b", "[1,3]"),
            ("c", "[0,2]"),
            ("d", "[0,2]"),
            ("e", "2"),
            ("f", "3"),
            ("g", "[]"),
            ("h", "[]"),
            ("i", "true"),
            ("j", "true"),
            ("l", "true"),
            ("m", "true"),
            ("n", "false"),
        ])
    );
}
