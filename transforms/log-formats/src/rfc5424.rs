//! IETF syslog messages (RFC 5424), strictly per its ABNF (§6):
//!
//! ```text
//! <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry...
//! ```
//!
//! `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`, single
//! spaces between them, `-` for a value that is not there. The timestamp is RFC 3339 with
//! at most 6 fraction digits and a `Z` or `±hh:mm` offset, and must exist in the calendar;
//! header fields are printable US-ASCII of at most 255/48/128/32 characters; SD names at
//! most 32 characters without `=`, space, `]` or `"`; an SD-ID appears at most once; in a
//! PARAM-VALUE `\"`, `\\` and `\]` are unescaped and any other backslash is kept. A UTF-8 BOM
//! that starts MSG is removed. No AWS blueprint covers this format; the field names follow the
//! RFC's.

use crate::cursor::Cursor;
use crate::out::{self, Csv, Json};
use crate::pri::{self, Pri};
use crate::time::DateTime;
use crate::{Error, Result};

/// One SD-ELEMENT: its SD-ID and its parameters in order (a name may repeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element<'a> {
    pub id: &'a str,
    pub params: Vec<(&'a str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub pri: Pri,
    pub version: u32,
    /// As written; `None` for `-`.
    pub timestamp: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// STRUCTURED-DATA as written; `None` for `-`.
    pub structured_data_raw: Option<&'a str>,
    pub structured_data: Vec<Element<'a>>,
    /// MSG without a leading BOM; `None` when the message has no MSG part.
    pub message: Option<&'a str>,
}

fn fail<T>(what: &str) -> Result<T> {
    Err(Error::new(format!("not an RFC 5424 syslog message: {what}")))
}

/// `FULL-DATE "T" FULL-TIME` (RFC 5424 §6.2.3).
fn timestamp(c: &mut Cursor<'_>) -> Option<()> {
    let year = c.digits(4, 4)?;
    c.eat(b'-').then_some(())?;
    let month = c.digits(2, 2)?;
    c.eat(b'-').then_some(())?;
    let day = c.digits(2, 2)?;
    c.eat(b'T').then_some(())?;
    let hour = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let second = c.digits(2, 2)?;
    let dt = DateTime { year: i64::from(year), month, day, hour, minute, second };
    (dt.valid() && second <= 59).then_some(())?;
    if c.eat(b'.') {
        c.digits(1, 6)?;
    }
    if c.eat(b'Z') {
        return Some(());
    }
    (c.eat(b'+') || c.eat(b'-')).then_some(())?;
    let hh = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let mm = c.digits(2, 2)?;
    (hh <= 23 && mm <= 59).then_some(())
}

/// A header field: `-` (None) or 1 to `max` printable US-ASCII characters.
fn header_field<'a>(c: &mut Cursor<'a>, name: &str, max: usize) -> Result<Option<&'a str>> {
    let value = c.take_while(|b| (33..=126).contains(&b));
    if value.is_empty() {
        return fail(&format!("no {name} (printable US-ASCII or -)"));
    }
    if value.len() > max {
        return fail(&format!("{name} longer than {max} characters"));
    }
    if !c.eat(b' ') {
        return fail(&format!("no space after the {name}"));
    }
    Ok((value != "-").then_some(value))
}

fn is_sd_name_byte(b: u8) -> bool {
    (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"')
}

fn sd_name<'a>(c: &mut Cursor<'a>, what: &str) -> Result<&'a str> {
    let name = c.take_while(is_sd_name_byte);
    if name.is_empty() || name.len() > 32 {
        return fail(&format!(
            "bad {what} in the structured data (1-32 characters, no = ] \" or space)"
        ));
    }
    Ok(name)
}

