//! BSD syslog lines (RFC 3164), as syslog daemons write them to files and send them:
//!
//! ```text
//! <34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8
//! Dec  8 02:14:33 web-1 CRON[4242]: (root) CMD (run-parts /etc/cron.hourly)
//! ```
//!
//! The line is what the AWS blueprints (`kinesis-firehose-syslog-to-json`, `-to-csv`) match:
//! a timestamp `Mmm dd hh:mm:ss` (full month names too, the day padded with a space or a zero,
//! an optional fraction after the seconds), an optional `<facility.severity> ` that some
//! daemons insert, a host name (letters, digits, `.`, `_`, `-`), a program name (letters,
//! digits, `_`, `.`, `/`, `%`, `-`), an optional `[pid]`, `: ` and the message. On top of
//! the blueprints, a leading `<PRI>` (the form on the wire) is accepted and turned into
//! `facility` and `severity`, and a `:` that ends the line is an empty message.

use crate::cursor::Cursor;
use crate::out::{Csv, Json};
use crate::pri::{self, Pri};
use crate::{Error, Result};

/// One parsed line; the strings borrow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub pri: Option<Pri>,
    /// As written: `Oct 11 22:14:15` (the year is not in the line).
    pub timestamp: &'a str,
    pub hostname: &'a str,
    pub program: &'a str,
    pub processid: Option<&'a str>,
    pub message: &'a str,
}

const MONTHS: [(&str, &str); 12] = [
    ("Jan", "January"),
    ("Feb", "February"),
    ("Mar", "March"),
    ("Apr", "April"),
    ("May", "May"),
    ("Jun", "June"),
    ("Jul", "July"),
    ("Aug", "August"),
    ("Sep", "September"),
    ("Oct", "October"),
    ("Nov", "November"),
    ("Dec", "December"),
];

fn fail<T>(what: &str) -> Result<T> {
    Err(Error::new(format!("not an RFC 3164 syslog line: {what}")))
}

fn blanks(c: &mut Cursor<'_>) -> bool {
    !c.take_while(|b| b == b' ' || b == b'\t').is_empty()
}

/// `Mmm dd hh:mm:ss[.fff]`.
fn timestamp(c: &mut Cursor<'_>) -> Option<()> {
    let month = c.take_while(|b| b.is_ascii_alphabetic());
    MONTHS.iter().any(|(abbr, full)| month == *abbr || month == *full).then_some(())?;
    blanks(c).then_some(())?;
    let day = c.digits(1, 2)?;
    (1..=31).contains(&day).then_some(())?;
    blanks(c).then_some(())?;
    let hour = c.digits(1, 2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let second = c.digits(1, 2)?;
    (hour < 24 && minute < 60 && second <= 60).then_some(())?;
    if matches!(c.peek(), Some(b'.' | b',' | b':')) {
        c.pos += 1;
        if c.take_while(|b| b.is_ascii_digit()).is_empty() {
            return None;
        }
    }
    Some(())
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

fn is_program_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'%' | b'-')
}

/// Parses one line (without its newline).
pub fn parse(line: &str) -> Result<Message<'_>> {
    let mut c = Cursor::new(line);
    let pri = pri::parse(&mut c);
    if pri.is_none() && c.peek() == Some(b'<') {
        return fail("bad <PRI> (expected <0> to <191>)");
    }
    let start = c.pos;
    if timestamp(&mut c).is_none() {
        return fail("no timestamp like 'Oct 11 22:14:15' at the start");
    }
    let timestamp = &line[start..c.pos];
    if !c.eat(b' ') {
        return fail("nothing after the timestamp");
    }
    if c.peek() == Some(b'<') {
        // `<facility.severity> `, which the blueprints skip.
        let skipped = c.eat(b'<')
            && c.digits(1, 10).is_some()
            && c.eat(b'.')
            && c.digits(1, 10).is_some()
            && c.eat(b'>')
            && c.eat(b' ');
        if !skipped {
            return fail("bad <facility.severity> after the timestamp");
        }
    }
    let hostname = c.take_while(is_host_byte);
    if hostname.is_empty() || !c.eat(b' ') {
        return fail("no host name after the timestamp");
    }
    let program = c.take_while(is_program_byte);
    if program.is_empty() {
        return fail("no program name after the host name");
    }
    let mut processid = None;
    if c.eat(b'[') {
        let pid = c.take_while(|b| b.is_ascii_digit());
        if pid.is_empty() || pid.starts_with('0') || !c.eat(b']') {
            return fail("bad [pid] after the program name");
        }
        processid = Some(pid);
    }
    if !c.eat(b':') {
        return fail("no ':' after the program name");
    }
    let message = if c.at_end() {
        ""
    } else if c.eat(b' ') {
        c.rest()
    } else {
        return fail("no space after the program's ':'");
    };
    Ok(Message { pri, timestamp, hostname, program, processid, message })
}

/// The AWS blueprint's JSON object, `timestamp`, `hostname`, `program`, `processid` (only
/// when the line has one, as the blueprint leaves it out), `message`; then `facility` and
/// `severity` (names) when the line starts with `<PRI>`.
pub fn to_json(line: &str) -> Result<Vec<u8>> {
    let m = parse(line)?;
    let mut json = Json::new();
    json.str("timestamp", m.timestamp)
        .str("hostname", m.hostname)
        .str("program", m.program)
        .str_if("processid", m.processid)
        .str("message", m.message);
    if let Some(pri) = m.pri {
        json.str("facility", pri.facility_name()).str("severity", pri.severity_name());
    }
    Ok(json.finish())
}

