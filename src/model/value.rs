//! Exact conversions from raw JSON tokens to typed values.
//!
//! Every value is read from the token text (`&RawValue`), never through `f64`:
//! money keeps every digit. A value that cannot be held exactly (more than 28
//! significant digits, more fractional digits than its column's scale, more
//! integer digits than its column's precision) is an error naming the token,
//! never a rounding or a wrap.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ValueError(pub String);

/// At most this much of an offending token is quoted in an error.
const SHOWN: usize = 80;

fn shown(raw: &str) -> String {
    let mut s: String = raw.chars().take(SHOWN).filter(|c| !c.is_control()).collect();
    if raw.chars().count() > SHOWN {
        s.push('…');
    }
    s
}

fn err(what: &str, raw: &str) -> ValueError {
    ValueError(format!("expected {what}, got {}", shown(raw)))
}

/// The text of a JSON string token: borrowed when it has no escapes (the
/// common case: no allocation), decoded otherwise. The token was validated
/// when its page was read, so the bytes between the quotes are the string.
fn unquote(t: &str) -> Result<Cow<'_, str>, ValueError> {
    let inner = t
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| t.len() >= 2);
    match inner {
        Some(i) if !i.contains('\\') => Ok(Cow::Borrowed(i)),
        _ => serde_json::from_str::<String>(t)
            .map(Cow::Owned)
            .map_err(|_| err("a string", t)),
    }
}

/// The token's text with JSON string quoting removed; `None` for null or "".
fn scalar_text(t: &str) -> Result<Option<Cow<'_, str>>, ValueError> {
    let t = t.trim();
    if t == "null" {
        return Ok(None);
    }
    if t.starts_with('"') {
        return Ok(match unquote(t)? {
            Cow::Borrowed(s) => Some(Cow::Borrowed(s.trim())).filter(|s| !s.is_empty()),
            Cow::Owned(s) => Some(Cow::<str>::Owned(s.trim().to_string())).filter(|s| !s.is_empty()),
        });
    }
    if t.starts_with('{') || t.starts_with('[') {
        return Err(err("a scalar", t));
    }
    Ok(Some(Cow::Borrowed(t)))
}

/// A string column's value from its token, borrowed when it can be.
pub fn string_token(t: &str) -> Result<Option<Cow<'_, str>>, ValueError> {
    let t = t.trim();
    match t {
        "null" => Ok(None),
        _ if t.starts_with('"') => unquote(t).map(Some),
        _ if t.starts_with('{') || t.starts_with('[') => Err(err("a string", t)),
        // A number or bool where the SDK types a string: keep its text.
        _ => Ok(Some(Cow::Borrowed(t))),
    }
}

pub fn string(raw: &RawValue) -> Result<Option<String>, ValueError> {
    string_token(raw.get()).map(|v| v.map(Cow::into_owned))
}

pub fn int_token(t: &str) -> Result<Option<i64>, ValueError> {
    match scalar_text(t)? {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| err("an integer", &s)),
    }
}

pub fn int(raw: &RawValue) -> Result<Option<i64>, ValueError> {
    int_token(raw.get())
}

/// Parses a decimal from a JSON number or numeric string, exactly.
pub fn decimal_token(t: &str) -> Result<Option<Decimal>, ValueError> {
    match scalar_text(t)? {
        None => Ok(None),
        Some(s) => parse_decimal(&s).map(Some),
    }
}

pub fn decimal(raw: &RawValue) -> Result<Option<Decimal>, ValueError> {
    decimal_token(raw.get())
}

/// Decimal digits rust_decimal holds exactly (a 96-bit mantissa).
const MAX_DIGITS: usize = 28;

/// Parses a JSON number or numeric string exactly: `-12.5`, `1.5e-7`, `+3`.
/// Refuses anything it would have to round, and anything that is not a number
/// (`1_000`, `0x10`, `NaN`, `Infinity`).
pub fn parse_decimal(s: &str) -> Result<Decimal, ValueError> {
    match plain_decimal(s.as_bytes()) {
        Some(d) => Ok(d),
        None => any_decimal(s),
    }
}

