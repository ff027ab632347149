//! `docs/config-reference.yaml` is the configuration reference: one file that shows every field
//! of every block. This test keeps it true in both directions:
//!
//! - every field it shows exists (the file deserializes into the config structs, which reject
//!   unknown fields);
//! - every field of every block it shows is documented: for each mapping in the file, the test
//!   adds an unknown key and reads the field list from serde's "unknown field ..., expected one
//!   of ..." answer. A field counts as documented when some occurrence of the same block lists
//!   it (`S3Configuration` need not be spelled out under every destination).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hydrant::config::{parse_with_env, ConfigError};
use serde_yaml_ng::{Mapping, Value};

const REFERENCE: &str = "docs/config-reference.yaml";
const PROBE: &str = "zz_probe_field";

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE);
    let text = std::fs::read_to_string(&path).expect("docs/config-reference.yaml exists");
    serde_yaml_ng::from_str(&text).expect("the reference is valid YAML")
}

/// Deserializes `tree`; `Err` carries serde's message when the structure itself is wrong
/// (unknown field, wrong type, unknown variant), `Ok` otherwise (later validation findings,
/// such as key files that only exist on a real machine, do not matter here).
fn structure(tree: &Value) -> Result<(), String> {
    let text = serde_yaml_ng::to_string(tree).expect("serializable");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    match parse_with_env(&text, &base, |_| Ok("from-the-environment".into())) {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid(issues)) => {
            let structural = issues.iter().find(|i| {
                ["unknown field", "invalid type", "unknown variant", "missing field"]
                    .iter()
                    .any(|m| i.message.contains(m))
            });
            match structural {
                Some(i) => Err(format!("{}: {}", i.path, i.message)),
                None => Ok(()),
            }
        }
        Err(other) => Err(other.to_string()),
    }
}

/// The fields serde expects at the mapping reached by `path`, from the unknown-field error.
fn expected_fields(tree: &Value, path: &[Step]) -> Option<BTreeSet<String>> {
    let mut probe = tree.clone();
    mapping_at(&mut probe, path)?.insert(Value::from(PROBE), Value::from(1));
    let message = structure(&probe).err()?;
    let (_, rest) = message.split_once(&format!("unknown field `{PROBE}`"))?;
    let list = rest.trim_start_matches(", ").trim_start_matches("expected one of ");
    let list = list.trim_start_matches("expected ");
    Some(
        list.split(", ")
            .flat_map(|part| part.split(" or "))
            .map(|f| f.trim().trim_matches('`').to_string())
            .filter(|f| !f.is_empty())
            .collect(),
    )
}

#[derive(Clone, Debug)]
enum Step {
    Key(Value),
    Index(usize),
}

fn mapping_at<'a>(tree: &'a mut Value, path: &[Step]) -> Option<&'a mut Mapping> {
    let mut node = tree;
    for step in path {
        node = match (step, node) {
            (Step::Key(k), Value::Mapping(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    node.as_mapping_mut()
}

/// Every mapping in the tree, with its path and its keys.
fn mappings(node: &Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, BTreeSet<String>)>) {
    match node {
        Value::Mapping(m) => {
            let keys = m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
            out.push((path.clone(), keys));
            for (k, v) in m {
                path.push(Step::Key(k.clone()));
                mappings(v, path, out);
                path.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                path.push(Step::Index(i));
                mappings(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn show(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k.as_str().unwrap_or("?"));
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out.trim_start_matches('.').to_string()
}

#[test]
fn every_field_in_the_reference_exists() {
    if let Err(e) = structure(&reference()) {
        panic!("{REFERENCE} shows a field the config does not have (or a wrong value): {e}");
    }
}

#[test]
fn every_field_of_every_block_in_the_reference_is_documented() {
    let tree = reference();
    let mut all = Vec::new();
    mappings(&tree, &mut Vec::new(), &mut all);
    // Blocks are identified by their field list; a field is documented if any occurrence
    // of the block shows it.
    let mut blocks: BTreeMap<BTreeSet<String>, (BTreeSet<String>, String)> = BTreeMap::new();
    for (path, keys) in &all {
        let Some(expected) = expected_fields(&tree, path) else { continue };
        let entry = blocks.entry(expected).or_insert_with(|| (BTreeSet::new(), show(path)));
        entry.0.extend(keys.iter().cloned());
    }
    let mut missing = Vec::new();
    for (expected, (documented, example_path)) in &blocks {
        for field in expected.difference(documented) {
            missing.push(format!("{example_path}.{field}"));
        }
    }
    assert!(
        missing.is_empty(),
        "fields not shown in {REFERENCE} (add them, with a comment):\n  {}",
        missing.join("\n  ")
    );
    assert!(
        blocks.len() > 20,
        "the probe found only {} blocks; is the probe broken?",
        blocks.len()
    );
}

#[test]
fn the_probe_notices_an_undocumented_field() {
    // Remove one documented field and the check must name it: the test can fail.
    let mut tree = reference();
    let streams = tree["delivery_streams"].as_sequence_mut().expect("streams");
    let removed = streams
        .iter_mut()
        .filter_map(|s| {
            s.get_mut("ExtendedS3DestinationConfiguration")
                .and_then(Value::as_mapping_mut)
                .and_then(|m| m.remove("CompressionFormat"))
        })
        .count();
    assert!(
        removed > 0,
        "the reference has an ExtendedS3DestinationConfiguration with CompressionFormat"
    );
    let mut all = Vec::new();
    mappings(&tree, &mut Vec::new(), &mut all);
    let found = all.iter().any(|(path, keys)| {
        expected_fields(&tree, path).is_some_and(|e| {
            e.contains("CompressionFormat")
                && !keys.contains("CompressionFormat")
                && e.contains("DynamicPartitioningConfiguration")
        })
    });
    assert!(found, "removing CompressionFormat was not noticed");
}
