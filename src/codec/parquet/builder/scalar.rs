//! JSON scalars as Hive numbers, by the deserializers' rules: integers in a range (strings
//! and hex where OpenX reads them), floats, and decimals rounded half-up to a scale.

use std::fmt;

use serde_json::Value;

use super::super::timestamp::json_kind;

/// An integer within `[min, max]`. JSON integers and integral floats are accepted; strings only
/// when `strings_ok` (OpenX, map keys), decimal or `0x` hex as OpenX reads them.
pub(super) fn integer(
    value: &Value,
    strings_ok: bool,
    min: i64,
    max: i64,
) -> std::result::Result<i64, String> {
    let out_of_range = |shown: &dyn fmt::Display| format!("{shown} is out of range [{min}, {max}]");
    let i = match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i
            } else if n.is_u64() {
                return Err(out_of_range(n));
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || !f.is_finite() {
                    return Err(format!("expected an integer, found the number {n}"));
                }
                // `max as f64 + 1.0` is exact for i8..i32 and rounds to 2^63 for i64.
                if f < min as f64 || f >= max as f64 + 1.0 {
                    return Err(out_of_range(n));
                }
                f as i64
            }
        }
        Value::String(s) if strings_ok => {
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => i128::from_str_radix(hex, 16),
                None => s.parse::<i128>(),
            };
            let i = parsed.map_err(|_| format!("expected an integer, found the string {s:?}"))?;
            i64::try_from(i).map_err(|_| out_of_range(s))?
        }
        Value::String(s) => {
            return Err(format!(
                "expected a number, found the string {s:?} (HiveJsonSerDe does not read \
                 numbers from strings)"
            ))
        }
        other => return Err(format!("expected an integer, found {}", json_kind(other))),
    };
    if i < min || i > max {
        return Err(out_of_range(&i));
    }
    Ok(i)
}

pub(super) fn float(value: &Value, strings_ok: bool) -> std::result::Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) if strings_ok => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("expected a number, found the string {s:?}")),
        Value::String(s) => Err(format!(
            "expected a number, found the string {s:?} (HiveJsonSerDe does not read numbers \
             from strings)"
        )),
        other => Err(format!("expected a number, found {}", json_kind(other))),
    }
}

/// Parses decimal text (`-12.345`, `1e3`) into an unscaled `i128` with `scale` digits after the
/// point, rounding half away from zero; values needing more than `precision` digits are errors.
pub(crate) fn parse_decimal(
    text: &str,
    precision: u8,
    scale: u8,
) -> std::result::Result<i128, String> {
    let bad = || format!("cannot parse {text:?} as decimal({precision},{scale})");
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (t, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    // value = digits * 10^(exponent - frac_len); unscaled = value * 10^scale
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    let too_big = || format!("{text} does not fit decimal({precision},{scale})");
    let first_nonzero = digits.iter().position(|d| *d != 0);
    let Some(first) = first_nonzero else { return Ok(0) };
    let significant = &digits[first..];
    let mut unscaled: i128 = 0;
    if shift >= 0 {
        if significant.len() as i64 + shift > i64::from(precision) {
            return Err(too_big());
        }
        for d in significant {
            unscaled = unscaled * 10 + i128::from(*d);
        }
        for _ in 0..shift {
            unscaled *= 10;
        }
    } else {
        let drop = (-shift) as usize;
        let keep = significant.len().saturating_sub(drop);
        if keep as i64 > i64::from(precision) {
            return Err(too_big());
        }
        for d in &significant[..keep] {
            unscaled = unscaled * 10 + i128::from(*d);
        }
        let first_dropped = if drop <= significant.len() { significant[keep] } else { 0 };
        if first_dropped >= 5 {
            unscaled += 1;
        }
    }
    if unscaled >= 10i128.pow(u32::from(precision)) {
        return Err(too_big());
    }
    Ok(if negative { -unscaled } else { unscaled })
}
