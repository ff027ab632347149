//! The architecture, checked: which top-level module of `src/` may use which.
//!
//! [`ALLOWED`] is the map of the layers. Each row names a module (`src/<name>/` or
//! `src/<name>.rs`) and the modules it may import. Read bottom-up, the rows are the layers:
//! every module sits above the ones it imports, and the table itself has no cycle (checked).
//!
//! The test reads the source as text ([`source`]): a small lexer leaves out comments and string
//! and char literals, then collects every path that starts with `crate::` (also in
//! `use crate::{..}` groups and `$crate::`), every `super::` path (resolved, so one that leaves
//! its top-level module counts), and every `hydrant_destinations::` path. Doc links are
//! comments, so they are not imports. It runs in milliseconds.
//!
//! The checks:
//! - an import between two top-level modules is in [`ALLOWED`];
//! - the imports form no cycle (printed with one `file:line` per import when they do);
//! - only [`DESTINATIONS_CRATE`] use the `hydrant-destinations` crate, and not the paths of
//!   [`DENIED_PATHS`];
//! - destination kinds are matched in one place: [`DESTINATION_BLOCK`]`::` appears only in
//!   [`ONE_MATCH`];
//! - a `.rs` file over [`LONG_FILE_LINES`] lines says why, with a `//! Long file: <reason>`
//!   line in its first 20 lines.
//!
//! Today's exceptions are listed below each rule ([`KNOWN`], [`KNOWN_CRATE_USES`],
//! [`KNOWN_MATCHES`], [`KNOWN_LONG_FILES`]), each with the step of issue 12 that removes it
//! (`docs/architecture.md`; steps as in the plan: `0.7`, `WP3.2`, ...). The lists only shrink:
//! an entry that no longer matches anything fails the test, so the commit that removes an
//! exception deletes its entry, and a new exception is a failing test rather than a new entry.
//! (A commit that moves a file or renames a module renames its entries.)

mod source;

use std::collections::{BTreeMap, BTreeSet};

use source::{lex, read, relative, rust_files, Graph, Import};

/// Any module of the crate: only the composition roots.
const ANY: &[&str] = &["*"];

/// Who may import whom, bottom-up. A module without a row may import nothing of the crate.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("clock", &[]),
    ("names", &[]),
    ("codec", &[]),
    ("naming", &[]),
    ("operations", &[]),
    ("wasm_host", &[]),
    ("telemetry", &["clock"]),
    ("log", &["clock", "codec", "names"]),
    // The YAML model, and what reads parts of it.
    ("config", &["codec", "names", "wasm_host"]),
    ("tls", &["config"]),
    ("processors", &["config"]),
    // Moving records from the log to a destination.
    ("delivery", &["clock", "codec", "log", "naming", "processors", "telemetry", "wasm_host"]),
    ("destination", &["clock", "codec", "config", "delivery", "naming", "telemetry"]),
    // Checked plans, the running streams, and building their workers.
    (
        "plan",
        &[
            "codec",
            "config",
            "destination",
            "names",
            "naming",
            "operations",
            "processors",
            "tls",
            "wasm_host",
        ],
    ),
    // The registry computes the gauges `/metrics` shows (`telemetry::StreamGauges`, plain data).
    ("registry", &["clock", "config", "delivery", "log", "names", "telemetry"]),
    (
        "pipeline",
        &[
            "clock",
            "codec",
            "config",
            "delivery",
            "destination",
            "log",
            "names",
            "naming",
            "plan",
            "processors",
            "registry",
            "telemetry",
            "wasm_host",
        ],
    ),
    ("health", &["registry"]),
    ("kinesis", &["clock", "codec", "log"]),
    // Changing streams while serving.
    (
        "control",
        &[
            "clock",
            "config",
            "delivery",
            "destination",
            "log",
            "names",
            "pipeline",
            "plan",
            "registry",
            "telemetry",
        ],
    ),
    // Replays: a stream's pipeline again, on a range of its log.
    ("replay", &["clock", "config", "control", "delivery", "log", "pipeline", "plan", "registry"]),
    // HTTP: connections, then the Firehose API on them.
    ("listener", &["config", "telemetry"]),
    (
        "api",
        &[
            "clock",
            "config",
            "control",
            "destination",
            "health",
            "kinesis",
            "listener",
            "log",
            "names",
            "operations",
            "plan",
            "processors",
            "registry",
            "replay",
            "telemetry",
        ],
    ),
    // The web console: reads what the API, the registry and the metrics hold.
    (
        "console",
        &[
            "api",
            "clock",
            "config",
            "delivery",
            "destination",
            "kinesis",
            "log",
            "registry",
            "telemetry",
        ],
    ),
    // Composition roots.
    ("server", ANY),
    ("bench", ANY),
    // The fuzz targets' door into the parsers (`fuzz/`, `tests/fuzz_corpus.rs`); nothing imports it.
    ("fuzzing", ANY),
];