/// A PARAM-VALUE after its opening quote, unescaped, through the closing quote.
fn param_value(c: &mut Cursor<'_>) -> Result<String> {
    let mut value = String::new();
    let rest = c.rest();
    let mut chars = rest.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => {
                c.pos += i + 1;
                return Ok(value);
            }
            '\\' => match rest[i + 1..].chars().next() {
                Some(next @ ('"' | '\\' | ']')) => {
                    value.push(next);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            ']' => return fail("unescaped ] in a structured data value"),
            _ => value.push(ch),
        }
    }
    fail("a structured data value is not closed")
}

/// STRUCTURED-DATA: `-` or one or more SD-ELEMENTs, none between them.
fn structured_data<'a>(c: &mut Cursor<'a>) -> Result<Vec<Element<'a>>> {
    if c.eat(b'-') {
        return Ok(Vec::new());
    }
    if c.peek() != Some(b'[') {
        return fail("no structured data ([...] or -)");
    }
    let mut elements: Vec<Element<'a>> = Vec::new();
    while c.eat(b'[') {
        let id = sd_name(c, "SD-ID")?;
        if elements.iter().any(|e| e.id == id) {
            return fail(&format!("SD-ID {id} appears twice"));
        }
        let mut params = Vec::new();
        while c.eat(b' ') {
            let name = sd_name(c, "PARAM-NAME")?;
            if !c.eat(b'=') || !c.eat(b'"') {
                return fail(&format!("no =\"value\" after {name} in the structured data"));
            }
            params.push((name, param_value(c)?));
        }
        if !c.eat(b']') {
            return fail(&format!("structured data element {id} is not closed with ]"));
        }
        elements.push(Element { id, params });
    }
    Ok(elements)
}

/// Parses one message (without its newline).
pub fn parse(line: &str) -> Result<Message<'_>> {
    let mut c = Cursor::new(line);
    let Some(pri) = pri::parse(&mut c) else {
        return fail("no <PRI> (<0> to <191>) at the start");
    };
    let version = match c.digits(1, 3) {
        Some(1) if c.eat(b' ') => 1,
        Some(v) if v != 1 => return fail(&format!("version {v} (only 1 is defined)")),
        _ => return fail("no version 1 and space after the <PRI>"),
    };
    let timestamp = if c.eat(b'-') {
        None
    } else {
        let start = c.pos;
        if timestamp(&mut c).is_none() {
            return fail("bad timestamp (expected - or e.g. 2003-10-11T22:14:15.003Z)");
        }
        Some(&line[start..c.pos])
    };
    if !c.eat(b' ') {
        return fail("no space after the timestamp");
    }
    let hostname = header_field(&mut c, "HOSTNAME", 255)?;
    let appname = header_field(&mut c, "APP-NAME", 48)?;
    let procid = header_field(&mut c, "PROCID", 128)?;
    let msgid = header_field(&mut c, "MSGID", 32)?;
    let sd_start = c.pos;
    let structured_data = structured_data(&mut c)?;
    let structured_data_raw = (!structured_data.is_empty()).then(|| &line[sd_start..c.pos]);
    let message = if c.at_end() {
        None
    } else if c.eat(b' ') {
        let msg = c.rest();
        Some(msg.strip_prefix('\u{feff}').unwrap_or(msg))
    } else {
        return fail("text right after the structured data (expected a space before the message)");
    };
    Ok(Message {
        pri,
        version,
        timestamp,
        hostname,
        appname,
        procid,
        msgid,
        structured_data_raw,
        structured_data,
        message,
    })
}

/// The structured data as a JSON object, `{"SD-ID": {"PARAM-NAME": "value", ...}, ...}`; a
/// parameter name that repeats within its element gets an array of its values.
fn structured_data_json(elements: &[Element<'_>]) -> Vec<u8> {
    let mut buf = vec![b'{'];
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        out::string(&mut buf, element.id);
        buf.extend_from_slice(b":{");
        let mut first = true;
        for (j, (name, _)) in element.params.iter().enumerate() {
            if element.params[..j].iter().any(|(n, _)| n == name) {
                continue; // written with its first occurrence
            }
            if !first {
                buf.push(b',');
            }
            first = false;
            out::string(&mut buf, name);
            buf.push(b':');
            let values: Vec<&str> = element.params[j..]
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if let [single] = values[..] {
                out::string(&mut buf, single);
            } else {
                buf.push(b'[');
                for (k, v) in values.iter().enumerate() {
                    if k > 0 {
                        buf.push(b',');
                    }
                    out::string(&mut buf, v);
                }
                buf.push(b']');
            }
        }
        buf.push(b'}');
    }
    buf.push(b'}');
    buf
}

