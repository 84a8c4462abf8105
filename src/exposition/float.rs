//! Go's number formatting for the exposition: `strconv.FormatFloat(f, 'g', -1, 64)`, as
//! `prometheus/common/expfmt` writes every sample value. The only place a float becomes text;
//! its table of cases (every value of the Go exporter's snapshots, and the edges) is below.

use std::fmt::Write as _;

/// Formats `f` as Go's expfmt does: `0`, `1`, `-1`, `NaN`, `+Inf`, `-Inf` spelled out, anything
/// else as `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that round-trip, in
/// exponent form when the decimal exponent is below -4 or at least 6 (`5.36870912e+08`,
/// `1e-05`), plain otherwise (`88938`, `0.9324394920000001`).
pub(super) fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        // Also -0: Go's writer compares with 0 before formatting.
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    let abs = f.abs();
    let mut digits = Digits::default();
    // Below 2^53 an integral value's own digits are its shortest round-trip form, so the common
    // case (byte and packet counters) skips the float-to-decimal machinery.
    if abs.fract() == 0.0 && abs < 9_007_199_254_740_992.0 {
        digits.set_integer(abs as u64);
    } else {
        // Rust's `{:e}` yields the same shortest round-trip digits Go's `'g', -1` does; only the
        // layout differs, and that is done below.
        let _ = write!(digits, "{abs:e}");
        digits.finish_exponent();
    }
    digits.write_go_g(out);
}

/// Decimal digits `d1 d2 ... dn` with the value `0.d1d2...dn × 10^point`.
#[derive(Default)]
struct Digits {
    buf: [u8; 32],
    len: usize,
    /// Position of the decimal point relative to the first digit (Go's `decimal.dp`).
    point: i32,
    /// While parsing `{:e}` output: the exponent part, once `e` has been seen.
    exp: Option<(bool, i32)>,
}

impl Digits {
    fn set_integer(&mut self, mut n: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        while n > 0 {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let all = &tmp[i..];
        self.point = all.len() as i32;
        let significant = all.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
        self.buf[..significant].copy_from_slice(&all[..significant]);
        self.len = significant;
    }

    fn finish_exponent(&mut self) {
        let (negative, e) = self.exp.unwrap_or((false, 0));
        self.point = if negative { -e } else { e } + 1;
    }

    fn write_go_g(&self, out: &mut String) {
        let digits = &self.buf[..self.len];
        let exp = self.point - 1;
        if !(-4..6).contains(&exp) {
            push_digit(out, digits.first().copied().unwrap_or(b'0'));
            if digits.len() > 1 {
                out.push('.');
                push_ascii(out, &digits[1..]);
            }
            out.push_str(if exp < 0 { "e-" } else { "e+" });
            // At least two exponent digits, as C and Go print them.
            let e = exp.unsigned_abs();
            if e >= 100 {
                push_digit(out, b'0' + (e / 100) as u8);
            }
            push_digit(out, b'0' + (e / 10 % 10) as u8);
            push_digit(out, b'0' + (e % 10) as u8);
        } else if self.point <= 0 {
            out.push_str("0.");
            for _ in self.point..0 {
                out.push('0');
            }
            push_ascii(out, digits);
        } else {
            let point = self.point as usize;
            if digits.len() <= point {
                push_ascii(out, digits);
                for _ in digits.len()..point {
                    out.push('0');
                }
            } else {
                push_ascii(out, &digits[..point]);
                out.push('.');
                push_ascii(out, &digits[point..]);
            }
        }
    }
}

fn push_digit(out: &mut String, d: u8) {
    out.push(char::from(d));
}

fn push_ascii(out: &mut String, digits: &[u8]) {
    for &d in digits {
        push_digit(out, d);
    }
}

/// Collects `{:e}` output (`9.324394920000001e-1`) into digits and exponent.
impl std::fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            match (&mut self.exp, b) {
                (None, b'0'..=b'9') => {
                    let slot = self.buf.get_mut(self.len).ok_or(std::fmt::Error)?;
                    *slot = b;
                    self.len += 1;
                }
                (None, b'.') => {}
                (None, b'e') => self.exp = Some((false, 0)),
                (Some((negative, _)), b'-') => *negative = true,
                (Some((_, e)), b'0'..=b'9') => *e = *e * 10 + i32::from(b - b'0'),
                _ => return Err(std::fmt::Error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, f);
        s
    }

    #[test]
    fn floats_format_as_go_strconv_g_shortest() {
        let rows: &[(f64, &str)] = &[
            // Every value in the Go exporter's snapshots.
            (0.322633383, "0.322633383"),
            (0.9324394920000001, "0.9324394920000001"),
            (536870912.0, "5.36870912e+08"),
            (42442752.0, "4.2442752e+07"),
            (85426176.0, "8.5426176e+07"),
            (84111360.0, "8.411136e+07"),
            (127934464.0, "1.27934464e+08"),
            (129046293.0, "1.29046293e+08"),
            (88938.0, "88938"),
            (348223.0, "348223"),
            (3507.0, "3507"),
            (0.25, "0.25"),
            (21491613696.0, "2.1491613696e+10"),
            (447741952.0, "4.47741952e+08"),
            (1.7406327637144377e9, "1.7406327637144377e+09"),
            (1.7406327785991266e9, "1.7406327785991266e+09"),
            (0.331125, "0.331125"),
            (0.56606, "0.56606"),
            (268435456.0, "2.68435456e+08"),
            (65249280.0, "6.524928e+07"),
            (60981248.0, "6.0981248e+07"),
            (45368.0, "45368"),
            (132.0, "132"),
            (13532.0, "13532"),
            (118.0, "118"),
            (1.7406329923325953e9, "1.7406329923325953e+09"),
            (1.7406330012060723e9, "1.7406330012060723e+09"),
            // Edges.
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1e21, "1e+21"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740993.0, "9.007199254740992e+15"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (9223372036854771712.0, "9.223372036854772e+18"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456.5, "123456.5"),
            (-2.5e-7, "-2.5e-07"),
            (0.1, "0.1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(value, want) in rows {
            assert_eq!(fmt(value), want, "formatting {value:?}");
        }
    }
}