/// Today's imports outside [`ALLOWED`]: (from, to, the step that removes them).
const KNOWN: &[(&str, &str, &str)] = &[];

/// Who may use the `hydrant-destinations` crate.
const DESTINATIONS_CRATE: &[&str] = &["config", "delivery", "destination", "pipeline", "plan"];

/// Finer rules inside [`DESTINATIONS_CRATE`] and [`ALLOWED`]: (module, path it may not use).
const DENIED_PATHS: &[(&str, &str)] = &[
    // The registry knows no destination.
    ("registry", "crate::delivery::sink"),
    // Delivery hands objects to a `Sink` and knows no destination, except for the shape of
    // error-output documents, which all destinations share.
    ("delivery", "hydrant_destinations"),
];
/// The paths [`DENIED_PATHS`] still allow.
const DENIED_PATHS_EXCEPT: &[&str] = &["hydrant_destinations::error_output"];

/// Today's files that break [`DESTINATIONS_CRATE`] or [`DENIED_PATHS`]: (file, the step that
/// removes the use).
const KNOWN_CRATE_USES: &[(&str, &str)] = &[];

/// The enum with one variant per destination kind (the config's destination blocks). Only
/// [`ONE_MATCH`] match on it; everything else asks a destination's descriptor.
const DESTINATION_BLOCK: &str = "DestinationBlock";
/// The files that may name [`DESTINATION_BLOCK`]'s variants.
const ONE_MATCH: &[&str] = &["src/config/destinations.rs", "src/destination/mod.rs"];
/// Today's other files that do: (file, the step that removes the match).
const KNOWN_MATCHES: &[(&str, &str)] = &[];

/// Files longer than this say why at their top.
const LONG_FILE_LINES: usize = 600;
/// Today's long files without a reason: (file, the step that splits it or states why).
const KNOWN_LONG_FILES: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn imports_follow_the_layers() {
    let graph = Graph::of_crate();
    let problems: Vec<String> = graph
        .edges()
        .iter()
        .filter(|((from, to), _)| !may_import(from, to) && !is_known(from, to))
        .map(|((from, to), imports)| format!("{from} -> {to}, not in ALLOWED:\n{}", list(imports)))
        .collect();
    assert!(problems.is_empty(), "imports across the layers:\n{}", problems.join("\n"));
}

#[test]
fn known_imports_are_still_there() {
    let graph = Graph::of_crate();
    let edges = graph.edges();
    let stale: Vec<String> = KNOWN
        .iter()
        .filter(|(from, to, _)| {
            may_import(from, to) || !edges.contains_key(&(from.to_string(), to.to_string()))
        })
        .map(|entry| format!("{entry:?}"))
        .collect();
    assert!(stale.is_empty(), "gone or allowed now: delete from KNOWN:\n{}", stale.join("\n"));
}

