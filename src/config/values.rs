//! Pure parsers of single flag values (ranges, rates, intervals, shapes, headers, request
//! parameters, URLs, model lists), each tested beside its rules. No I/O: a file's text is
//! handed in by whoever read it.

use std::path::Path;
use std::time::Duration;

use super::{parse_err, Protocol, Range, RateRange, RequestParameter};
use crate::error::Error;

/// Parses `start[:end[:step]]` over the defaults 1:1:1, as perf_analyzer does.
pub fn parse_range(flag: &str, text: &str) -> Result<Range, Error> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(parse_err(flag, "The value does not match <start:end:step>."));
    }
    let mut vals = [1u64, 1, 1];
    for (i, p) in parts.iter().enumerate() {
        vals[i] = p.trim().parse().map_err(|_| {
            parse_err(flag, &format!("Invalid value provided: {text} (expected unsigned integers start:end:step)"))
        })?;
    }
    Ok(Range { start: vals[0], end: vals[1], step: vals[2] })
}

/// Parses `start[:end[:step]]` of floats over the defaults 1.0:1.0:1.0.
pub fn parse_rate_range(text: &str) -> Result<RateRange, Error> {
    let flag = "--request-rate-range";
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(parse_err(flag, "The value does not match <start:end:step>."));
    }
    let mut vals = [1.0f64, 1.0, 1.0];
    for (i, p) in parts.iter().enumerate() {
        vals[i] = p.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            parse_err(
                flag,
                &format!("Invalid value provided: {text} (expected numbers start:end:step, requests per second)"),
            )
        })?;
    }
    Ok(RateRange { start: vals[0], end: vals[1], step: vals[2] })
}

/// A `--request-intervals` file's text: one gap in microseconds per line; blank lines
/// are skipped.
pub fn parse_intervals(path: &Path, text: &str) -> Result<Vec<Duration>, Error> {
    let path = path.display();
    let mut gaps = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let us: u64 = line.trim().parse().map_err(|_| {
            Error::Input(format!(
                "{path}: line {}: expected a whole number of microseconds, found '{}'",
                i + 1,
                line.trim()
            ))
        })?;
        if us > LONGEST.as_micros() as u64 {
            return Err(Error::Input(format!(
                "{path}: line {}: {us} microseconds is longer than a day (at most {})",
                i + 1,
                LONGEST.as_micros()
            )));
        }
        gaps.push(Duration::from_micros(us));
    }
    if gaps.iter().all(Duration::is_zero) {
        return Err(Error::Input(format!(
            "{path}: the file is empty (expected one interval in microseconds per line)"
        )));
    }
    Ok(gaps)
}

/// `NAME:d1,d2,...`; the name may itself hold colons.
pub fn parse_shape(text: &str) -> Result<(String, Vec<i64>), Error> {
    let (name, dims) =
        text.rsplit_once(':').ok_or_else(|| parse_err("--shape", "There must be a colon after input name."))?;
    let dims = dims
        .split(',')
        .map(|d| d.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| parse_err("--shape", &format!("Invalid value provided: {text} (expected NAME:d1,d2,...)")))?;
    if dims.iter().any(|&d| d <= 0) {
        return Err(parse_err("--shape", "The dimensions of input tensor must be > 0."));
    }
    Ok((name.to_string(), dims))
}

/// `-H 'Name: value'`.
pub fn parse_header(text: &str) -> Result<(String, String), Error> {
    text.split_once(':')
        .map(|(n, v)| (n.trim().to_string(), v.trim_start().to_string()))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| parse_err("-H", &format!("Invalid value provided: '{text}' (expected 'Name: value')")))
}

