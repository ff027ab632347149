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