/// Every form [`parse_decimal`] accepts, and the words for what it refuses.
fn any_decimal(s: &str) -> Result<Decimal, ValueError> {
    let bad = |why: &str| ValueError(format!("{why}: {}", shown(s)));
    let t = s.trim();
    if t.len() > 400 {
        return Err(bad("a number token longer than 400 characters"));
    }
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (number, exp) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e = &rest[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("expected an exact decimal"));
            }
            // Exponents beyond ±1000 can only overflow or round: refuse them unparsed.
            let e: i64 = e.parse().map_err(|_| bad("exponent out of range"))?;
            if e.abs() > 1000 {
                return Err(bad("exponent out of range"));
            }
            (&rest[..i], e)
        }
        None => (rest, 0),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("expected an exact decimal"));
    }
    // The significant digits (no leading zeros, no trailing fractional zeros:
    // they carry no value), read straight into the mantissa; the value is
    // digits × 10^-(scale).
    let frac = frac.trim_end_matches('0');
    let mut scale = frac.len() as i64 - exp;
    let digits = int.bytes().chain(frac.bytes()).skip_while(|b| *b == b'0');
    let mut n = 0usize;
    let mut mantissa: i128 = 0;
    for d in digits {
        n += 1;
        // 28 digits always fit; 29 only below 2^96, which the conversion checks.
        if n > MAX_DIGITS + 1 {
            return Err(bad(&format!("more than {MAX_DIGITS} significant digits")));
        }
        mantissa = mantissa * 10 + i128::from(d - b'0');
    }
    if n == 0 {
        return Ok(Decimal::ZERO);
    }
    if scale < 0 {
        if n as i64 - scale > MAX_DIGITS as i64 + 1 {
            return Err(bad("too large for an exact decimal"));
        }
        mantissa *= 10i128.pow((-scale) as u32);
        scale = 0;
    }
    if scale > MAX_DIGITS as i64 {
        return Err(bad(&format!("more than {MAX_DIGITS} fractional digits")));
    }
    let mantissa = if negative { -mantissa } else { mantissa };
    Decimal::try_from_i128_with_scale(mantissa, scale as u32)
        .map_err(|_| bad(&format!("more than {MAX_DIGITS} significant digits")))
}

/// The common case, `-?digits[.digits]` of up to 30 characters, read in one
/// pass. Anything else (an exponent, a sign `+`, spaces, too many digits, an
/// error) is left to the general path, which alone words the errors.
fn plain_decimal(b: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 30 {
        return None;
    }
    let (mut mantissa, mut scale, mut dot, mut any) = (0i128, 0u32, false, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i128::from(c - b'0');
                any = true;
                scale += u32::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    // Trailing fractional zeros carry no value (the general path drops them too).
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    if scale > MAX_DIGITS as u32 {
        return None;
    }
    Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale).ok()
}

/// Powers of ten that fit an i128: 10^0 ..= 10^38.
const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The i128 mantissa of `d` in a `Decimal128(precision, scale)` column,
/// refusing to round and refusing values with more integer digits than fit.
pub fn decimal_mantissa(d: Decimal, precision: u8, scale: u32) -> Result<i128, ValueError> {
    if d.scale() > scale {
        return Err(ValueError(format!(
            "{d} has {} fractional digits, more than the column's {scale}",
            d.scale()
        )));
    }
    let limit = POW10.get(usize::from(precision)).copied().unwrap_or(i128::MAX);
    let m = POW10
        .get((scale - d.scale()) as usize)
        .and_then(|f| d.mantissa().checked_mul(*f))
        .filter(|m| m.unsigned_abs() < limit.unsigned_abs());
    m.ok_or_else(|| {
        ValueError(format!(
            "{d} does not fit decimal({precision},{scale}): at most {} integer digits",
            u32::from(precision).saturating_sub(scale)
        ))
    })
}

/// UTC timestamp in microseconds. Accepts RFC 3339 (`…Z` or an offset),
/// `YYYY-MM-DDTHH:MM:SSZ` and a zone-less `YYYY-MM-DD HH:MM:SS`, read as UTC
/// like the `…Z` fields of the same APIs.
pub fn timestamp_micros(raw: &RawValue) -> Result<Option<i64>, ValueError> {
    timestamp_token(raw.get())
}

pub fn timestamp_token(t: &str) -> Result<Option<i64>, ValueError> {
    let Some(s) = scalar_text(t)? else {
        return Ok(None);
    };
    if let Some(t) = fixed_timestamp(&s) {
        return Ok(Some(t.timestamp_micros()));
    }
    Ok(Some(parse_timestamp(&s)?.timestamp_micros()))
}

