//! Writing numbers, fractions and offsets the way Java's DateTimeFormatter pads and signs them.

use super::*;
pub(super) fn push_number(out: &mut String, value: i64, min_width: u8, sign: SignStyle) {
    let abs = value.unsigned_abs();
    if value < 0 {
        out.push('-');
    } else if sign == SignStyle::ExceedsPad
        && min_width < 19
        && abs >= 10u64.pow(u32::from(min_width))
    {
        out.push('+');
    }
    push_padded(out, abs, min_width);
}

pub(super) fn push_fraction(out: &mut String, nano: u32, digits: u8) {
    // Truncate (never round), as Java's appendFraction does.
    let scaled = u64::from(nano) / 10u64.pow(9 - u32::from(digits));
    push_padded(out, scaled, digits);
}

/// Java's `OffsetIdPrinterParser.format` for the shapes in [`OffsetFormat`].
pub(super) fn push_offset(
    out: &mut String,
    secs: i32,
    format: OffsetFormat,
    colon: bool,
    zero_text: &str,
) {
    if secs == 0 {
        out.push_str(zero_text);
        return;
    }
    let abs = secs.unsigned_abs();
    let (h, m, s) = ((abs / 3600) % 100, (abs / 60) % 60, abs % 60);
    let start = out.len();
    out.push(if secs < 0 { '-' } else { '+' });
    push_padded(out, u64::from(h), 2);
    let mut printed = h;
    let minutes = match format {
        OffsetFormat::OptionalMinutes => m > 0,
        OffsetFormat::FixedMinutes | OffsetFormat::OptionalSeconds => true,
    };
    if minutes {
        if colon {
            out.push(':');
        }
        push_padded(out, u64::from(m), 2);
        printed += m;
        if format == OffsetFormat::OptionalSeconds && s > 0 {
            if colon {
                out.push(':');
            }
            push_padded(out, u64::from(s), 2);
            printed += s;
        }
    }
    if printed == 0 {
        // Only seconds were non-zero and the format hides them: Java prints the zero text.
        out.truncate(start);
        out.push_str(zero_text);
    }
}

/// Java's `LocalizedOffsetIdPrinterParser` with the English `GMT` text.
pub(super) fn push_localized_offset(out: &mut String, secs: i32, full: bool) {
    out.push_str("GMT");
    if secs == 0 {
        return;
    }
    let abs = secs.unsigned_abs();
    let (h, m, s) = ((abs / 3600) % 100, (abs / 60) % 60, abs % 60);
    out.push(if secs < 0 { '-' } else { '+' });
    if full {
        push_padded(out, u64::from(h), 2);
        out.push(':');
        push_padded(out, u64::from(m), 2);
    } else {
        push_padded(out, u64::from(h), 1);
        if m == 0 && s == 0 {
            return;
        }
        out.push(':');
        push_padded(out, u64::from(m), 2);
    }
    if s != 0 {
        out.push(':');
        push_padded(out, u64::from(s), 2);
    }
}
