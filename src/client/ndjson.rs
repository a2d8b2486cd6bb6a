//! JSON lines (NDJSON), parsed per line and not per network read: a plain JSON API that
//! streams (LitServe's `stream=True` API) writes each item as one JSON value and `\n`, with
//! no end marker. A line is dispatched at its `\n` (a CR before it dropped) with the time
//! its last piece arrived; blank lines are skipped; a last line without `\n` is dispatched
//! at the end of the body.
//!
//! On the streamed path's hot loop, as `sse`: line ends are found with `memchr`, and a
//! line that lies whole in the piece being read is handed on from the piece, not copied.

use std::time::Instant;

/// Lines are at most this long; a server that never ends one is cut off.
const MAX_LINE: usize = 16 << 20;

#[derive(Default)]
pub struct Parser {
    /// The start of a line that began in an earlier piece (its buffer reused).
    line: Vec<u8>,
}

impl Parser {
    /// Feeds bytes that arrived at `at`; every line they end goes to `out`.
    pub fn feed(&mut self, bytes: &[u8], at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        let mut rest = bytes;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let (head, tail) = (&rest[..end], &rest[end + 1..]);
            rest = tail;
            if self.line.is_empty() {
                dispatch(head, at, out)?;
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                let result = dispatch(&line, at, out);
                self.line = line;
                self.line.clear();
                result?;
            }
        }
        if self.line.len() + rest.len() > MAX_LINE {
            return Err(format!("a JSON line is longer than {MAX_LINE} bytes"));
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// The body ended at `at`: a last line without its `\n` is dispatched.
    pub fn finish(&mut self, at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        let line = std::mem::take(&mut self.line);
        dispatch(&line, at, out)
    }
}

/// Hands on one line, without its CR; blank lines are not events.
fn dispatch(line: &[u8], at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let text = std::str::from_utf8(line).map_err(|_| "a JSON line is not UTF-8".to_string())?;
    out(text, at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pieces: &[&[u8]]) -> Vec<String> {
        let mut p = Parser::default();
        let mut got = Vec::new();
        for piece in pieces {
            p.feed(piece, Instant::now(), &mut |line, _| got.push(line.to_string())).unwrap();
        }
        p.finish(Instant::now(), &mut |line, _| got.push(line.to_string())).unwrap();
        got
    }

    #[test]
    fn lines_end_at_newlines_whatever_the_pieces() {
        let whole = b"{\"output\": \"a\"}\n\n{\"output\": \"b\\n\"}\r\n\"c\"\n";
        let want = ["{\"output\": \"a\"}", "{\"output\": \"b\\n\"}", "\"c\""];
        assert_eq!(lines(&[whole]), want);
        for cut in 0..whole.len() {
            assert_eq!(lines(&[&whole[..cut], &whole[cut..]]), want, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(lines(&bytewise), want);
        assert_eq!(lines(&[b"1\n2"]), ["1", "2"], "a last line without its newline");
        assert!(lines(&[b"", b"\n \n"]).is_empty());
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut p = Parser::default();
        assert!(p.feed(b"\xff\n", Instant::now(), &mut |_, _| {}).is_err());
    }
}
