//! A position in a line, for the hand-written parsers. Every method checks bounds and returns
//! `None` instead of going past the end, so no input can make a parser panic.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Consumes `byte` (ASCII) if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the longest run of ASCII bytes for which `accept` holds (possibly empty).
    pub(crate) fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() && accept(bytes[self.pos]) {
            self.pos += 1;
        }
        // Only ASCII bytes are accepted by every caller's predicate, or the run stops at a
        // space: either way `pos` is on a character boundary.
        &self.s[start..self.pos]
    }

    /// A run of `min..=max` ASCII digits, as a number.
    pub(crate) fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.pos;
        let run = self.take_while(|b| b.is_ascii_digit());
        if run.len() < min || run.len() > max {
            self.pos = start;
            return None;
        }
        run.parse().ok()
    }

    /// Exactly `n` ASCII digits, whatever follows them, as a number.
    pub(crate) fn fixed_digits(&mut self, n: usize) -> Option<u32> {
        let digits = self.s.as_bytes().get(self.pos..self.pos + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        digits.iter().try_fold(0u32, |acc, d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
    }

    /// A non-empty run of bytes up to (not including) the next space or the end.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = self.rest().find(' ').map_or(self.s.len(), |i| self.pos + i);
        if end == start {
            return None;
        }
        self.pos = end;
        Some(&self.s[start..end])
    }

    /// A string in double quotes where a backslash escapes the next character; returns what is
    /// between the quotes as written (escapes kept). The cursor must be on the opening quote.
    pub(crate) fn quoted_raw(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return Some(&self.s[start..i]);
                }
                _ => i += 1,
            }
        }
        None
    }
}