/// perf_analyzer's `name:value:type`, all three lowercased as it does; the type is int,
/// bool or string, and the value is checked against it here rather than at the first send.
/// The last value given for a name wins.
pub fn parse_request_parameters(given: &[String]) -> Result<Vec<(String, RequestParameter)>, Error> {
    let mut out: Vec<(String, RequestParameter)> = Vec::new();
    for g in given {
        let lower = g.to_lowercase();
        let fields: Vec<&str> = lower.split(':').collect();
        let [name, value, kind] = fields[..] else {
            return Err(parse_err("--request-parameter", "The value does not match <name:value:type>."));
        };
        let bad = |expected: &str| {
            parse_err(
                "--request-parameter",
                &format!("'{g}': the value of '{name}' must be {expected}, got '{value}'."),
            )
        };
        let param = match kind {
            "int" => RequestParameter::Int(value.parse().map_err(|_| bad("a 64-bit integer"))?),
            "bool" => RequestParameter::Bool(value.parse().map_err(|_| bad("true or false"))?),
            "string" => RequestParameter::Str(value.to_string()),
            _ => {
                return Err(parse_err(
                    "--request-parameter",
                    &format!("'{g}': unsupported type '{kind}' (expected int, bool or string)."),
                ))
            }
        };
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), param));
    }
    Ok(out)
}

/// `a[:version],b[:version]`, whitespace ignored.
pub fn parse_bls(text: &str) -> Vec<(String, Option<String>)> {
    text.split(',')
        .map(|m| m.split_whitespace().collect::<String>())
        .filter(|m| !m.is_empty())
        .map(|m| match m.split_once(':') {
            Some((name, version)) => (name.to_string(), Some(version.to_string()).filter(|v| !v.is_empty())),
            None => (m, None),
        })
        .collect()
}

/// perf_analyzer takes `host:port` (curl adds http://); we accept either and keep host:port.
pub fn normalize_url(url: Option<&str>, protocol: Protocol) -> Result<String, Error> {
    let url = match url {
        Some(u) => u.trim_end_matches('/'),
        None => return Ok(if protocol == Protocol::Http { "localhost:8000" } else { "localhost:8001" }.into()),
    };
    if url.starts_with("https://") {
        return Err(Error::Unsupported("an https:// URL (-u) is not supported yet by rperf".into()));
    }
    let bare = url.strip_prefix("http://").unwrap_or(url);
    if bare.is_empty() || bare.contains('/') {
        return Err(parse_err("-u", &format!("Invalid value provided: '{url}' (expected HOST:PORT)")));
    }
    Ok(bare.to_string())
}

/// The longest duration any flag or input file may give: a day. Longer is a typo, and an
/// `Instant` plus 1e300 s panics.
pub const LONGEST: Duration = Duration::from_secs(86_400);

/// `value` of `flag` in a unit of which there are `per_second` in a second (1000 for
/// msecs), refused unless it is from 0 to a day, with the range in the flag's own unit.
pub fn bounded(flag: &str, value: f64, per_second: f64, unit: &str) -> Result<Duration, Error> {
    let secs = value / per_second;
    if secs.is_finite() && (0.0..=LONGEST.as_secs_f64()).contains(&secs) {
        return Ok(Duration::from_secs_f64(secs));
    }
    let most = LONGEST.as_secs_f64() * per_second;
    let got = if value.abs() < 1e15 { value.to_string() } else { format!("{value:e}") };
    Err(parse_err(flag, &format!("The value must be from 0 to {most} {unit} (a day), got {got}.")))
}

/// A duration with its unit: `200ms`, `1.5s`, `250us`; a bare number is milliseconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1e3,
        "us" => n / 1e6,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs <= LONGEST.as_secs_f64()).then(|| Duration::from_secs_f64(secs))
}