/// The layouts the API sends, `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DD
/// HH:MM:SS`, read without chrono's format machinery (a hot path: several per
/// row). Anything else, or any out-of-range field, is left to
/// [`parse_timestamp`], which reads these layouts the same way.
fn fixed_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let body = match b.len() {
        20 if b[10] == b'T' && b[19] == b'Z' => &b[..19],
        19 if b[10] == b' ' => b,
        _ => return None,
    };
    let date = fixed_date(&body[..10])?;
    if body[13] != b':' || body[16] != b':' {
        return None;
    }
    let (h, m, sec) = (two(&body[11..13])?, two(&body[14..16])?, two(&body[17..19])?);
    Some(date.and_hms_opt(h, m, sec)?.and_utc())
}

/// `YYYY-MM-DD`, digits only.
fn fixed_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = two(&b[0..2])? * 100 + two(&b[2..4])?;
    NaiveDate::from_ymd_opt(year as i32, two(&b[5..7])?, two(&b[8..10])?)
}

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, ValueError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(n.and_utc());
        }
    }
    Err(err("a timestamp", s))
}

/// A UTC+8 calendar date as days since 1970-01-01 (Arrow Date32).
pub fn date32(raw: &RawValue) -> Result<Option<i32>, ValueError> {
    date_token(raw.get())
}

pub fn date_token(t: &str) -> Result<Option<i32>, ValueError> {
    let Some(s) = scalar_text(t)? else {
        return Ok(None);
    };
    let d = match fixed_date(s.as_bytes()) {
        Some(d) => d,
        None => NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| err("a date YYYY-MM-DD", &s))?,
    };
    Ok(Some(days_since_epoch(d)))
}

