//! Checks a JSON value against a shape of the Firehose service model (botocore's
//! `service-2.json`, copied next to this file): member names, required members, types, enum
//! values, lengths and numeric ranges. Patterns are not checked (they are Java regexes).

use serde_json::Value;

/// Values the model does not list that Hydrant accepts on purpose, as (shape, value).
const HYDRANT_EXTENSIONS: &[(&str, &str)] = &[
    // docs/configuration.md#compression: Hydrant's own compression format.
    ("CompressionFormat", "ZSTD"),
];

/// How the JSON holds a blob (`Data`): base64, as on the wire and in the aws CLI v2 by default,
/// or the raw text (`--cli-binary-format raw-in-base64-out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    Base64,
    Raw,
}

/// The Firehose service model.
pub struct Model(Value);

impl Model {
    pub fn load() -> Model {
        let path = super::markdown::root().join("tests/docs/firehose-2015-08-04.service-2.json");
        let text = std::fs::read_to_string(&path).expect("the service model is in the repository");
        Model(serde_json::from_str(&text).expect("the service model is JSON"))
    }

    fn shape(&self, name: &str) -> &Value {
        let shape = &self.0["shapes"][name];
        assert!(shape.is_object(), "the model has no shape {name}");
        shape
    }

    /// The input shape of an operation (`PutRecordBatch`), or None if there is no such
    /// operation.
    pub fn input_of(&self, operation: &str) -> Option<&str> {
        self.0["operations"][operation]["input"]["shape"].as_str()
    }

    /// The member of a structure shape whose aws CLI option is `--option` (the member name in
    /// kebab case: `ExtendedS3DestinationUpdate` is `--extended-s3-destination-update`), as
    /// (member name, its shape).
    pub fn member_for_option(&self, structure: &str, option: &str) -> Option<(String, String)> {
        let members = self.shape(structure)["members"].as_object()?;
        members.iter().find(|(name, _)| kebab(name) == option).map(|(name, member)| {
            (name.clone(), member["shape"].as_str().unwrap_or_default().to_owned())
        })
    }

    /// Every way `value` does not fit `shape`, each as `path: problem`.
    pub fn check(&self, shape: &str, value: &Value, path: &str, blobs: Blobs) -> Vec<String> {
        let mut problems = Vec::new();
        self.walk(shape, value, path, blobs, &mut problems);
        problems
    }

