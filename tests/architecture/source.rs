//! Reading the crate's source as text: its files, a lexer that knows just enough Rust, and the
//! import graph between top-level modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// The import graph.

/// One path that names another part of the crate, or the destinations crate.
#[derive(Debug)]
pub struct Import {
    /// The importing file's top-level module.
    pub from: String,
    /// The imported top-level module (empty for the destinations crate).
    pub to: String,
    /// Written from the crate root: `crate::api::ApiError`, `hydrant_destinations::s3::KeyRules`.
    pub path: String,
    pub file: String,
    pub line: usize,
}

/// Every import of every file of the crate.
pub struct Graph {
    pub imports: Vec<Import>,
}

impl Graph {
    pub fn of_crate() -> Graph {
        let mut imports = Vec::new();
        let files: Vec<(String, Vec<String>, Vec<Token>)> = rust_files("src")
            .into_iter()
            .filter_map(|file| {
                let name = relative(&file);
                let module = module_path(&name)?;
                Some((name, module, lex(&read(&file))))
            })
            .collect();
        // A `#[macro_export]` macro lives at the crate root but belongs to its module:
        // `crate::<macro>` imports the module that defines it.
        let mut macros: BTreeMap<String, String> = BTreeMap::new();
        for (_, module, tokens) in &files {
            let Some(top) = module.first() else { continue };
            for name in exported_macros(tokens) {
                macros.insert(name, top.clone());
            }
        }
        for (name, module, tokens) in &files {
            let Some(top) = module.first().cloned() else { continue };
            for (path, line) in paths(tokens, module) {
                let to = match path.strip_prefix("crate::") {
                    Some(rest) => {
                        let first = rest.split("::").next().unwrap_or("");
                        macros.get(first).cloned().unwrap_or_else(|| first.to_string())
                    }
                    None => String::new(),
                };
                imports.push(Import { from: top.clone(), to, path, file: name.clone(), line });
            }
        }
        Graph { imports }
    }

    /// The imports from one top-level module into another, by (from, to).
    pub fn edges(&self) -> BTreeMap<(String, String), Vec<&Import>> {
        let mut edges: BTreeMap<(String, String), Vec<&Import>> = BTreeMap::new();
        for import in &self.imports {
            if !import.to.is_empty() && import.to != import.from {
                edges.entry((import.from.clone(), import.to.clone())).or_default().push(import);
            }
        }
        edges
    }
}

/// The names of the `#[macro_export] macro_rules! name` in `tokens`.
fn exported_macros(tokens: &[Token]) -> Vec<String> {
    let mut names = Vec::new();
    let mut exported = false;
    for window in tokens.windows(3) {
        match window[0].text.as_str() {
            "macro_export" => exported = true,
            "macro_rules" if window[1].text == "!" => {
                if exported {
                    names.push(window[2].text.clone());
                }
                exported = false;
            }
            _ => {}
        }
    }
    names
}

/// The module path of a file of the library: `src/api/auth/tests.rs` -> `[api, auth, tests]`,
/// `src/api/mod.rs` -> `[api]`. `None` for `src/main.rs` (another crate, which uses
/// `hydrant::`).
fn module_path(file: &str) -> Option<Vec<String>> {
    let inner = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    if inner == "main" {
        return None;
    }
    let mut parts: Vec<String> = inner.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    Some(parts)
}

/// Every `crate::`, `super::` and `hydrant_destinations::` path in `tokens`, written from the
/// crate root, with its line. `module` is the file's module path; inline `mod x { .. }` blocks
/// extend it for the `super::` inside them.
pub fn paths(tokens: &[Token], module: &[String]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        match token.text.as_str() {
            "{" => depth += 1,
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t.text == "{") => {
                inline.push((tokens[i + 1].text.clone(), depth + 1));
            }
            _ => {}
        }
        let starts_path = !(i >= 1 && tokens[i - 1].text == "::")
            && tokens.get(i + 1).is_some_and(|t| t.text == "::");
        let start = match token.text.as_str() {
            _ if !starts_path => None,
            "crate" => Some((vec!["crate".to_string()], i + 2)),
            "hydrant_destinations" => Some((vec![token.text.clone()], i + 2)),
            "super" => {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                let mut j = i;
                while tokens.get(j).is_some_and(|t| t.text == "super")
                    && tokens.get(j + 1).is_some_and(|t| t.text == "::")
                {
                    here.pop();
                    j += 2;
                }
                Some((std::iter::once("crate".to_string()).chain(here).collect(), j))
            }
            _ => None,
        };
        match start {
            Some((base, rest)) => {
                let mut trees = Vec::new();
                i = use_tree(tokens, rest, &base, &mut trees);
                found.extend(trees.into_iter().map(|path| (path, token.line)));
            }
            None => i += 1,
        }
    }
    found
}

