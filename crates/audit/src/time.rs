//! Times as the audit trail shows and reads them: Unix milliseconds inside,
//! RFC 3339 (UTC) outside, and relative spans (`15m`, `2h`, `7d`) for
//! `--since`. No calendar dependency: the civil-date arithmetic is Howard
//! Hinnant's `days_from_civil` / `civil_from_days`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `ms` as RFC 3339 in UTC with milliseconds: `2026-05-01T12:34:56.789Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// `ms` for a table: `2026-05-01 12:34:56` (UTC, seconds).
pub fn format_short(ms: i64) -> String {
    let t = format_rfc3339(ms);
    format!("{} {}", &t[..10], &t[11..19])
}

/// Parses an RFC 3339 timestamp (`2026-05-01T12:34:56Z`,
/// `2026-05-01T12:34:56.5+02:00`, a space instead of `T`, lower-case `t`
/// and `z`) or a bare date (`2026-05-01`, midnight UTC) into Unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        (!part.is_empty() && part.bytes().all(|c| c.is_ascii_digit())).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let day_ms = days_from_civil(y, mo, d) * 86_400_000;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_ms = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = (oh * 60 + om) * 60_000;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some(day_ms + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms - offset_ms)
}

/// Parses a span: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`15m`, `2h`, `7d`), into milliseconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0)?;
    let ms = match unit {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// A `--since`/`--until` value: RFC 3339 (or a date), or a span back from
/// `now_ms` (`15m`, `2h`, `7d`).
pub fn parse_when(s: &str, now_ms: i64) -> Option<i64> {
    parse_span(s).map(|span| now_ms - span).or_else(|| parse_rfc3339(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        let t = 1_777_638_896_789; // 2026-05-01T12:34:56.789Z
        assert_eq!(format_rfc3339(t), "2026-05-01T12:34:56.789Z");
        assert_eq!(format_short(t), "2026-05-01 12:34:56");
        assert_eq!(parse_rfc3339("2026-05-01T12:34:56.789Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01t12:34:56.789z"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01T14:34:56.789+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01T11:34:56.789123-01:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01 12:34:56Z"), Some(t - 789));
        assert_eq!(parse_rfc3339("2026-05-01"), Some(t - 45_296_789));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1000));
        for bad in ["", "2026-13-01", "2026-05-01T12:34", "2026-05-01T12:34:56", "2026-05-01T12:34:56.Z", "yesterday"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for ms in [0, 951_782_400_000, 4_102_444_799_999, -86_400_000 * 365] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
    }

    #[test]
    fn parses_spans() {
        assert_eq!(parse_span("15m"), Some(900_000));
        assert_eq!(parse_span("2h"), Some(7_200_000));
        assert_eq!(parse_span("7d"), Some(604_800_000));
        assert_eq!(parse_span("1w"), Some(604_800_000));
        assert_eq!(parse_span("30s"), Some(30_000));
        for bad in ["", "m", "-1d", "1y", "1.5h", "d7"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
        assert_eq!(parse_when("1h", 10_000_000), Some(6_400_000));
        assert_eq!(parse_when("1970-01-01T00:00:01Z", 5), Some(1000));
    }
}
