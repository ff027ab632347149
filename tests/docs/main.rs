//! The examples of the documentation work as written.
//!
//! Every ```` ```yaml ```` and ```` ```json ```` block of `README.md`, `deploy/README.md`,
//! `transforms/README.md` and `docs/**/*.md` is checked the way Hydrant reads it, and the JSON
//! that shell examples hand to `aws firehose` is checked against the Firehose service model.
//! (The shell examples themselves run in `tests/clients/test_docs_shell.py`.)
//!
//! A block's info string says what it is, so that nothing is skipped silently:
//!
//! | info string | the block is | checked |
//! |---|---|---|
//! | `yaml` | a whole config file | loads as `hydrant validate` loads it |
//! | `yaml part` | part of a config file | merged into [`BASE_FILE`], then loads |
//! | `yaml stream` | (part of) one entry of `delivery_streams` | merged into [`BASE_STREAM`] in [`BASE_FILE`], then loads |
//! | `yaml invalid` | a file Hydrant refuses | does not load; a ```` ```text ```` block right after it is the error, word for word |
//! | `yaml prometheus` | Prometheus's, not Hydrant's | parses (metric names: `test_deploy_assets.py`) |
//! | `json error-output` | error-output documents, one per line | each line is an object; `test_http_endpoint.py` and `test_search.py` compare its keys with what Hydrant writes |
//! | `json failure-manifest` | a skipped warehouse batch's manifest | an object; `test_warehouse.py` compares its keys with what Hydrant writes |
//! | `json manifest` | a Redshift `COPY` manifest | `{"entries": [{"url": "s3://...", "mandatory": bool}]}` |
//! | `json example` | illustrative, with placeholders such as `…` | parses |
//!
//! Every `${NAME}` a block references is set to [`PLACEHOLDER`] (a base64 key, which also
//! serves as a password or secret), and the files a config names (TLS certificate and key,
//! key files) are created for it. The delivery streams of each config, without their `hydrant:`
//! block, must also be valid `CreateDeliveryStream` input per the service model: the docs say
//! existing definitions paste in, and this keeps the examples pasteable the other way too.

mod markdown;
mod model;
mod shell;

use std::path::Path;

use markdown::{blocks, documents, Block};
use model::{Blobs, Model};
use serde_yaml_ng::Value;

/// What `yaml part` and `yaml stream` blocks are merged into: the object store the
/// examples call `minio` (the README's definition).
const BASE_FILE: &str = r#"
object_stores:
  minio: { type: s3, endpoint: http://127.0.0.1:9000, access_key_id: "${MINIO_ROOT_USER}",
           secret_access_key: "${MINIO_ROOT_PASSWORD}", allow_http: true }
"#;

/// What a `yaml stream` block is merged into: the smallest stream, in the `minio` store.
const BASE_STREAM: &str = r#"
DeliveryStreamName: example
ExtendedS3DestinationConfiguration: { BucketARN: "arn:aws:s3:::raw" }
hydrant: { object_store: minio }
"#;

/// The value of every `${NAME}`: 32 bytes in base64, valid as a key, a password or a secret.
const PLACEHOLDER: &str = "aHlkcmFudCBkb2NzIHBsYWNlaG9sZGVyIGtleSAzMmI=";

/// Members the model requires that Hydrant does not (a config file has no IAM role to name).
const NOT_REQUIRED_BY_HYDRANT: &[&str] = &["RoleARN"];