/// `facility`, `severity` (names), `version`, `timestamp`, `hostname`, `appname`, `procid`,
/// `msgid` (null for `-`), `structured_data` (an object, `{}` for `-`) and `message` (null
/// without MSG).
pub fn to_json(line: &str) -> Result<Vec<u8>> {
    let m = parse(line)?;
    Ok(Json::new()
        .str("facility", m.pri.facility_name())
        .str("severity", m.pri.severity_name())
        .num("version", u64::from(m.version))
        .str_or_null("timestamp", m.timestamp)
        .str_or_null("hostname", m.hostname)
        .str_or_null("appname", m.appname)
        .str_or_null("procid", m.procid)
        .str_or_null("msgid", m.msgid)
        .raw("structured_data", &structured_data_json(&m.structured_data))
        .str_or_null("message", m.message)
        .finish())
}

/// `facility,severity,version,timestamp,hostname,appname,procid,msgid,structured_data,message`:
/// the fields in the order the message has them, `-` and a missing MSG as empty fields, the
/// structured data as written (`[id name="value"]`).
pub fn to_csv(line: &str) -> Result<Vec<u8>> {
    let m = parse(line)?;
    Ok(Csv::new()
        .field(m.pri.facility_name())
        .field(m.pri.severity_name())
        .num(u64::from(m.version))
        .opt(m.timestamp)
        .opt(m.hostname)
        .opt(m.appname)
        .opt(m.procid)
        .opt(m.msgid)
        .opt(m.structured_data_raw)
        .opt(m.message)
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const RFC_SD: &str = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry...";

    fn json_of(line: &str) -> Value {
        let out = to_json(line).unwrap();
        assert!(out.ends_with(b"}\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_rfc_examples() {
        assert_eq!(
            json_of(RFC_SD),
            json!({"facility": "local4", "severity": "notice", "version": 1,
                   "timestamp": "2003-10-11T22:14:15.003Z", "hostname": "mymachine.example.com",
                   "appname": "evntslog", "procid": null, "msgid": "ID47",
                   "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}},
                   "message": "An application event log entry..."})
        );
        assert_eq!(
            to_csv(RFC_SD).unwrap(),
            b"local4,notice,1,2003-10-11T22:14:15.003Z,mymachine.example.com,evntslog,,ID47,\"[exampleSDID@32473 iut=\"\"3\"\" eventSource=\"\"Application\"\" eventID=\"\"1011\"\"]\",An application event log entry...\n"
        );
        // §6.5 example 1: BOM before the message, no structured data.
        let v = json_of("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(v["message"], "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(v["structured_data"], json!({}));
        assert_eq!((v["facility"].as_str(), v["severity"].as_str()), (Some("auth"), Some("crit")));
        // Example 4: two elements, no MSG.
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"][examplePriority@32473 class=\"high\"]";
        let v = json_of(line);
        assert_eq!(v["message"], Value::Null);
        assert_eq!(
            v["structured_data"],
            json!({"exampleSDID@32473": {"iut": "3"}, "examplePriority@32473": {"class": "high"}})
        );
        assert!(to_csv(line).unwrap().ends_with(b"class=\"\"high\"\"]\",\n"));
    }

    #[test]
    fn nil_values_offsets_escapes_and_repeated_params() {
        let v = json_of("<0>1 - - - - - -");
        assert_eq!(
            v,
            json!({"facility": "kern", "severity": "emerg", "version": 1, "timestamp": null,
                   "hostname": null, "appname": null, "procid": null, "msgid": null,
                   "structured_data": {}, "message": null})
        );
        assert_eq!(to_csv("<0>1 - - - - - -").unwrap(), b"kern,emerg,1,,,,,,,\n");
        let v = json_of(
            r#"<14>1 2026-12-08T03:14:33.123456+05:30 web-1 nginx 4242 ACCESS [meta a="x\"y\\z\]" a="2" b="c\d" e=""] hi"#,
        );
        assert_eq!(v["timestamp"], "2026-12-08T03:14:33.123456+05:30");
        assert_eq!(v["procid"], "4242");
        assert_eq!(
            v["structured_data"],
            json!({"meta": {"a": ["x\"y\\z]", "2"], "b": "c\\d", "e": ""}})
        );
        let v = json_of("<14>1 2026-12-08T03:14:33-08:00 h a p m - ");
        assert_eq!(v["message"], "");
        let v = json_of("<14>1 2024-02-29T23:59:59Z h a p m - é ü [not sd] \"quotes\"");
        // An element, then a space: what follows is the message, brackets or not.
        assert_eq!(json_of("<34>1 - h a p m [id] [id2]")["message"], "[id2]");
        assert_eq!(v["message"], "é ü [not sd] \"quotes\"");
    }

    #[test]
    fn malformed_messages_are_errors_that_say_why() {
        let long = "x".repeat(49);
        let cases = [
            ("Oct 11 22:14:15 host su: rfc 3164", "no <PRI>"),
            ("<192>1 - - - - - -", "no <PRI>"),
            ("<34>2 - - - - - -", "version 2"),
            ("<34> - - - - - -", "no version"),
            ("<34>1- - - - - -", "no version"),
            ("<34>1 2003-10-11 22:14:15Z h a p m -", "bad timestamp"),
            ("<34>1 2003-02-30T22:14:15Z h a p m -", "bad timestamp"),
            ("<34>1 2003-10-11T22:14:15.1234567Z h a p m -", "bad timestamp"),
            ("<34>1 2003-10-11T22:14:15 h a p m -", "bad timestamp"),
            ("<34>1 2003-10-11T22:14:15+0100 h a p m -", "bad timestamp"),
            ("<34>1 2003-10-11T22:14:15+01:0", "bad timestamp"),
            ("<34>1 -  a p m -", "no HOSTNAME"),
            ("<34>1 - h", "no space after the HOSTNAME"),
            (&format!("<34>1 - h {long} p m -"), "APP-NAME longer than 48"),
            ("<34>1 - h a p m", "no space after the MSGID"),
            ("<34>1 - h a p m msg without sd", "no structured data"),
            ("<34>1 - h a p m [id", "not closed with ]"),
            ("<34>1 - h a p m [id a=1]", "no =\"value\""),
            ("<34>1 - h a p m [id a=\"1]", "unescaped ]"),
            ("<34>1 - h a p m [id a=\"1", "not closed"),
            ("<34>1 - h a p m [id a=\"1\"][id b=\"2\"]", "appears twice"),
            ("<34>1 - h a p m []", "bad SD-ID"),
            ("<34>1 - h a p m [id  a=\"1\"]", "bad PARAM-NAME"),
            ("<34>1 - h a p m [id]x", "text right after"),
            ("<34>1 - h a p m -x", "text right after"),
        ];
        for (line, why) in cases {
            let err = parse(line).expect_err(line);
            assert!(err.0.starts_with("not an RFC 5424 syslog message: "), "{err}");
            assert!(err.0.contains(why), "{line:?}: {err} (expected {why:?})");
            assert!(to_json(line).is_err() && to_csv(line).is_err());
        }
    }

    #[test]
    fn no_input_panics() {
        let line = format!("{RFC_SD} é [x a=\"\\é\\\"\"]");
        for end in 0..=line.len() {
            if line.is_char_boundary(end) {
                let _ = parse(&line[..end]);
            }
        }
        let _ = parse("<1>1 - - - - - [a b=\"\\");
    }
}
