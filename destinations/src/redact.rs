//! Credentials inside URLs, masked wherever a URL is shown.
//!
//! A destination URL may carry a password: `postgres://user:password@host/db`,
//! `jdbc:postgresql://host/db?password=...`, `https://user:password@host/path` (sent as basic
//! authentication). Such URLs are accepted (configurations written before the `Password` and
//! `AccessKey` members were the only way are still valid), so every place that shows one
//! (`Debug` output, DescribeDeliveryStream answers) shows it through
//! [`redact_url_credentials`] instead.

use std::borrow::Cow;

/// What a masked credential is replaced with.
pub const REDACTED: &str = "<redacted>";

/// `text` with the password of its `user:password@` part and the value of every `password=`
/// query parameter replaced by [`REDACTED`]; `text` as it is when it holds neither (or is not
/// a URL at all).
pub fn redact_url_credentials(text: &str) -> Cow<'_, str> {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(text);
    };
    let after_scheme = &text[scheme_end..];
    let authority_len = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_len];
    let rest = &after_scheme[authority_len..];

    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..scheme_end]);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => {
                changed = true;
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        },
        None => out.push_str(authority),
    }

    let (before_fragment, fragment) = match rest.find('#') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((key, _value)) if key.eq_ignore_ascii_case("password") => {
                        changed = true;
                        out.push_str(key);
                        out.push('=');
                        out.push_str(REDACTED);
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Applies [`redact_url_credentials`] to every string inside `value` (a configuration block
/// about to be shown).
pub fn redact_url_credentials_in(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let Cow::Owned(masked) = redact_url_credentials(text) {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_url_credentials_in),
        Value::Object(members) => members.values_mut().for_each(redact_url_credentials_in),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_userinfo_and_query_are_masked() {
        let cases = [
            (
                "postgres://u:hunter22@db.example.com:5432/d",
                "postgres://u:<redacted>@db.example.com:5432/d",
            ),
            (
                "jdbc:postgresql://h:5432/db?user=u&password=hunter22&ApplicationName=x",
                "jdbc:postgresql://h:5432/db?user=u&password=<redacted>&ApplicationName=x",
            ),
            ("postgresql://h/db?PASSWORD=hunter22", "postgresql://h/db?PASSWORD=<redacted>"),
            (
                "https://hook:hunter22@logs.example.com/in?x=1#f",
                "https://hook:<redacted>@logs.example.com/in?x=1#f",
            ),
            // A password holding `@` is cut at the last one, which ends the userinfo.
            ("https://u:p@ss@h/in", "https://u:<redacted>@h/in"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url_credentials(url), shown, "{url}");
            assert!(!redact_url_credentials(url).contains("hunter22"));
        }
    }

    #[test]
    fn urls_without_credentials_and_other_text_are_left_alone() {
        for text in [
            "https://logs.example.com/in?token=abc",
            "https://user@logs.example.com/in",
            "jdbc:redshift://c.example.com:5439/dev",
            "GZIP DELIMITER ','",
            "arn:aws:s3:::bucket",
            "",
        ] {
            assert!(
                matches!(redact_url_credentials(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn every_string_of_a_block_is_masked() {
        let mut block = serde_json::json!({
            "ClusterJDBCURL": "postgres://u:hunter22@h/d",
            "Nested": [{"Url": "https://a:hunter22@h/"}],
            "Size": 5,
        });
        redact_url_credentials_in(&mut block);
        let text = block.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert_eq!(block["Size"], 5);
    }
}