#[test]
fn every_yaml_and_json_block_is_what_its_info_string_says() {
    let model = Model::load();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let found = blocks(&file);
        for (i, block) in found.iter().enumerate() {
            let result = match (block.lang.as_str(), block.kind.as_str()) {
                ("yaml", "") => check_config(&block.text, &model),
                ("yaml", "part") => file_with(&block.text).and_then(|c| check_config(&c, &model)),
                ("yaml", "stream") => {
                    file_with_stream(&block.text).and_then(|c| check_config(&c, &model))
                }
                ("yaml", "invalid") => check_invalid(&block.text, found.get(i + 1)),
                ("yaml", "prometheus") => parse_yaml(&block.text).map(|_| ()),
                ("json", "error-output") => json_lines(&block.text),
                ("json", "failure-manifest" | "example") => parse_json(&block.text).map(|_| ()),
                ("json", "manifest") => check_manifest(&block.text),
                ("yaml" | "json", kind) => Err(format!(
                    "unknown kind {kind:?}: use one of the kinds listed at the top of tests/docs/main.rs"
                )),
                _ => continue,
            };
            checked += 1;
            if let Err(problem) = result {
                problems
                    .push(format!("{} ({} {}): {problem}", block.place, block.lang, block.kind));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "documentation examples that do not work:\n{}",
        problems.join("\n\n")
    );
    assert!(checked >= 25, "only {checked} YAML/JSON blocks found: is the extraction broken?");
}

#[test]
fn json_given_to_the_aws_cli_fits_the_service_model() {
    let model = Model::load();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents() {
        for block in blocks(&file).iter().filter(|b| b.lang == "sh" || b.lang == "bash") {
            for call in shell::firehose_calls(&block.text) {
                let Some(input) = model.input_of(&call.operation) else {
                    problems.push(format!(
                        "{}: aws firehose has no operation {}",
                        block.place, call.operation
                    ));
                    continue;
                };
                let blobs = if call.raw_blobs { Blobs::Raw } else { Blobs::Base64 };
                for (option, json) in &call.json_options {
                    checked += 1;
                    let Some((member, shape)) = model.member_for_option(input, option) else {
                        problems.push(format!(
                            "{}: {} has no option --{option}",
                            block.place, call.operation
                        ));
                        continue;
                    };
                    match serde_json::from_str::<serde_json::Value>(json) {
                        Ok(value) => problems.extend(
                            model
                                .check(
                                    &shape,
                                    &value,
                                    &format!("{}.{member}", call.operation),
                                    blobs,
                                )
                                .into_iter()
                                .map(|p| format!("{}: {p}", block.place)),
                        ),
                        Err(e) => {
                            problems.push(format!("{}: --{option} is not JSON: {e}", block.place))
                        }
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "aws CLI examples that do not fit the model:\n{}",
        problems.join("\n")
    );
    assert!(checked >= 4, "only {checked} JSON options found: is the extraction broken?");
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_yaml_ng::from_str(text).map_err(|e| format!("invalid YAML: {e}"))
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
}

fn json_lines(text: &str) -> Result<(), String> {
    for line in text.lines() {
        if !parse_json(line)?.is_object() {
            return Err(format!("not a JSON object: {line}"));
        }
    }
    Ok(())
}

fn check_manifest(text: &str) -> Result<(), String> {
    let manifest = parse_json(text)?;
    let entries = manifest["entries"].as_array().ok_or("no `entries` array")?;
    let good = entries.iter().all(|e| {
        e["url"].as_str().is_some_and(|u| u.starts_with("s3://")) && e["mandatory"].is_boolean()
    });
    if entries.is_empty() || !good {
        return Err(format!(
            "entries must be {{\"url\": \"s3://...\", \"mandatory\": bool}}: {manifest}"
        ));
    }
    Ok(())
}

/// A `yaml part` block merged into [`BASE_FILE`].
fn file_with(part: &str) -> Result<String, String> {
    let mut file = parse_yaml(BASE_FILE)?;
    merge(&mut file, parse_yaml(part)?);
    serde_yaml_ng::to_string(&file).map_err(|e| e.to_string())
}

/// A `yaml stream` block merged into [`BASE_STREAM`], the only stream of [`BASE_FILE`].
fn file_with_stream(part: &str) -> Result<String, String> {
    let mut stream = parse_yaml(BASE_STREAM)?;
    merge(&mut stream, parse_yaml(part)?);
    let mut file = parse_yaml(BASE_FILE)?;
    let mut streams = serde_yaml_ng::Mapping::new();
    streams.insert("delivery_streams".into(), Value::Sequence(vec![stream]));
    merge(&mut file, Value::Mapping(streams));
    serde_yaml_ng::to_string(&file).map_err(|e| e.to_string())
}

/// Mappings merge key by key; anything else in `part` replaces what `base` has.
fn merge(base: &mut Value, part: Value) {
    match (base, part) {
        (Value::Mapping(base), Value::Mapping(part)) => {
            for (key, value) in part {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, part) => *base = part,
    }
}

/// Loads `text` as `hydrant validate` does, with its variables set and its files in place,
/// and checks its streams against the model.
fn check_config(text: &str, model: &Model) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let Ok(tree) = parse_yaml(text) else {
        // Hydrant's own YAML error, with its hints.
        return load(text, dir.path()).map_err(refused);
    };
    create_named_files(&tree, dir.path(), "")?;
    load(text, dir.path()).map_err(refused)?;

    let streams =
        tree.get("delivery_streams").and_then(Value::as_sequence).cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let mut stream = serde_json::to_value(&stream).map_err(|e| e.to_string())?;
        if let Some(map) = stream.as_object_mut() {
            map.remove("hydrant");
        }
        problems.extend(
            model
                .check(
                    "CreateDeliveryStreamInput",
                    &stream,
                    &format!("delivery_streams[{i}]"),
                    Blobs::Base64,
                )
                .into_iter()
                .filter(|p| {
                    !NOT_REQUIRED_BY_HYDRANT.iter().any(|m| p.ends_with(&format!(" requires {m}")))
                }),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("not valid CreateDeliveryStream input:\n{}", problems.join("\n")))
    }
}

/// Creates the files a config names, relative to `dir`: `tls.cert` and `tls.key` (the test
/// pair of `src/testdata/tls`), every key file (`keys: [{ file: ... }]`, 32 bytes) and the
/// NATS connection's files (`core.credentials_file`, `core.tls.ca`, ...).
fn create_named_files(value: &Value, dir: &Path, path: &str) -> Result<(), String> {
    let write = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let file = dir.join(name);
        std::fs::create_dir_all(file.parent().unwrap_or(dir)).map_err(|e| e.to_string())?;
        std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))
    };
    let testdata = markdown::root().join("src/testdata/tls");
    match value {
        Value::Mapping(map) => {
            for (key, item) in map {
                let key = key.as_str().unwrap_or_default();
                let here = if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
                match (here.as_str(), item.as_str()) {
                    ("tls.cert", Some(name)) => {
                        write(name, &std::fs::read(testdata.join("cert.pem")).unwrap())?
                    }
                    ("tls.key", Some(name)) => {
                        write(name, &std::fs::read(testdata.join("key.pem")).unwrap())?
                    }
                    (_, Some(name)) if key == "file" && path.contains("keys[") => {
                        write(name, &[7u8; 32])?
                    }
                    // Validation only checks that NATS's files can be read.
                    (
                        "core.credentials_file"
                        | "core.nkey_seed_file"
                        | "core.tls.ca"
                        | "core.tls.cert"
                        | "core.tls.key",
                        Some(name),
                    ) => write(name, b"a file for the NATS connection")?,
                    _ => create_named_files(item, dir, &here)?,
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                create_named_files(item, dir, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A `yaml invalid` block must not load; the ```` ```text ```` block after it, if any, is the
/// error message.
fn check_invalid(text: &str, next: Option<&Block>) -> Result<(), String> {
    let err = match load(text, Path::new("/etc/hydrant")) {
        Ok(()) => return Err("it loads, but the docs say it is refused".to_owned()),
        Err(e) => e.to_string(),
    };
    match next {
        Some(next) if next.lang == "text" && next.text.trim_end() != err => Err(format!(
            "the error shown after it ({}) is not what Hydrant says:\n{err}",
            next.place
        )),
        _ => Ok(()),
    }
}

/// Loads a config as `hydrant validate` does, with every `${NAME}` it references set to
/// [`PLACEHOLDER`] and relative paths resolved against `dir`.
fn load(text: &str, dir: &Path) -> Result<(), hydrant::config::ConfigError> {
    let references = markdown::env_references(text);
    let env = |name: &str| match references.iter().any(|r| r == name) {
        true => Ok(PLACEHOLDER.to_owned()),
        false => Err(std::env::VarError::NotPresent),
    };
    hydrant::plan::parse_with_env(text, dir, env).map(|_| ())
}

fn refused(e: hydrant::config::ConfigError) -> String {
    format!("hydrant validate refuses it:\n{e}")
}