pub fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn decimals_are_exact_from_numbers_and_strings() {
        let d = decimal(&raw("12345678901234.12345678")).unwrap().unwrap();
        assert_eq!(d.to_string(), "12345678901234.12345678");
        assert_eq!(
            decimal(&raw("\"0.1000000001\"")).unwrap().unwrap().to_string(),
            "0.1000000001"
        );
        assert_eq!(decimal(&raw("1.5e-7")).unwrap().unwrap().to_string(), "0.00000015");
        assert_eq!(decimal(&raw("null")).unwrap(), None);
        assert_eq!(decimal(&raw("\"\"")).unwrap(), None);
        assert!(decimal(&raw("\"abc\"")).is_err());
        assert!(decimal(&raw("0.12345678901234567890123456789")).is_err());
        assert_eq!(decimal_mantissa(d, 38, 10).unwrap(), 123456789012341234567800);
        assert!(decimal_mantissa(parse_decimal("0.00000000001").unwrap(), 38, 10).is_err());
    }

    #[test]
    fn decimals_are_exact_or_refused_never_rounded() {
        for (token, exact) in [
            ("79228162514264337593543950335", "79228162514264337593543950335"),
            ("-0.0000000000000000000000000001", "-0.0000000000000000000000000001"),
            ("1.50", "1.50"),
            ("1.5000000000000000000000000000000000", "1.5"),
            ("12E+3", "12000"),
            ("+7", "7"),
            ("-0", "0"),
            ("000.000", "0"),
        ] {
            assert_eq!(
                parse_decimal(token).unwrap().normalize(),
                exact.parse::<Decimal>().unwrap(),
                "{token}"
            );
        }
        for (token, why) in [
            ("79228162514264337593543950336", "significant digits"),
            ("123456789012345678901234567890", "significant digits"),
            ("1234567890.12345678901234567891", "significant digits"),
            ("0.00000000000000000000000000001", "fractional digits"),
            ("1e-29", "fractional digits"),
            ("1e30", "too large"),
            ("1e99999999999999999999", "exponent"),
            ("1_000", "exact decimal"),
            ("0x10", "exact decimal"),
            ("NaN", "exact decimal"),
            ("1.2.3", "exact decimal"),
            ("", "exact decimal"),
            ("-", "exact decimal"),
            ("1e", "exact decimal"),
        ] {
            let e = parse_decimal(token).unwrap_err().0;
            assert!(e.contains(why) && e.contains(token), "{token}: {e}");
        }
    }

    /// The one-pass reading of plain numbers agrees with the general one,
    /// value and scale, on every shape it takes.
    #[test]
    fn plain_numbers_read_as_the_general_path_reads_them() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut taken = 0;
        for _ in 0..50_000 {
            let len = (next() % 31) as usize;
            let mut t: String = (0..len)
                .map(|_| match next() % 13 {
                    10 => '0',
                    11 => '.',
                    12 => '-',
                    d => char::from(b'0' + d as u8),
                })
                .collect();
            if next() % 3 == 0 {
                t.insert(0, '-');
            }
            if let Some(fast) = plain_decimal(t.as_bytes()) {
                taken += 1;
                let general = any_decimal(&t).unwrap_or_else(|e| panic!("{t}: {e}"));
                assert_eq!((fast, fast.scale()), (general, general.scale()), "{t}");
            }
        }
        assert!(taken > 5_000, "{taken}");
    }

    #[test]
    fn mantissas_respect_precision_and_scale_at_every_bound() {
        // Every (precision, scale) the schemas use, and the edges around them.
        for (precision, scale) in [(38u8, 10u32), (38, 20), (38, 0), (20, 8), (38, 28)] {
            let int_digits = (precision as u32 - scale) as usize;
            if int_digits == 0 || int_digits > 28 {
                continue;
            }
            let largest = "9".repeat(int_digits);
            let m = decimal_mantissa(parse_decimal(&largest).unwrap(), precision, scale).unwrap();
            assert_eq!(m.to_string(), format!("{largest}{}", "0".repeat(scale as usize)));
            let neg = decimal_mantissa(parse_decimal(&format!("-{largest}")).unwrap(), precision, scale).unwrap();
            assert_eq!(neg, -m);
            let too_big = format!("1{}", "0".repeat(int_digits));
            let e = decimal_mantissa(parse_decimal(&too_big).unwrap(), precision, scale).unwrap_err();
            assert!(e.0.contains(&format!("decimal({precision},{scale})")), "{e}");
            if (1..=28).contains(&scale) {
                let smallest = format!("0.{}1", "0".repeat(scale as usize - 1));
                assert_eq!(
                    decimal_mantissa(parse_decimal(&smallest).unwrap(), precision, scale).unwrap(),
                    1
                );
                if scale < 28 {
                    let finer = format!("0.{}1", "0".repeat(scale as usize));
                    assert!(decimal_mantissa(parse_decimal(&finer).unwrap(), precision, scale).is_err());
                }
            }
        }
        // Decimal's largest value overflows i128 at scale 10: an error, not a wrap.
        assert!(decimal_mantissa(Decimal::MAX, 38, 10).is_err());
        assert!(decimal_mantissa(Decimal::MIN, 38, 10).is_err());
    }

    #[test]
    fn ints_accept_strings_the_sdk_types_as_str() {
        assert_eq!(int(&raw("3")).unwrap(), Some(3));
        assert_eq!(int(&raw("\"10\"")).unwrap(), Some(10));
        assert_eq!(int(&raw("null")).unwrap(), None);
        assert!(int(&raw("1.5")).is_err());
        assert!(int(&raw("\"x\"")).is_err());
    }

    #[test]
    fn strings_keep_unicode_and_escapes() {
        assert_eq!(
            string(&raw("\"ecs-测试-\\u00e9\\n\"")).unwrap().unwrap(),
            "ecs-测试-é\n"
        );
        assert_eq!(string(&raw("\"  padded \"")).unwrap().unwrap(), "  padded ");
        assert!(string(&raw("{}")).is_err());
    }

    #[test]
    fn timestamps_and_dates() {
        assert_eq!(
            timestamp_micros(&raw("\"1970-01-01T00:00:01Z\"")).unwrap(),
            Some(1_000_000)
        );
        assert_eq!(
            timestamp_micros(&raw("\"1970-01-01T08:00:01+08:00\"")).unwrap(),
            Some(1_000_000)
        );
        assert_eq!(
            timestamp_micros(&raw("\"1970-01-01 00:00:02\"")).unwrap(),
            Some(2_000_000)
        );
        assert!(timestamp_micros(&raw("\"yesterday\"")).is_err());
        assert_eq!(date32(&raw("\"1970-01-02\"")).unwrap(), Some(1));
        assert!(date32(&raw("\"2026-13-01\"")).is_err());
    }
}
