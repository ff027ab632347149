//! The `aws firehose` calls of a shell example and the JSON they pass.

use std::collections::HashMap;

/// One `aws firehose <operation>` call (or `fh <operation>`, the alias docs/api.md defines).
#[derive(Debug, PartialEq)]
pub struct Call {
    /// `PutRecordBatch` for `put-record-batch`.
    pub operation: String,
    /// The options whose value is JSON, inline (`--records '[...]'`) or a file the same block
    /// writes with a here-document (`--x file://s3.json` after `cat > s3.json <<'EOF'`), as
    /// (option without `--`, JSON text).
    pub json_options: Vec<(String, String)>,
    /// `--cli-binary-format raw-in-base64-out`: blobs in the JSON are raw text, not base64.
    pub raw_blobs: bool,
}

pub fn firehose_calls(script: &str) -> Vec<Call> {
    let joined = script.replace("\\\n", " ");
    let mut files = HashMap::new();
    let mut calls = Vec::new();
    let mut lines = joined.lines();
    while let Some(line) = lines.next() {
        let line = line.trim().trim_start_matches("$ ");
        let words = split_words(line);
        // cat > NAME <<'EOF' ... EOF
        if let [cat, gt, name, heredoc] = words.as_slice() {
            if cat == "cat" && gt == ">" && heredoc.starts_with("<<") {
                let end = heredoc.trim_start_matches("<<").trim_matches('\'');
                let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != end).collect();
                files.insert(name.clone(), body.join("\n"));
                continue;
            }
        }
        let rest = match words.iter().position(|w| w == "firehose" || w == "fh") {
            Some(i) if words[i] == "fh" || (i > 0 && words[i - 1] == "aws") => &words[i + 1..],
            _ => continue,
        };
        let Some(command) = rest.first() else { continue };
        let mut call =
            Call { operation: pascal(command), json_options: Vec::new(), raw_blobs: false };
        for pair in rest[1..].windows(2) {
            let (Some(option), value) = (pair[0].strip_prefix("--"), &pair[1]) else { continue };
            if option == "cli-binary-format" {
                call.raw_blobs = value == "raw-in-base64-out";
                continue;
            }
            let json = match value.strip_prefix("file://") {
                Some(name) => files.get(name).cloned(),
                None if value.starts_with('{') || value.starts_with('[') => Some(value.clone()),
                None => None,
            };
            if let Some(json) = json {
                call.json_options.push((option.to_owned(), json));
            }
        }
        calls.push(call);
    }
    calls
}

/// `put-record-batch` -> `PutRecordBatch`.
fn pascal(command: &str) -> String {
    command
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Splits a command line into words as a shell would for these examples: quotes group and
/// are removed, `#` at the start of a word ends the line.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '#') if !in_word => break,
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn calls_and_their_json_are_found() {
    let script = "export A=b\nalias fh='aws firehose --endpoint-url http://x'\n\
                  cat > s3.json <<'EOF'\n{\"BucketARN\": \"arn:aws:s3:::raw\"}\nEOF\n\
                  fh create-delivery-stream --delivery-stream-name c \\\n    --extended-s3-destination-configuration file://s3.json --tags Key=a,Value=b\n\
                  $ aws firehose put-record --endpoint-url http://x --cli-binary-format raw-in-base64-out --record '{\"Data\":\"hi\"}'   # raw\n";
    let calls = firehose_calls(script);
    assert_eq!(
        calls,
        [
            Call {
                operation: "CreateDeliveryStream".into(),
                json_options: vec![(
                    "extended-s3-destination-configuration".into(),
                    "{\"BucketARN\": \"arn:aws:s3:::raw\"}".into()
                )],
                raw_blobs: false,
            },
            Call {
                operation: "PutRecord".into(),
                json_options: vec![("record".into(), "{\"Data\":\"hi\"}".into())],
                raw_blobs: true,
            },
        ]
    );
}
