//! Reading the process's own Prometheus text (`Metrics::render`): the console's numbers are
//! the ones `/metrics` shows, read only while the sampler runs or someone polls.

/// One sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// The samples of `text` whose metric name `wanted` accepts (others are skipped before their
/// labels are parsed); malformed lines are skipped.
pub fn samples<'a>(
    text: &'a str,
    wanted: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = Sample<'a>> + 'a {
    text.lines().filter_map(move |line| {
        if line.starts_with('#') || line.is_empty() {
            return None;
        }
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        if !wanted(name) {
            return None;
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..])?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest.split_whitespace().next()?.parse().ok()?;
        Some(Sample { name, labels, value })
    })
}

/// `k="v",k2="v2"}` -> the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches(',');
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = text.find('=')?;
        let key = &text[..eq];
        let mut chars = text[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut escaped = false;
        let end = loop {
            let (i, c) = chars.next()?;
            if escaped {
                value.push(if c == 'n' { '\n' } else { c });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                break i;
            } else {
                value.push(c);
            }
        };
        labels.push((key, value));
        text = &text[eq + 1 + end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_and_unwanted_names_skipped() {
        let text = "# HELP x\n# TYPE x counter\n\
            hydrant_incoming_records_total{stream=\"a\"} 12\n\
            hydrant_other{stream=\"a\"} 1\n\
            hydrant_lease_owner{stream=\"s\\\"q\",shard=\"1\",node=\"n,1\"} 1\n\
            plain 2.5\n\
            broken{stream=\"a\" 3\n";
        let wanted = |n: &str| n != "hydrant_other";
        let all: Vec<_> = samples(text, wanted).collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].label("stream"), Some("a"));
        assert_eq!(all[0].value, 12.0);
        assert_eq!(all[1].label("stream"), Some("s\"q"));
        assert_eq!(all[1].label("node"), Some("n,1"));
        assert_eq!(all[2].name, "plain");
        assert_eq!(all[2].label("stream"), None);
    }
}