#[test]
fn the_layers_have_no_cycle() {
    let rules: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
        .collect();
    for (from, to) in &rules {
        for to in to.iter().filter(|t| *t != "*") {
            assert!(rules.contains_key(to), "ALLOWED: {from} may import {to}, which has no row");
        }
    }
    if let Some(cycle) = find_cycle(&rules) {
        panic!("ALLOWED has a cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn imports_have_no_cycle() {
    let graph = Graph::of_crate();
    let edges = graph.edges();
    let mut next: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges.keys().filter(|(from, to)| !is_known(from, to)) {
        next.entry(from.clone()).or_default().insert(to.clone());
    }
    if let Some(cycle) = find_cycle(&next) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                let imports = &edges[&(pair[0].clone(), pair[1].clone())];
                format!("{} -> {}:\n{}", pair[0], pair[1], list(imports))
            })
            .collect();
        panic!("import cycle {}:\n{}", cycle.join(" -> "), steps.join("\n"));
    }
}

#[test]
fn destinations_crate_is_used_where_allowed() {
    let graph = Graph::of_crate();
    let mut found: BTreeMap<&str, Vec<&Import>> = BTreeMap::new();
    for import in &graph.imports {
        let crate_use = under(&import.path, "hydrant_destinations");
        let refused = crate_use && !DESTINATIONS_CRATE.contains(&import.from.as_str());
        let denied = DENIED_PATHS.iter().any(|(module, path)| {
            *module == import.from
                && under(&import.path, path)
                && !DENIED_PATHS_EXCEPT.iter().any(|except| under(&import.path, except))
        });
        if refused || denied {
            found.entry(&import.file).or_default().push(import);
        }
    }
    let known: BTreeSet<&str> = KNOWN_CRATE_USES.iter().map(|(file, _)| *file).collect();
    let problems: Vec<String> = found
        .iter()
        .filter(|(file, _)| !known.contains(*file))
        .map(|(_, imports)| list(imports))
        .collect();
    assert!(
        problems.is_empty(),
        "uses outside DESTINATIONS_CRATE or in DENIED_PATHS:\n{}",
        problems.join("\n")
    );
    let stale: Vec<&str> = known.iter().filter(|f| !found.contains_key(*f)).copied().collect();
    assert!(stale.is_empty(), "gone now: delete from KNOWN_CRATE_USES: {stale:?}");
}

#[test]
fn destination_kinds_are_matched_in_one_place() {
    let mut found: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for file in rust_files("src") {
        let name = relative(&file);
        if ONE_MATCH.contains(&name.as_str()) {
            continue;
        }
        let tokens = lex(&read(&file));
        for (i, token) in tokens.iter().enumerate() {
            let variant = token.text == DESTINATION_BLOCK
                && tokens.get(i + 1).is_some_and(|t| t.text == "::");
            if variant {
                found.entry(name.clone()).or_default().push(token.line);
            }
        }
    }
    let known: BTreeSet<&str> = KNOWN_MATCHES.iter().map(|(file, _)| *file).collect();
    let problems: Vec<String> = found
        .iter()
        .filter(|(file, _)| !known.contains(file.as_str()))
        .map(|(file, lines)| format!("{file}: lines {lines:?}"))
        .collect();
    assert!(
        problems.is_empty(),
        "{DESTINATION_BLOCK}:: named outside {ONE_MATCH:?}:\n{}",
        problems.join("\n")
    );
    let stale: Vec<&str> = known.iter().filter(|f| !found.contains_key(**f)).copied().collect();
    assert!(stale.is_empty(), "gone now: delete from KNOWN_MATCHES: {stale:?}");
}

#[test]
fn long_files_state_their_reason() {
    let mut unexplained = BTreeMap::new();
    for root in ["src", "destinations/src", "tests"] {
        for file in rust_files(root) {
            let text = read(&file);
            let lines = text.lines().count();
            let explained = text.lines().take(20).any(|l| l.starts_with("//! Long file: "));
            if lines > LONG_FILE_LINES && !explained {
                unexplained.insert(relative(&file), lines);
            }
        }
    }
    let known: BTreeSet<&str> = KNOWN_LONG_FILES.iter().map(|(file, _)| *file).collect();
    let problems: Vec<String> = unexplained
        .iter()
        .filter(|(file, _)| !known.contains(file.as_str()))
        .map(|(file, lines)| format!("{file}: {lines} lines"))
        .collect();
    assert!(
        problems.is_empty(),
        "files over {LONG_FILE_LINES} lines without a `//! Long file: <reason>` line in their \
         first 20 lines (split them, or say why they are long):\n{}",
        problems.join("\n")
    );
    let stale: Vec<&str> =
        known.iter().filter(|f| !unexplained.contains_key(**f)).copied().collect();
    assert!(stale.is_empty(), "short or explained now: delete from KNOWN_LONG_FILES: {stale:?}");
}

