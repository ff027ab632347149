//! Syslog's PRI part, `<PRIVAL>`, shared by RFC 3164 and RFC 5424: facility × 8 + severity.

use crate::cursor::Cursor;

/// Facility names, by code, as RFC 5424 §6.2.1 numbers them (the keywords of syslog.conf).
pub const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names, by code (RFC 5424 §6.2.1).
pub const SEVERITIES: [&str; 8] =
    ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pri {
    pub facility: u8,
    pub severity: u8,
}

impl Pri {
    pub fn facility_name(&self) -> &'static str {
        FACILITIES[usize::from(self.facility)]
    }

    pub fn severity_name(&self) -> &'static str {
        SEVERITIES[usize::from(self.severity)]
    }
}

/// `<PRIVAL>` with PRIVAL 0-191 in 1-3 digits; `None` (cursor unmoved) if it is not there.
pub(crate) fn parse(c: &mut Cursor<'_>) -> Option<Pri> {
    let start = c.pos;
    let pri = (|| {
        c.eat(b'<').then_some(())?;
        let value = c.digits(1, 3)?;
        c.eat(b'>').then_some(())?;
        (value <= 191).then_some(Pri { facility: (value / 8) as u8, severity: (value % 8) as u8 })
    })();
    if pri.is_none() {
        c.pos = start;
    }
    pri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_splits_into_facility_and_severity() {
        let mut c = Cursor::new("<34>rest");
        let pri = parse(&mut c).unwrap();
        assert_eq!((pri.facility_name(), pri.severity_name()), ("auth", "crit"));
        assert_eq!(c.rest(), "rest");
        let pri = parse(&mut Cursor::new("<191>")).unwrap();
        assert_eq!((pri.facility_name(), pri.severity_name()), ("local7", "debug"));
        let pri = parse(&mut Cursor::new("<0>")).unwrap();
        assert_eq!((pri.facility_name(), pri.severity_name()), ("kern", "emerg"));
        for bad in ["<192>", "<>", "<1234>", "<12", "12>", "<a>"] {
            let mut c = Cursor::new(bad);
            assert_eq!(parse(&mut c), None, "{bad}");
            assert_eq!(c.pos, 0);
        }
    }
}
