//! The fenced code blocks of the repository's Markdown files.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose examples users copy: the READMEs and everything under `docs/`.
pub fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("docs/ is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut files: Vec<PathBuf> = ["README.md", "deploy/README.md", "transforms/README.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let mut docs = Vec::new();
    walk(&root.join("docs"), &mut docs);
    docs.sort();
    files.extend(docs);
    files
}

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// `docs/configuration.md:62`: the file (relative to the root) and the line of the
    /// opening fence.
    pub place: String,
    /// The first word of the info string (`yaml`, `json`, `sh`), or empty.
    pub lang: String,
    /// The rest of the info string (```` ```yaml stream ```` gives `stream`).
    pub kind: String,
    /// The lines between the fences, without the fence's indentation.
    pub text: String,
}

/// Every fenced block of `file`, in order. A fence may be indented (inside a list item); its
/// indentation is removed from the block's lines.
pub fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).expect("readable Markdown");
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let Some(info) = line.trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("").to_owned();
        let kind = words.collect::<Vec<_>>().join(" ");
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && lines[i].trim() != "```" {
            let l = lines[i];
            body.push(if l.len() >= indent && l[..indent].trim().is_empty() {
                &l[indent..]
            } else {
                l
            });
            i += 1;
        }
        assert!(i < lines.len(), "{name}:{}: a code block is not closed", start + 1);
        out.push(Block {
            place: format!("{name}:{}", start + 1),
            lang,
            kind,
            text: body.join("\n") + "\n",
        });
        i += 1;
    }
    out
}

/// The names of the `${NAME}` references in `text` (not `$${`, which is a literal).
pub fn env_references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let escaped = rest[..i].ends_with('$');
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        if !escaped && !names.iter().any(|n| n == &rest[..end]) {
            names.push(rest[..end].to_owned());
        }
        rest = &rest[end + 1..];
    }
    names
}

#[test]
fn blocks_are_found_with_their_info_string_and_indentation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.md");
    std::fs::write(
        &file,
        "text\n```yaml stream\na: 1\n```\n- item\n\n  ```sh\n  echo hi\n    more\n  ```\n",
    )
    .unwrap();
    let found = blocks(&file);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].lang.as_str(), found[0].kind.as_str()), ("yaml", "stream"));
    assert_eq!(found[0].text, "a: 1\n");
    assert!(found[0].place.ends_with("x.md:2"), "{}", found[0].place);
    assert_eq!((found[1].lang.as_str(), found[1].kind.as_str()), ("sh", ""));
    assert_eq!(found[1].text, "echo hi\n  more\n");
}

#[test]
fn env_references_skip_literal_dollars() {
    assert_eq!(env_references("a: ${A}\nb: \"x${B}y${A}\"\nc: $${NOT}\nd: $5\n"), ["A", "B"]);
}
