//! A stream's `Tags`, as Firehose's service model constrains them.

use std::collections::HashMap;

use super::truncate;
use crate::config::{Issue, Tag};

/// Most tags a stream may have (Firehose).
pub const MAX_TAGS: usize = 50;

/// Checks a stream's tags (count, key and value rules); `path` is the stream's.
pub(crate) fn check_tags(tags: &[Tag], path: &str, issues: &mut Vec<Issue>) {
    if tags.len() > MAX_TAGS {
        issues.push(Issue::new(
            format!("{path}.Tags"),
            format!(
                "has {} tags, at most {MAX_TAGS} are allowed; remove {}",
                tags.len(),
                tags.len() - MAX_TAGS
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, tag) in tags.iter().enumerate() {
        let key = &tag.key;
        let key_path = format!("{path}.Tags[{i}].Key");
        let len = key.chars().count();
        if !(1..=128).contains(&len) {
            issues.push(Issue::new(
                &key_path,
                format!("must be 1 to 128 characters, got {len} ({key:?})"),
            ));
        }
        if key.starts_with("aws:") {
            issues.push(Issue::new(
                &key_path,
                format!("{key:?} starts with `aws:`, which is reserved; choose another key"),
            ));
        }
        if !key.chars().all(is_tag_char) {
            issues.push(Issue::new(
                &key_path,
                format!(
                    "{key:?} has characters other than letters, digits, spaces and _ . : / = + - \
                     @ %; remove them"
                ),
            ));
        }
        if let Some(first) = seen.insert(key, i) {
            issues.push(Issue::new(
                &key_path,
                format!("{key:?} is already used by Tags[{first}]; tag keys must be unique"),
            ));
        }
        if let Some(value) = &tag.value {
            let value_path = format!("{path}.Tags[{i}].Value");
            let len = value.chars().count();
            if len > 256 {
                issues.push(Issue::new(
                    &value_path,
                    format!("is {len} characters long, at most 256 are allowed; shorten it"),
                ));
            }
            if !value.chars().all(is_tag_char) {
                issues.push(Issue::new(
                    &value_path,
                    format!(
                        "{:?} has characters other than letters, digits, spaces and _ . : / = \
                         + - @ %; remove them",
                        truncate(value, 40)
                    ),
                ));
            }
        }
    }
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@%]` from the service model's TagKey / TagValue patterns.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_characters_allow_letters_digits_spaces_and_the_listed_symbols() {
        assert!("team Data_1.:/=+-@%é".chars().all(is_tag_char));
        assert!(!"a#b".chars().all(is_tag_char));
        assert!(!"a\tb".chars().all(is_tag_char));
    }
}
