//! Number formatting as perf_analyzer prints it: C++ iostream defaults (`%g` with six
//! significant digits) for rates.

/// Formats like a C++ `ostream << double` with default flags: six significant digits,
/// trailing zeros removed, scientific notation below 1e-4 and from 1e6 up (C's `%g`).
pub fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // The exponent is taken after rounding to six significant digits (999999.5 -> 1e+06).
    let sci = format!("{:.5e}", x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, x)).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cpp_default_stream_format() {
        assert_eq!(fmt_g(77.2001234), "77.2001");
        assert_eq!(fmt_g(371.0921), "371.092");
        assert_eq!(fmt_g(149.572), "149.572");
        assert_eq!(fmt_g(100.0), "100");
        assert_eq!(fmt_g(1407.84), "1407.84");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(999999.7), "1e+06");
        assert_eq!(fmt_g(0.5), "0.5");
        assert_eq!(fmt_g(0.0000123), "1.23e-05");
        assert_eq!(fmt_g(0.000123), "0.000123");
        assert_eq!(fmt_g(-2.5), "-2.5");
        assert_eq!(fmt_g(0.0), "0");
    }
}
