//! Server-sent events, parsed per event and not per network read: bytes arrive in whatever
//! pieces TCP and HTTP chunking make, and an event is dispatched at its blank line, with
//! the time its last piece arrived. Lines may end in LF, CRLF or CR; `data:` lines of one
//! event are joined with LF; comments (`:` lines, keep-alive pings), `event:`, `id:` and
//! `retry:` fields carry no data and are skipped.

use std::time::Instant;

/// Events are at most this long; a server that never ends one is cut off.
const MAX_EVENT: usize = 16 << 20;

#[derive(Default)]
pub struct Parser {
    /// The line being read, not yet ended.
    line: Vec<u8>,
    /// The data of the event being read (reused from event to event).
    data: String,
    /// The event being read has a `data:` line.
    has_data: bool,
    /// The previous piece ended in CR: an LF that starts the next one belongs to it.
    after_cr: bool,
}

impl Parser {
    /// Feeds bytes that arrived at `at`; every event they complete goes to `out`.
    pub fn feed(&mut self, bytes: &[u8], at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        if bytes.is_empty() {
            // Nothing arrived: a CR that ended the previous piece still waits for its LF.
            return Ok(());
        }
        let mut rest = bytes;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            self.after_cr = rest[end] == b'\r' && end + 1 == rest.len();
            rest = &rest[end + 1 + crlf as usize..];
            self.end_line(at, out)?;
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT {
            return Err(format!("an SSE line is longer than {MAX_EVENT} bytes"));
        }
        Ok(())
    }

    /// The stream ended: an event left without its blank line is dispatched (LitServe ends
    /// its error event so), anything else unfinished is dropped.
    pub fn finish(&mut self, at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        if !self.line.is_empty() {
            self.end_line(at, out)?;
        }
        self.dispatch(at, out);
        Ok(())
    }

    /// Hands on the event read so far, if it has data, and starts the next.
    fn dispatch(&mut self, at: Instant, out: &mut impl FnMut(&str, Instant)) {
        if self.has_data {
            out(&self.data, at);
        }
        self.data.clear();
        self.has_data = false;
    }

    fn end_line(&mut self, at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        if self.line.is_empty() {
            self.dispatch(at, out);
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        let result = self.field(&line);
        // The line's buffer is kept for the next line.
        self.line = line;
        self.line.clear();
        result
    }

    fn field(&mut self, line: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|_| "an SSE line is not UTF-8".to_string())?;
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text, ""),
        };
        if field == "data" {
            if self.data.len() + value.len() >= MAX_EVENT {
                return Err(format!("an SSE event is longer than {MAX_EVENT} bytes"));
            }
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        // Comments (empty field name), event, id, retry and unknown fields carry no data.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<String> {
        let mut p = Parser::default();
        let mut got = Vec::new();
        for piece in pieces {
            p.feed(piece, Instant::now(), &mut |data, _| got.push(data.to_string())).unwrap();
        }
        p.finish(Instant::now(), &mut |data, _| got.push(data.to_string())).unwrap();
        got
    }

    #[test]
    fn events_end_at_blank_lines_whatever_the_pieces() {
        let whole = b": ping\n\ndata: {\"a\":1}\n\nevent: x\nid: 3\ndata: two\ndata: lines\n\ndata: [DONE]\n\n";
        let want = ["{\"a\":1}", "two\nlines", "[DONE]"];
        assert_eq!(events(&[whole]), want);
        // Every split point, including inside "\n\n".
        for cut in 0..whole.len() {
            assert_eq!(events(&[&whole[..cut], &whole[cut..]]), want, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(&bytewise), want);
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        assert_eq!(events(&[b"data: a\r\n\r\ndata:b\r\r"]), ["a", "b"]);
        assert_eq!(events(&[b"data: a\r", b"\n\r", b"\n"]), ["a"]);
        // An empty piece between a CR and its LF made the LF a blank line, which split the
        // event in two (seen with fuzz/sse's pieces; h1 hands on no empty piece today).
        assert_eq!(events(&[b"data: a\r", b"", b"\ndata: b\n\n"]), ["a\nb"]);
    }

    #[test]
    fn an_unended_event_is_dispatched_at_the_end_of_the_stream() {
        assert_eq!(events(&[b"data: 1\n\ndata: {\"error\": {}}"]), ["1", "{\"error\": {}}"]);
        assert_eq!(events(&[b"data: 1\n\n: trailing comment"]), ["1"]);
        assert_eq!(events(&[b"data\n\n"]), [""]);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut p = Parser::default();
        assert!(p.feed(b"data: \xff\n", Instant::now(), &mut |_, _| {}).is_err());
    }
}