/// `docs/architecture.md`'s module table names every top-level module, and its last column
/// ("May import") says what [`ALLOWED`] says, so the map newcomers read is the one enforced.
#[test]
fn the_architecture_doc_shows_every_module_and_its_allowed_imports() {
    let doc = read(&source::root().join("docs/architecture.md"));
    let rows: BTreeMap<String, String> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> =
                line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let module = cells.first()?.strip_prefix("`src/")?.strip_suffix('`')?;
            let module = module.strip_suffix(".rs").unwrap_or(module);
            Some((module.to_string(), cells.last()?.to_string()))
        })
        .collect();
    let mut problems = Vec::new();
    let top_level = std::fs::read_dir(source::root().join("src")).expect("src/").flatten();
    for entry in top_level {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_module = entry.path().is_dir() && name != "testdata"
            || name.ends_with(".rs") && name != "lib.rs" && name != "main.rs";
        let module = name.strip_suffix(".rs").unwrap_or(&name);
        if is_module && !rows.contains_key(module) {
            problems.push(format!("src/{name} has no row in the module table"));
        }
    }
    for (module, allowed) in ALLOWED {
        let said = match rows.get(*module) {
            Some(said) => said,
            None => {
                problems.push(format!("{module}: in ALLOWED but not in the module table"));
                continue;
            }
        };
        let expected = if *allowed == ANY {
            "any".to_string()
        } else if allowed.is_empty() {
            "nothing".to_string()
        } else {
            allowed.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        };
        if *said != expected {
            problems.push(format!("{module}: the table says {said:?}, ALLOWED says {expected:?}"));
        }
    }
    assert!(problems.is_empty(), "docs/architecture.md is out of date:\n{}", problems.join("\n"));
}

/// Prints the import graph, one line per pair of modules with its number of imports:
/// `cargo test --test architecture -- --ignored --nocapture`.
#[test]
#[ignore = "prints the graph; run by hand"]
fn print_import_graph() {
    let graph = Graph::of_crate();
    for ((from, to), imports) in graph.edges() {
        let mark = if may_import(&from, &to) { "" } else { "  (not in ALLOWED)" };
        println!("{from} -> {to}: {}{mark}", imports.len());
    }
    let mut crate_uses = BTreeMap::<(&str, &str), usize>::new();
    for import in graph.imports.iter().filter(|i| i.to.is_empty()) {
        *crate_uses.entry((&import.from, &import.file)).or_default() += 1;
    }
    for ((from, file), n) in crate_uses {
        println!("{from} uses hydrant_destinations in {file}: {n}");
    }
}

fn may_import(from: &str, to: &str) -> bool {
    ALLOWED.iter().any(|(module, allowed)| {
        *module == from && (allowed.contains(&"*") || allowed.contains(&to))
    })
}

fn is_known(from: &str, to: &str) -> bool {
    KNOWN.iter().any(|(f, t, _)| *f == from && *t == to)
}

/// Whether `path` is `prefix` or below it (`crate::delivery::sink::Sink` is under
/// `crate::delivery::sink`, `crate::delivery::sinks` is not).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with("::"))
}

fn list(imports: &[&Import]) -> String {
    let lines: Vec<String> =
        imports.iter().map(|i| format!("  {}:{} {}", i.file, i.line, i.path)).collect();
    lines.join("\n")
}

/// A cycle in `next` as `[a, b, .., a]`, if there is one (depth-first search).
fn find_cycle(next: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        next: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    next.keys().find_map(|node| visit(node, next, &mut Vec::new(), &mut done))
}
