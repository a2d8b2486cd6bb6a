//! JUnit XML for CI systems: one test case per check, failed ones with their message.

use std::fmt::Write as _;
use std::io::{self, Write};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `cases` are (name, failure message if it failed).
pub fn write(suite: &str, cases: &[(String, Option<String>)], w: &mut dyn Write) -> io::Result<()> {
    let failures = cases.iter().filter(|(_, f)| f.is_some()).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">", escape(suite), cases.len());
    for (name, failure) in cases {
        match failure {
            None => {
                let _ = writeln!(x, "  <testcase classname=\"{}\" name=\"{}\"/>", escape(suite), escape(name));
            }
            Some(msg) => {
                let _ = writeln!(x, "  <testcase classname=\"{}\" name=\"{}\">", escape(suite), escape(name));
                let _ = writeln!(x, "    <failure message=\"{}\"/>\n  </testcase>", escape(msg));
            }
        }
    }
    x.push_str("</testsuite>\n");
    w.write_all(x.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_counts() {
        let mut out = Vec::new();
        super::write("rperf", &[("p99<5ms".into(), Some("a \"b\" & c".into())), ("ok".into(), None)], &mut out)
            .unwrap();
        let x = String::from_utf8(out).unwrap();
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("name=\"p99&lt;5ms\""));
        assert!(x.contains("message=\"a &quot;b&quot; &amp; c\""));
    }
}
