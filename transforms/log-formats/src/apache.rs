//! Apache HTTP Server access log lines: the Common Log Format
//! (`%h %l %u %t "%r" %>s %b`) and the Combined Log Format (the same, then
//! `"%{Referer}i" "%{User-agent}i"`), as nginx's default `combined` format writes them too.
//!
//! ```text
//! 127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"
//! ```
//!
//! What the AWS blueprints (`kinesis-firehose-apachelog-to-json`, `-to-csv`) accept, this
//! accepts, with these differences, each for lines the blueprints reject or mangle:
//! - the host may be any token (a host name or an IPv6 address), not only digits and dots;
//! - a `-` size (Apache's "no body sent") is read as 0 rather than failing the line;
//! - the Combined format's referrer and user agent are parsed (the blueprints ignore them);
//! - a request, referrer or user agent may contain `\"` (Apache escapes quotes that way);
//! - a date that does not exist (`31/Feb/...`) fails the line.
//!
//! Text after the recognised fields (custom formats that append `%D` and the like) is ignored,
//! as the blueprints' unanchored regular expressions ignore it.

use crate::cursor::Cursor;
use crate::out::{Csv, Json};
use crate::time::DateTime;
use crate::{Error, Result};

/// One parsed access log line; the string fields borrow from it, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    pub host: &'a str,
    pub ident: &'a str,
    pub authuser: &'a str,
    /// `%t` between the brackets: `10/Oct/2000:13:55:36 -0700`.
    pub datetime: &'a str,
    /// The local date and time of `%t`.
    pub local: DateTime,
    /// The UTC offset of `%t` as written (`-0700`) and in minutes, if it has one.
    pub zone: Option<(&'a str, i32)>,
    /// `%r`, between the quotes, escapes as Apache wrote them.
    pub request: &'a str,
    pub status: u16,
    /// `%b`; `-` (no body) is 0.
    pub bytes: u64,
    /// The Combined format's two extra fields; `None` for a Common Log Format line.
    pub referrer: Option<&'a str>,
    pub agent: Option<&'a str>,
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn fail<T>(what: &str) -> Result<T> {
    Err(Error::new(format!("not an Apache access log line: {what}")))
}

/// `dd/Mon/yyyy:HH:MM:SS` and an optional ` ±hhmm`.
fn datetime(text: &str) -> Option<(DateTime, Option<(&str, i32)>)> {
    let mut c = Cursor::new(text);
    let day = c.digits(2, 2)?;
    c.eat(b'/').then_some(())?;
    let month = c.take_while(|b| b.is_ascii_alphabetic());
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    c.eat(b'/').then_some(())?;
    let year = c.digits(4, 4)?;
    c.eat(b':').then_some(())?;
    let hour = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let second = c.digits(2, 2)?;
    let local = DateTime { year: i64::from(year), month, day, hour, minute, second };
    if !local.valid() || second > 59 {
        return None;
    }
    if c.at_end() {
        return Some((local, None));
    }
    c.eat(b' ').then_some(())?;
    let zone_start = c.pos;
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.pos += 1;
    let hh = c.fixed_digits(2)?;
    let mm = c.fixed_digits(2)?;
    if !c.at_end() || hh > 23 || mm > 59 {
        return None;
    }
    Some((local, Some((&text[zone_start..], sign * (hh * 60 + mm) as i32))))
}

/// A non-empty token and the space after it.
fn field<'a>(c: &mut Cursor<'a>, name: &str) -> Result<&'a str> {
    let Some(token) = c.token() else {
        return fail(&format!("no {name}"));
    };
    if !c.eat(b' ') {
        return fail(&format!("nothing after the {name}"));
    }
    Ok(token)
}