/// A length of a run or a stage: `500ms`, `30s`, `5m`, `1h`, or bare seconds (`90`); at
/// most a day.
pub fn parse_span(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Some(hours) = v.strip_suffix('h') {
        let secs = hours.parse::<f64>().ok().filter(|h| *h >= 0.0)? * 3600.0;
        return (secs.is_finite() && secs <= LONGEST.as_secs_f64()).then(|| Duration::from_secs_f64(secs));
    }
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return parse_duration(&format!("{v}s"));
    }
    parse_duration(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_defaults_for_missing_parts() {
        assert_eq!(parse_range("--x", "4").unwrap(), Range { start: 4, end: 1, step: 1 });
        assert_eq!(parse_range("--x", "1:91:10").unwrap(), Range { start: 1, end: 91, step: 10 });
        assert!(parse_range("--x", "1:2:3:4").unwrap_err().to_string().contains("does not match <start:end:step>"));
        assert!(parse_range("--x", "a").unwrap_err().to_string().contains("Failed to parse --x"));
        assert_eq!(parse_rate_range("100:5000:2450").unwrap(), RateRange { start: 100.0, end: 5000.0, step: 2450.0 });
        assert!(parse_rate_range("inf").is_err() && parse_rate_range("-1").is_err());
    }

    #[test]
    fn intervals_files() {
        let p = Path::new("gaps");
        assert_eq!(
            parse_intervals(p, "100\n\n300\n").unwrap(),
            vec![Duration::from_micros(100), Duration::from_micros(300)]
        );
        let e = parse_intervals(p, "100\nsoon\n").unwrap_err().to_string();
        assert!(e.contains("line 2: expected a whole number of microseconds, found 'soon'"), "{e}");
        assert!(parse_intervals(p, "\n0\n").unwrap_err().to_string().contains("the file is empty"));
        let e = parse_intervals(p, "18446744073709551615\n").unwrap_err().to_string();
        assert!(e.contains("line 1: 18446744073709551615 microseconds is longer than a day"), "{e}");
    }

    #[test]
    fn durations_are_bounded_by_a_day() {
        assert_eq!(bounded("-x", 1500.0, 1000.0, "msecs").unwrap(), Duration::from_millis(1500));
        for (v, got) in
            [(f64::INFINITY, "inf"), (f64::NAN, "NaN"), (1e300, "1e300"), (-1.0, "-1"), (9e10, "90000000000")]
        {
            let e = bounded("-x", v, 1000.0, "msecs").unwrap_err().to_string();
            assert_eq!(
                e,
                format!("Failed to parse -x. The value must be from 0 to 86400000 msecs (a day), got {got}.")
            );
        }
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1e300s"), None);
        assert_eq!(parse_duration("25h"), None);
        for (v, secs) in [("90", 90.0), ("1.5", 1.5), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), ("24h", 86400.0)] {
            assert_eq!(parse_span(v), Some(Duration::from_secs_f64(secs)), "{v}");
        }
        for bad in ["", "h", "-1h", "25h", "86401", "1d", "s", "infh"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_and_shapes() {
        assert_eq!(parse_header("X-Key: v:1").unwrap(), ("X-Key".to_string(), "v:1".to_string()));
        assert!(parse_header("nocolon").unwrap_err().to_string().contains("-H"));
        assert_eq!(parse_shape("ns:in:2,3").unwrap(), ("ns:in".to_string(), vec![2, 3]));
        assert!(parse_shape("IN").unwrap_err().to_string().contains("colon after input name"));
        assert!(parse_shape("IN:0").unwrap_err().to_string().contains("must be > 0"));
    }

    #[test]
    fn request_parameters() {
        let given: Vec<String> = ["Max_Tokens:7:INT", "stream:True:bool", "max_tokens:9:int", "mode:Fast:string"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse_request_parameters(&given).unwrap(),
            vec![
                ("stream".into(), RequestParameter::Bool(true)),
                ("max_tokens".into(), RequestParameter::Int(9)),
                ("mode".into(), RequestParameter::Str("fast".into())),
            ]
        );
        let bad = |p: &str| parse_request_parameters(&[p.to_string()]).unwrap_err().to_string();
        assert!(bad("a:b").contains("does not match <name:value:type>"));
        assert!(bad("n:x:int").contains("the value of 'n' must be a 64-bit integer, got 'x'"));
        assert!(bad("n:1:float").contains("unsupported type 'float'"));
    }

    #[test]
    fn bls_lists() {
        assert_eq!(parse_bls("a, b:2 ,"), vec![("a".to_string(), None), ("b".to_string(), Some("2".to_string()))]);
    }

    #[test]
    fn url_scheme_is_optional() {
        assert_eq!(normalize_url(Some("http://127.0.0.1:9/"), Protocol::Http).unwrap(), "127.0.0.1:9");
        assert_eq!(normalize_url(None, Protocol::Grpc).unwrap(), "localhost:8001");
        assert!(normalize_url(Some("h:1/x"), Protocol::Http).is_err());
        assert!(matches!(normalize_url(Some("https://h:1"), Protocol::Http), Err(Error::Unsupported(_))));
    }
}