    fn walk(
        &self,
        name: &str,
        value: &Value,
        path: &str,
        blobs: Blobs,
        problems: &mut Vec<String>,
    ) {
        let shape = self.shape(name);
        let mut problem = |text: String| problems.push(format!("{path}: {text}"));
        match (shape["type"].as_str().unwrap_or_default(), value) {
            ("structure", Value::Object(map)) => {
                let members = shape["members"].as_object().expect("a structure has members");
                for required in shape["required"].as_array().into_iter().flatten() {
                    let required = required.as_str().unwrap_or_default();
                    if !map.contains_key(required) {
                        problem(format!("{name} requires {required}"));
                    }
                }
                for (key, item) in map {
                    match members.get(key) {
                        Some(member) => {
                            let member_shape = member["shape"].as_str().unwrap_or_default();
                            self.walk(
                                member_shape,
                                item,
                                &format!("{path}.{key}"),
                                blobs,
                                problems,
                            );
                        }
                        None => problems.push(format!(
                            "{path}: {name} has no member {key} (members: {})",
                            members.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
            }
            ("list", Value::Array(items)) => {
                check_length(shape, items.len(), &mut problem);
                let member = shape["member"]["shape"].as_str().unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    self.walk(member, item, &format!("{path}[{i}]"), blobs, problems);
                }
            }
            ("map", Value::Object(map)) => {
                let value_shape = shape["value"]["shape"].as_str().unwrap_or_default();
                for (key, item) in map {
                    self.walk(value_shape, item, &format!("{path}.{key}"), blobs, problems);
                }
            }
            ("string", Value::String(s)) => {
                if let Some(allowed) = shape["enum"].as_array() {
                    let known = allowed.iter().any(|a| a == s)
                        || HYDRANT_EXTENSIONS.contains(&(name, s.as_str()));
                    if !known {
                        problem(format!("{s:?} is not one of {name}'s values {allowed:?}"));
                    }
                }
                // `${NAME}` stands for a value the test does not know.
                if !s.contains("${") {
                    check_length(shape, s.chars().count(), &mut problem);
                }
            }
            ("blob", Value::String(s)) => {
                use base64::Engine as _;
                if blobs == Blobs::Base64
                    && base64::engine::general_purpose::STANDARD.decode(s).is_err()
                {
                    problem(format!("{name} is a blob: base64 in JSON, not {s:?}"));
                }
            }
            ("integer" | "long", Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let n = n.as_f64().unwrap_or_default();
                if shape["min"].as_f64().is_some_and(|min| n < min)
                    || shape["max"].as_f64().is_some_and(|max| n > max)
                {
                    problem(format!(
                        "{n} is outside {name}'s range {}..={}",
                        shape["min"], shape["max"]
                    ));
                }
            }
            ("double", Value::Number(_)) | ("boolean", Value::Bool(_)) => {}
            ("timestamp", Value::Number(_) | Value::String(_)) => {}
            (kind, other) => problem(format!("{name} is a {kind}, not {other}")),
        }
    }
}

fn check_length(shape: &Value, len: usize, problem: &mut impl FnMut(String)) {
    let len = len as f64;
    if shape["min"].as_f64().is_some_and(|min| len < min)
        || shape["max"].as_f64().is_some_and(|max| len > max)
    {
        problem(format!("length {len} is outside {}..={}", shape["min"], shape["max"]));
    }
}

/// `ExtendedS3DestinationUpdate` -> `extended-s3-destination-update`, as the aws CLI names
/// options: a dash before an upper-case letter that follows a lower-case letter or a digit.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
        previous = Some(c);
    }
    out
}

#[test]
fn the_checker_finds_what_does_not_fit() {
    let model = Model::load();
    let good = serde_json::json!({"DeliveryStreamName": "s", "Records": [{"Data": "aGk="}]});
    assert_eq!(model.check("PutRecordBatchInput", &good, "$", Blobs::Base64), Vec::<String>::new());
    let bad = serde_json::json!({"DeliveryStreamNam": "s", "Records": [{"Data": 5}]});
    let problems = model.check("PutRecordBatchInput", &bad, "$", Blobs::Base64);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("requires DeliveryStreamName"), "{problems:?}");
    assert!(problems[1].contains("has no member DeliveryStreamNam"), "{problems:?}");
    assert!(problems[2].starts_with("$.Records[0].Data: Data is a blob"), "{problems:?}");
    let raw = serde_json::json!({"DeliveryStreamName": "s", "Records": [{"Data": "{\"a\": 1}"}]});
    assert_eq!(model.check("PutRecordBatchInput", &raw, "$", Blobs::Base64).len(), 1);
    assert!(model.check("PutRecordBatchInput", &raw, "$", Blobs::Raw).is_empty());
    let hints = serde_json::json!({"SizeInMBs": 0, "IntervalInSeconds": 60});
    assert_eq!(model.check("BufferingHints", &hints, "h", Blobs::Base64).len(), 1);
    let format = serde_json::json!("ZSTD");
    assert!(model.check("CompressionFormat", &format, "c", Blobs::Base64).is_empty());
    assert_eq!(
        model.check("CompressionFormat", &serde_json::json!("gzip"), "c", Blobs::Base64).len(),
        1
    );
}

#[test]
fn cli_options_are_members_in_kebab_case() {
    assert_eq!(kebab("ExtendedS3DestinationUpdate"), "extended-s3-destination-update");
    assert_eq!(
        kebab("DeliveryStreamEncryptionConfigurationInput"),
        "delivery-stream-encryption-configuration-input"
    );
    assert_eq!(kebab("Records"), "records");
    let model = Model::load();
    let input = model.input_of("UpdateDestination").unwrap();
    assert_eq!(
        model.member_for_option(input, "current-delivery-stream-version-id"),
        Some(("CurrentDeliveryStreamVersionId".to_owned(), "DeliveryStreamVersionId".to_owned()))
    );
}