/// Parses one access log line (without its newline).
pub fn parse(line: &str) -> Result<Access<'_>> {
    let mut c = Cursor::new(line);
    let host = field(&mut c, "host")?;
    let ident = field(&mut c, "ident")?;
    let authuser = field(&mut c, "authuser")?;
    if !c.eat(b'[') {
        return fail("no [date] after the user");
    }
    let Some(close) = c.rest().find(']') else {
        return fail("the [date] is not closed");
    };
    let datetime_text = &c.rest()[..close];
    c.pos += close + 1;
    let Some((local, zone)) = datetime(datetime_text) else {
        return fail(&format!("bad date [{datetime_text}] (expected dd/Mon/yyyy:HH:MM:SS ±hhmm)"));
    };
    if !c.eat(b' ') {
        return fail("nothing after the date");
    }
    let Some(request) = c.quoted_raw() else {
        return fail("no quoted request after the date");
    };
    if !c.eat(b' ') {
        return fail("nothing after the request");
    }
    let Some(status) = c.digits(3, 3) else {
        return fail("the status is not a 3-digit number");
    };
    if !c.eat(b' ') {
        return fail("no size after the status");
    }
    let bytes = if c.eat(b'-') {
        0
    } else {
        let size = c.take_while(|b| b.is_ascii_digit());
        match size.parse::<u64>() {
            Ok(n) if !size.is_empty() => n,
            _ => return fail("the size is neither a number nor -"),
        }
    };
    let (mut referrer, mut agent) = (None, None);
    if !c.at_end() {
        if !c.eat(b' ') {
            return fail("the size is neither a number nor -");
        }
        if c.peek() == Some(b'"') {
            let Some(r) = c.quoted_raw() else {
                return fail("the referrer's quotes are not closed");
            };
            if !c.eat(b' ') || c.peek() != Some(b'"') {
                return fail("a referrer but no quoted user agent");
            }
            let Some(a) = c.quoted_raw() else {
                return fail("the user agent's quotes are not closed");
            };
            if !c.at_end() && c.peek() != Some(b' ') {
                return fail("text right after the user agent");
            }
            (referrer, agent) = (Some(r), Some(a));
        }
    }
    Ok(Access {
        host,
        ident,
        authuser,
        datetime: datetime_text,
        local,
        zone,
        request,
        status: status as u16,
        bytes,
        referrer,
        agent,
    })
}

/// The AWS blueprint's JSON object: `host`, `ident`, `authuser`, `request`, `response`,
/// `bytes`, `verb` (the request's first word, when the request has a space), `@timestamp`
/// (the local time written as if it were UTC, as the blueprint does), `timezone` and
/// `@timestamp_utc` (when the line has an offset); then `referrer` and `agent` for a Combined
/// Log Format line.
pub fn to_json(line: &str) -> Result<Vec<u8>> {
    let a = parse(line)?;
    let mut json = Json::new();
    json.str("host", a.host)
        .str("ident", a.ident)
        .str("authuser", a.authuser)
        .str("request", a.request)
        .num("response", u64::from(a.status))
        .num("bytes", a.bytes);
    if let Some((verb, _)) = a.request.split_once(' ') {
        json.str("verb", verb);
    }
    json.str("@timestamp", &a.local.iso_millis_z());
    if let Some((zone, minutes)) = a.zone {
        json.str("timezone", zone)
            .str("@timestamp_utc", &a.local.minus_offset(minutes).iso_millis_z());
    }
    json.str_if("referrer", a.referrer).str_if("agent", a.agent);
    Ok(json.finish())
}

