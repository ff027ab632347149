//! `${NAME}` references to environment variables.
//!
//! Expansion runs on the parsed YAML tree, before it is turned into the config structs, and
//! only touches string values (never keys, never numbers or booleans). Because the YAML is
//! already parsed, a variable's value is used verbatim: `#`, `:`, quotes or newlines in a
//! secret cannot change the structure of the file.
//!
//! - `${NAME}` is replaced by the variable's value. `NAME` is letters, digits and `_`, not
//!   starting with a digit.
//! - `$${` stands for a literal `${` (so `$${HOME}` gives the text `${HOME}`).
//! - Any other `$` is kept as is.
//! - A variable that is not set is an error naming the variable and the field; so is a `${`
//!   that does not start a valid reference.
//! - Values are not expanded again (a variable whose value contains `${X}` is kept literally).

use std::env::VarError;

use serde_yaml_ng::Value;

use super::ConfigError;

/// Looks up one variable; `std::env::var` in production, a map in tests.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// Expands every `${NAME}` in the string scalars of `value`, in place.
pub(crate) fn expand_tree(value: &mut Value, lookup: Lookup<'_>) -> Result<(), ConfigError> {
    walk(value, &mut String::new(), lookup)
}

fn walk(value: &mut Value, path: &mut String, lookup: Lookup<'_>) -> Result<(), ConfigError> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                *s = expand_str(s, lookup).map_err(|(var, reason)| ConfigError::Env {
                    var,
                    path: if path.is_empty() { ".".to_owned() } else { path.clone() },
                    reason,
                })?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, lookup)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key_text(key));
                walk(item, path, lookup)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, lookup),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Expands one string. On error returns (variable name as written, reason).
pub(crate) fn expand_str(s: &str, lookup: Lookup<'_>) -> Result<String, (String, String)> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let at = &rest[i..];
        if let Some(after) = at.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = at.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err((
                    body.to_owned(),
                    format!(
                        "`${{{body}` has no closing `}}`; write `${{NAME}}` to insert the \
                         environment variable NAME, or `$${{` for a literal `${{`"
                    ),
                ));
            };
            let name = &body[..end];
            if !is_valid_name(name) {
                return Err((
                    name.to_owned(),
                    format!(
                        "`${{{name}}}` is not a valid environment variable reference: a name is \
                         letters, digits and `_`, not starting with a digit; write `$${{` for a \
                         literal `${{`"
                    ),
                ));
            }
            match lookup(name) {
                Ok(v) => out.push_str(&v),
                Err(VarError::NotPresent) => {
                    return Err((
                        name.to_owned(),
                        format!(
                            "environment variable {name} is not set; set it before starting \
                             Hydrant, or write `$${{` for a literal `${{`"
                        ),
                    ))
                }
                Err(VarError::NotUnicode(_)) => {
                    return Err((
                        name.to_owned(),
                        format!("environment variable {name} is not valid UTF-8; fix its value"),
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &at[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Result<String, VarError> {
        match name {
            "USER_NAME" => Ok("minio".to_owned()),
            "TRICKY" => Ok("a #: \"b' ${NOT_EXPANDED}\n- x".to_owned()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn a_reference_is_replaced_by_the_variable_value() {
        assert_eq!(expand_str("u=${USER_NAME}!", &lookup).unwrap(), "u=minio!");
        assert_eq!(expand_str("${USER_NAME}${USER_NAME}", &lookup).unwrap(), "miniominio");
        assert_eq!(expand_str("${EMPTY}", &lookup).unwrap(), "");
    }

    #[test]
    fn a_double_dollar_brace_is_a_literal_dollar_brace() {
        assert_eq!(expand_str("$${USER_NAME}", &lookup).unwrap(), "${USER_NAME}");
        // Scanning is left to right: a `$` that does not start `$${` or `${` is kept.
        assert_eq!(expand_str("$$${USER_NAME}", &lookup).unwrap(), "$${USER_NAME}");
    }

    #[test]
    fn a_lone_dollar_is_kept() {
        assert_eq!(expand_str("cost $5 $ $$ end$", &lookup).unwrap(), "cost $5 $ $$ end$");
    }

    #[test]
    fn values_are_not_expanded_twice() {
        let v = expand_str("${TRICKY}", &lookup).unwrap();
        assert_eq!(v, "a #: \"b' ${NOT_EXPANDED}\n- x");
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let (var, reason) = expand_str("x${NOPE}y", &lookup).unwrap_err();
        assert_eq!(var, "NOPE");
        assert!(reason.contains("environment variable NOPE is not set"), "{reason}");
    }

    #[test]
    fn an_unterminated_or_malformed_reference_is_an_error() {
        let (_, reason) = expand_str("x${NOPE", &lookup).unwrap_err();
        assert!(reason.contains("no closing"), "{reason}");
        let (var, reason) = expand_str("${1ABC}", &lookup).unwrap_err();
        assert_eq!(var, "1ABC");
        assert!(reason.contains("not a valid"), "{reason}");
        let (var, _) = expand_str("${A B}", &lookup).unwrap_err();
        assert_eq!(var, "A B");
    }

    #[test]
    fn the_tree_walk_expands_strings_only_and_reports_the_field_path() {
        let mut v: Value = serde_yaml_ng::from_str(
            "a: ${USER_NAME}\n\"${USER_NAME}\": 1\nlist: [x, {k: \"${USER_NAME}\"}]\nn: 5\n",
        )
        .unwrap();
        expand_tree(&mut v, &lookup).unwrap();
        let expected: Value =
            serde_yaml_ng::from_str("a: minio\n\"${USER_NAME}\": 1\nlist: [x, {k: minio}]\nn: 5\n")
                .unwrap();
        assert_eq!(v, expected);

        let mut v: Value = serde_yaml_ng::from_str(
            "outer:\n  list:\n    - ok\n    - {secret: \"${MISSING_ONE}\"}\n",
        )
        .unwrap();
        match expand_tree(&mut v, &lookup).unwrap_err() {
            ConfigError::Env { var, path, .. } => {
                assert_eq!(var, "MISSING_ONE");
                assert_eq!(path, "outer.list[1].secret");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