/// Reads a use tree (or a plain path) starting at `tokens[i]`, after `prefix::`; pushes each
/// full path to `out` and returns the index after it.
fn use_tree(tokens: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<String>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i) {
            Some(t) if t.text == "{" => {
                i += 1;
                while tokens.get(i).is_some_and(|t| t.text != "}") {
                    let after = use_tree(tokens, i, &path, out);
                    // Past the entry, its `,`, or a token no use tree has.
                    i = if tokens.get(after).is_some_and(|t| t.text == ",") || after == i {
                        after + 1
                    } else {
                        after
                    };
                }
                return i + 1;
            }
            Some(t) if t.text == "*" || t.text == "self" => {
                out.push(path.join("::"));
                return i + 1;
            }
            Some(t) if t.is_word() => {
                path.push(t.text.clone());
                i += 1;
                if tokens.get(i).is_some_and(|t| t.text == "::") {
                    i += 1;
                    continue;
                }
                out.push(path.join("::"));
                if tokens.get(i).is_some_and(|t| t.text == "as") {
                    i += 2;
                }
                return i;
            }
            _ => {
                out.push(path.join("::"));
                return i;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A lexer that knows just enough Rust: words (identifiers, keywords, numbers), `::` and single
// punctuation, with comments, strings, chars and lifetimes left out.

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub text: String,
    pub line: usize,
}

impl Token {
    pub fn is_word(&self) -> bool {
        self.text.starts_with(|c: char| c.is_alphabetic() || c == '_')
    }
}

pub fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips to the end of a quoted literal opened just before `i` (escapes allowed); counts lines.
    let skip_quoted = |i: &mut usize, line: &mut usize, quote: char| {
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' {
                *i += 1;
            }
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            skip_quoted(&mut i, &mut line, '"');
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            if next == Some('\\') || chars.get(i + 2) == Some(&'\'') {
                i += 1;
                skip_quoted(&mut i, &mut line, '\'');
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let quote = chars.get(i).copied();
            if matches!(word.as_str(), "r" | "br" | "cr") && matches!(quote, Some('"' | '#')) {
                // A raw string r#"..."#, unless it is a raw identifier (r#type).
                let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + hashes) == Some(&'"') {
                    i += hashes + 1;
                    let end: Vec<char> = std::iter::once('"').chain(vec!['#'; hashes]).collect();
                    while i < chars.len() && !chars[i..].starts_with(&end) {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    i += end.len();
                } else {
                    i += hashes;
                }
                continue;
            }
            if matches!(word.as_str(), "b" | "c") && quote == Some('"') {
                i += 1;
                skip_quoted(&mut i, &mut line, '"');
                continue;
            }
            if word == "b" && quote == Some('\'') {
                i += 1;
                skip_quoted(&mut i, &mut line, '\'');
                continue;
            }
            tokens.push(Token { text: word, line });
        } else if c == ':' && next == Some(':') {
            tokens.push(Token { text: "::".into(), line });
            i += 2;
        } else {
            tokens.push(Token { text: c.to_string(), line });
            i += 1;
        }
    }
    tokens
}

#[test]
fn the_lexer_skips_comments_strings_and_lifetimes() {
    let source = r##"
        // crate::a in a comment
        /* crate::b /* nested crate::c */ crate::d */
        fn f<'a>(x: &'a str) -> char { let _ = "crate::e \" crate::f"; let _ = r#"crate::g"#;
            let _ = b"crate::h"; let _ = '"'; let _ = '\''; let _ = b'x'; crate::real::Thing }
        use crate::{one, two::{three, four as five}, six::*};
        mod inner { use super::super::seven; }
        "##;
    let found: Vec<(String, usize)> = paths(&lex(source), &["top".to_string()]);
    let found: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        found,
        [
            "crate::real::Thing",
            "crate::one",
            "crate::two::three",
            "crate::two::four",
            "crate::six",
            "crate::seven",
        ]
    );
    assert_eq!(lex(source).iter().find(|t| t.text == "real").map(|t| t.line), Some(5));
}

// ---------------------------------------------------------------------------------------------
// Files.

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the workspace root), sorted.
pub fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), &mut files);
    files.sort();
    files
}

/// `src/api/mod.rs`, with `/` separators.
pub fn relative(file: &Path) -> String {
    let path = file.strip_prefix(root()).expect("under the workspace");
    path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

pub fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn exported_macros_are_found_and_other_macros_are_not() {
    let source =
        "#[macro_export]\nmacro_rules! shared { () => {} }\nmacro_rules! local { () => {} }\n\
                  #[doc(hidden)]\n#[macro_export]\nmacro_rules! hidden { () => {} }\n";
    assert_eq!(exported_macros(&lex(source)), ["shared", "hidden"]);
}