/// The AWS blueprint's CSV row, `host,ident,authuser,datetime,request,response,bytes`, then
/// `referrer,agent` (empty for a Common Log Format line, so every row has 9 columns). The
/// date is written as in the log (`10/Oct/2000:13:55:36 -0700`).
pub fn to_csv(line: &str) -> Result<Vec<u8>> {
    let a = parse(line)?;
    Ok(Csv::new()
        .field(a.host)
        .field(a.ident)
        .field(a.authuser)
        .field(a.datetime)
        .field(a.request)
        .num(u64::from(a.status))
        .num(a.bytes)
        .opt(a.referrer)
        .opt(a.agent)
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const COMMON: &str =
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
    const COMBINED: &str = r#"203.0.113.9 - - [08/Dec/2026:02:14:33 +0100] "POST /api/v1/items?id=7 HTTP/1.1" 201 512 "https://example.com/start, page" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)""#;

    fn json_of(line: &str) -> Value {
        let out = to_json(line).unwrap();
        assert!(out.ends_with(b"}\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn common_log_format_to_json_as_the_blueprint_writes_it() {
        assert_eq!(
            json_of(COMMON),
            json!({
                "host": "127.0.0.1", "ident": "-", "authuser": "frank",
                "request": "GET /apache_pb.gif HTTP/1.0", "response": 200, "bytes": 2326,
                "verb": "GET", "@timestamp": "2000-10-10T13:55:36.000Z", "timezone": "-0700",
                "@timestamp_utc": "2000-10-10T20:55:36.000Z"
            })
        );
        let keys: Vec<String> = json_of(COMMON).as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "host",
                "ident",
                "authuser",
                "request",
                "response",
                "bytes",
                "verb",
                "@timestamp",
                "timezone",
                "@timestamp_utc"
            ]
        );
    }

    #[test]
    fn combined_log_format_adds_referrer_and_agent() {
        let v = json_of(COMBINED);
        assert_eq!(v["referrer"], "https://example.com/start, page");
        assert_eq!(
            v["agent"],
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        );
        assert_eq!(v["verb"], "POST");
        assert_eq!(v["response"], 201);
        assert_eq!(v["@timestamp_utc"], "2026-12-08T01:14:33.000Z");
        assert_eq!(
            to_csv(COMBINED).unwrap(),
            b"203.0.113.9,-,-,08/Dec/2026:02:14:33 +0100,POST /api/v1/items?id=7 HTTP/1.1,201,512,\"https://example.com/start, page\",\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\"\n"
        );
    }

    #[test]
    fn common_log_format_to_csv_has_nine_columns() {
        assert_eq!(
            to_csv(COMMON).unwrap(),
            b"127.0.0.1,-,frank,10/Oct/2000:13:55:36 -0700,GET /apache_pb.gif HTTP/1.0,200,2326,,\n"
        );
    }

    #[test]
    fn lenient_where_real_logs_need_it() {
        // No body: "-" is 0; IPv6 and host names; escaped quotes in the request; a request
        // without a space has no verb; trailing custom fields are ignored; no zone.
        let v = json_of(
            r#"2001:db8::1 - - [01/Jan/2024:00:00:00 +0000] "GET /a\"b HTTP/1.1" 304 - "-" "curl/8.5.0" 1234"#,
        );
        assert_eq!(v["host"], "2001:db8::1");
        assert_eq!(v["bytes"], 0);
        assert_eq!(v["request"], r#"GET /a\"b HTTP/1.1"#);
        assert_eq!(v["referrer"], "-");
        let v = json_of(r#"www.example.org - - [29/Feb/2024:23:59:59] "-" 408 0"#);
        assert_eq!(v["request"], "-");
        assert!(v.get("verb").is_none());
        assert!(v.get("timezone").is_none() && v.get("@timestamp_utc").is_none());
        assert_eq!(v["@timestamp"], "2024-02-29T23:59:59.000Z");
        let v = json_of(r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0530] "" 400 0"#);
        assert_eq!(v["request"], "");
        assert_eq!(v["@timestamp_utc"], "2023-12-31T18:30:00.000Z");
    }

    #[test]
    fn malformed_lines_are_errors_that_say_why() {
        let cases = [
            ("", "no host"),
            ("just some text here", "no [date]"),
            (r#"1.2.3.4 - - 10/Oct/2000:13:55:36 -0700 "GET /" 200 1"#, "no [date]"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700 "GET /" 200 1"#, "not closed"),
            (r#"1.2.3.4 - - [31/Feb/2000:13:55:36 -0700] "GET /" 200 1"#, "bad date"),
            (r#"1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET /" 200 1"#, "bad date"),
            (r#"1.2.3.4 - - [10/Oct/2000:25:55:36 -0700] "GET /" 200 1"#, "bad date"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 PST] "GET /" 200 1"#, "bad date"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] GET / 200 1"#, "no quoted request"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / 200 1"#, "no quoted request"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 2000 1"#, "3-digit"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" OK 1"#, "3-digit"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200"#, "no size"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 12kb"#, "size"),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 x"#, "size"),
            (
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 1 "http://r""#,
                "no quoted user agent",
            ),
            (
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 1 "http://r" "agent"#,
                "not closed",
            ),
            (r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 1 "r" "a"x"#, "right after"),
            (r#"1.2.3.4  - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 1"#, "no ident"),
        ];
        for (line, why) in cases {
            let err = parse(line).expect_err(line);
            assert!(err.0.starts_with("not an Apache access log line: "), "{err}");
            assert!(err.0.contains(why), "{line:?}: {err} (expected {why:?})");
            assert!(to_json(line).is_err() && to_csv(line).is_err());
        }
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of valid lines (cut anywhere, also inside multi-byte characters'
        // neighbours) parses or fails cleanly.
        let line = format!("{COMBINED} é\\\"");
        for end in 0..=line.len() {
            if line.is_char_boundary(end) {
                let _ = parse(&line[..end]);
            }
        }
        for s in [
            "\\",
            "\"",
            "[",
            "[]",
            "a b c [",
            "a b c []",
            "a b c [x] \"\\",
            "a b c [01/Jan/2024:00:00:00 +",
        ] {
            let _ = parse(s);
        }
    }
}
