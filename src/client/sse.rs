//! Server-sent events, parsed per event and not per network read: bytes arrive in whatever
//! pieces TCP and HTTP chunking make, and an event is dispatched at its blank line, with
//! the time its last piece arrived. Lines may end in LF, CR LF or CR; `data:` lines of one
//! event are joined with LF; comments (`:` lines, keep-alive pings), `event:`, `id:` and
//! `retry:` fields carry no data and are skipped.
//!
//! This is the streamed path's hot loop: line ends are found with `memchr`, and an event
//! whose one `data:` line lies whole in the piece being read (as servers send them: one
//! event per write) is handed on straight from the piece, not copied.

use std::time::Instant;

/// Events are at most this long; a server that never ends one is cut off.
const MAX_EVENT: usize = 16 << 20;

#[derive(Default)]
pub struct Parser {
    /// The line being read, not yet ended (only ever the start of a piece's first line).
    line: Vec<u8>,
    /// The data of the event being read (reused from event to event), unless it is held in
    /// the piece being read.
    data: String,
    /// The event being read has a `data:` line.
    has_data: bool,
    /// The previous piece ended in CR: an LF that starts the next one belongs to it.
    after_cr: bool,
}

/// What a line is to the parser.
enum Line<'l> {
    Blank,
    Data(&'l str),
    /// A comment or a field that carries no data.
    Other,
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
        // The event's data while it is one line of this piece: handed on without a copy.
        let mut held = None;
        let result = self.lines(&mut rest, &mut held, at, out);
        if let Some(data) = held {
            // The event goes on in the next piece.
            self.data.push_str(data);
        }
        result?;
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT {
            return Err(format!("an SSE line is longer than {MAX_EVENT} bytes"));
        }
        Ok(())
    }

    /// Takes the ended lines off the front of `rest`.
    fn lines<'b>(
        &mut self,
        rest: &mut &'b [u8],
        held: &mut Option<&'b str>,
        at: Instant,
        out: &mut impl FnMut(&str, Instant),
    ) -> Result<(), String> {
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            let piece: &'b [u8] = rest;
            let crlf = piece[end] == b'\r' && piece.get(end + 1) == Some(&b'\n');
            self.after_cr = piece[end] == b'\r' && end + 1 == piece.len();
            *rest = &piece[end + 1 + crlf as usize..];
            if self.line.is_empty() {
                match classify(&piece[..end])? {
                    Line::Blank => self.dispatch(held.take(), at, out),
                    Line::Data(value) => self.data_held(value, held)?,
                    Line::Other => {}
                }
                continue;
            }
            // The line began in an earlier piece (so no event data is held yet).
            self.line.extend_from_slice(&piece[..end]);
            self.end_copied_line()?;
        }
        Ok(())
    }

    /// The stream ended: an event left without its blank line is dispatched (LitServe ends
    /// its error event so), anything else unfinished is dropped.
    pub fn finish(&mut self, at: Instant, out: &mut impl FnMut(&str, Instant)) -> Result<(), String> {
        if !self.line.is_empty() {
            self.end_copied_line()?;
        }
        self.dispatch(None, at, out);
        Ok(())
    }

    /// Ends the (not empty) line gathered in `line` from several pieces.
    fn end_copied_line(&mut self) -> Result<(), String> {
        let line = std::mem::take(&mut self.line);
        let result = match classify(&line) {
            Ok(Line::Data(value)) => self.data_copied(value),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        // The line's buffer is kept for the next line.
        self.line = line;
        self.line.clear();
        result
    }

    /// Hands on the event read so far (its data `held` in the piece, or copied), if it has
    /// data, and starts the next.
    fn dispatch(&mut self, held: Option<&str>, at: Instant, out: &mut impl FnMut(&str, Instant)) {
        if self.has_data {
            out(held.unwrap_or(&self.data), at);
        }
        self.data.clear();
        self.has_data = false;
    }

    /// Refuses an event that `value` would make too long.
    fn check_len(&self, held: Option<&str>, value: &str) -> Result<(), String> {
        if held.map_or(self.data.len(), str::len) + value.len() >= MAX_EVENT {
            return Err(format!("an SSE event is longer than {MAX_EVENT} bytes"));
        }
        Ok(())
    }

    /// A `data:` line of the piece being read: the event's first is held, not copied.
    fn data_held<'b>(&mut self, value: &'b str, held: &mut Option<&'b str>) -> Result<(), String> {
        self.check_len(*held, value)?;
        if !self.has_data {
            *held = Some(value);
            self.has_data = true;
            return Ok(());
        }
        if let Some(first) = held.take() {
            self.data.push_str(first);
        }
        self.data.push('\n');
        self.data.push_str(value);
        Ok(())
    }

    /// A `data:` line that came in pieces: copied.
    fn data_copied(&mut self, value: &str) -> Result<(), String> {
        self.check_len(None, value)?;
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
        Ok(())
    }
}

/// A line's field: `data` with its value (one leading space dropped), or not data.
fn classify(line: &[u8]) -> Result<Line<'_>, String> {
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    let text = std::str::from_utf8(line).map_err(|_| "an SSE line is not UTF-8".to_string())?;
    // The field name is what comes before the first colon (the whole line without one).
    let value = match text.strip_prefix("data") {
        Some("") => "",
        Some(v) if v.starts_with(':') => &v[1..],
        // Comments (empty field name), event, id, retry and unknown fields carry no data.
        _ => return Ok(Line::Other),
    };
    Ok(Line::Data(value.strip_prefix(' ').unwrap_or(value)))
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