/// The AWS blueprint's CSV row, `timestamp,hostname,program,processid,message`, then
/// `facility,severity` (empty without `<PRI>`), every row 7 columns.
pub fn to_csv(line: &str) -> Result<Vec<u8>> {
    let m = parse(line)?;
    Ok(Csv::new()
        .field(m.timestamp)
        .field(m.hostname)
        .field(m.program)
        .opt(m.processid)
        .field(m.message)
        .opt(m.pri.map(|p| p.facility_name()))
        .opt(m.pri.map(|p| p.severity_name()))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn json_of(line: &str) -> Value {
        serde_json::from_slice(&to_json(line).unwrap()).unwrap()
    }

    #[test]
    fn the_rfc_example_with_pri() {
        let line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8";
        assert_eq!(
            json_of(line),
            json!({"timestamp": "Oct 11 22:14:15", "hostname": "mymachine", "program": "su",
                   "message": "'su root' failed for lonvick on /dev/pts/8",
                   "facility": "auth", "severity": "crit"})
        );
        assert_eq!(
            to_csv(line).unwrap(),
            b"Oct 11 22:14:15,mymachine,su,,'su root' failed for lonvick on /dev/pts/8,auth,crit\n"
        );
    }

    #[test]
    fn file_lines_with_pid_padded_day_and_commas() {
        let line = "Dec  8 02:14:33 web-1.example.com CRON[4242]: (root) CMD (run-parts /etc/cron.hourly, now)";
        let v = json_of(line);
        assert_eq!(
            v,
            json!({"timestamp": "Dec  8 02:14:33", "hostname": "web-1.example.com", "program": "CRON",
                   "processid": "4242", "message": "(root) CMD (run-parts /etc/cron.hourly, now)"})
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["timestamp", "hostname", "program", "processid", "message"]);
        assert_eq!(
            to_csv(line).unwrap(),
            b"Dec  8 02:14:33,web-1.example.com,CRON,4242,\"(root) CMD (run-parts /etc/cron.hourly, now)\",,\n"
        );
    }

    #[test]
    fn what_the_blueprint_also_accepts() {
        let v = json_of("September 03 7:05:09.123 host_a systemd/init%x-1[1]: Started \"x\"");
        assert_eq!(v["timestamp"], "September 03 7:05:09.123");
        assert_eq!(v["program"], "systemd/init%x-1");
        assert_eq!(v["message"], "Started \"x\"");
        let v = json_of("Jan  1 00:00:00 <13.6> host kernel: [    0.000000] Linux version 6.1");
        assert_eq!(v["hostname"], "host");
        assert_eq!(v["message"], "[    0.000000] Linux version 6.1");
        let v = json_of("Jan 31 23:59:60 host app:");
        assert_eq!(v["message"], "");
        let v = json_of("Jan 31 23:59:59 host app: ");
        assert_eq!(v["message"], "");
    }

    #[test]
    fn malformed_lines_are_errors_that_say_why() {
        let cases = [
            ("hello world", "no timestamp"),
            ("<999>Oct 11 22:14:15 host su: x", "bad <PRI>"),
            ("<34 Oct 11 22:14:15 host su: x", "bad <PRI>"),
            ("Octo 11 22:14:15 host su: x", "no timestamp"),
            ("Oct 32 22:14:15 host su: x", "no timestamp"),
            ("Oct 11 24:14:15 host su: x", "no timestamp"),
            ("Oct 11 22:4:15 host su: x", "no timestamp"),
            ("Oct 11 22:14:15.x host su: x", "no timestamp"),
            ("2026-12-08T02:14:33Z host su: x", "no timestamp"),
            ("Oct 11 22:14:15", "nothing after"),
            ("Oct 11 22:14:15 <1.x> host su: x", "facility.severity"),
            ("Oct 11 22:14:15 host", "no host name"),
            ("Oct 11 22:14:15 ho:st su: x", "no host name"),
            ("Oct 11 22:14:15 host :x", "no program"),
            ("Oct 11 22:14:15 host su[0]: x", "bad [pid]"),
            ("Oct 11 22:14:15 host su[12: x", "bad [pid]"),
            ("Oct 11 22:14:15 host su[]: x", "bad [pid]"),
            ("Oct 11 22:14:15 host su message without a tag", "no ':'"),
            ("Oct 11 22:14:15 host su:x", "no space"),
        ];
        for (line, why) in cases {
            let err = parse(line).expect_err(line);
            assert!(err.0.starts_with("not an RFC 3164 syslog line: "), "{err}");
            assert!(err.0.contains(why), "{line:?}: {err} (expected {why:?})");
            assert!(to_json(line).is_err() && to_csv(line).is_err());
        }
    }

    #[test]
    fn no_input_panics() {
        let line = "<34>Oct 11 22:14:15.5 <1.2> host su[230]: é 'su root' failed";
        for end in 0..=line.len() {
            if line.is_char_boundary(end) {
                let _ = parse(&line[..end]);
            }
        }
    }
}
