//! RFC 3339 timestamps: parsing the metadata endpoint's (`PullStartedAt`, `StartedAt`) into Unix
//! nanoseconds, and formatting our own log timestamps. Hand-written because it is two small
//! functions over a calendar algorithm, and a date crate would be most of the binary.

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into nanoseconds since the Unix epoch.
///
/// Like Go's `time.Time.UnmarshalJSON`, the fraction may have any number of digits (past the
/// ninth they are dropped) and an offset is applied, so the result is the same instant Go's
/// `UnixNano()` gives. Returns `None` for anything else; the caller treats that field as absent.
pub fn parse_unix_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        let mut n = 0i64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(d - b'0');
        }
        Some(n)
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }

    let mut i = 19;
    let mut nanos = 0i64;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(d - b'0');
            }
            i += 1;
        }
        let kept = (i - start).min(9);
        if kept == 0 {
            return None;
        }
        nanos *= 10i64.pow(9 - kept as u32);
    }

    let offset_seconds = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
}

/// How many fractional digits a log timestamp has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fraction {
    /// Exactly three (promslog's logfmt: `2026-11-26T07:34:46.306Z`).
    Millis,
    /// Up to nine with trailing zeros trimmed, none when whole (Go's `time.RFC3339Nano`, which
    /// promslog's JSON uses: `2026-11-26T07:34:47.324764815Z`).
    NanosTrimmed,
}

/// Formats Unix nanoseconds as an RFC 3339 UTC timestamp (for log lines).
pub fn format_utc(unix_nanos: i128, fraction: Fraction) -> String {
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    let seconds = i64::try_from(unix_nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    match fraction {
        Fraction::Millis => out.push_str(&format!(".{:03}", nanos / 1_000_000)),
        Fraction::NanosTrimmed if nanos > 0 => {
            let digits = format!("{nanos:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        Fraction::NanosTrimmed => {}
    }
    out.push('Z');
    out
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_like_go_unix_nano() {
        let rows: &[(&str, Option<i128>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            // The Go exporter's Fargate fixture: 0 to 9 fractional digits.
            (
                "2025-02-27T05:06:03.714437592Z",
                Some(1_740_632_763_714_437_592),
            ),
            ("2025-02-27T05:06:03Z", Some(1_740_632_763_000_000_000)),
            ("2025-02-27T05:06:03.7Z", Some(1_740_632_763_700_000_000)),
            (
                "2025-02-27T05:06:03.71443759Z",
                Some(1_740_632_763_714_437_590),
            ),
            // Past nine digits Go truncates.
            (
                "2025-02-27T05:06:03.7144375929Z",
                Some(1_740_632_763_714_437_592),
            ),
            // Offsets name the same instant.
            (
                "2025-02-27T06:06:03.5+01:00",
                Some(1_740_632_763_500_000_000),
            ),
            (
                "2025-02-26T23:36:03.5-05:30",
                Some(1_740_632_763_500_000_000),
            ),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000_000_000)),
            ("1969-12-31T23:59:59.5Z", Some(-500_000_000)),
            // Not RFC 3339: the field is treated as absent.
            ("", None),
            ("2025-02-27", None),
            ("2025-02-27 05:06:03Z", None),
            ("2025-02-27T05:06:03", None),
            ("2025-02-27T05:06:03.Z", None),
            ("2025-02-27T05:06:03Zjunk", None),
            ("2025-13-01T00:00:00Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2025-02-27T24:00:00Z", None),
            ("2025-02-27T05:06:03+0100", None),
            ("0001-01-01T00:00:00Z", Some(-62_135_596_800_000_000_000)),
            ("２025-02-27T05:06:03Z", None),
            // Each field's own bounds, and the calendar's.
            ("2025-02-27T05:60:03Z", None),
            ("2025-02-27T05:06:60Z", None),
            ("2025-04-31T00:00:00Z", None),
            ("2025-04-30T23:59:59Z", Some(1_746_057_599_000_000_000)),
            ("1900-02-29T00:00:00Z", None),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000_000_000)),
            // Offsets: the largest, out of range, badly separated, followed by more.
            ("2025-02-27T05:06:03+23:59", Some(1_740_546_423_000_000_000)),
            ("2025-02-27T05:06:03+24:00", None),
            ("2025-02-27T05:06:03+01:60", None),
            ("2025-02-27T05:06:03+01-00", None),
            ("2025-02-27T05:06:03+01:00Z", None),
        ];
        for &(text, want) in rows {
            assert_eq!(parse_unix_nanos(text), want, "parsing {text:?}");
        }
    }

    #[test]
    fn formats_log_timestamps_as_promslog_does() {
        let ms = |n: i128| format_utc(n * 1_000_000, Fraction::Millis);
        assert_eq!(ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ms(1_740_632_763_714), "2025-02-27T05:06:03.714Z");
        assert_eq!(ms(1_709_164_800_001), "2024-02-29T00:00:00.001Z");
        assert_eq!(ms(-1), "1969-12-31T23:59:59.999Z");
        // logfmt truncates to milliseconds, as Go's "2006-01-02T15:04:05.000Z07:00" does.
        assert_eq!(
            format_utc(1_740_632_763_714_999_999, Fraction::Millis),
            "2025-02-27T05:06:03.714Z"
        );
        let ns = |n: i128| format_utc(n, Fraction::NanosTrimmed);
        assert_eq!(
            ns(1_740_632_763_714_437_592),
            "2025-02-27T05:06:03.714437592Z"
        );
        assert_eq!(ns(1_740_632_763_714_400_000), "2025-02-27T05:06:03.7144Z");
        assert_eq!(ns(1_740_632_763_000_000_000), "2025-02-27T05:06:03Z");
        assert_eq!(
            ns(1_740_632_763_000_000_001),
            "2025-02-27T05:06:03.000000001Z"
        );
    }

    /// The log formatter's calendar is the exact inverse of the parser's, over four thousand
    /// years each side of 1970 (every 29th day, so every month and leap rule comes up).
    #[test]
    fn civil_from_days_inverts_days_from_civil() {
        for days in (-1_500_000..1_500_000).step_by(29) {
            let (y, m, d) = civil_from_days(days);
            assert!(
                (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
                "{days}"
            );
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(
            format_utc(951_782_400 * 1_000_000_000, Fraction::NanosTrimmed),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_utc(4_107_542_400 * 1_000_000_000, Fraction::Millis),
            "2100-03-01T00:00:00.000Z"
        );
    }
}
