//! An HTTP/1.1 response body read as it arrives: by Content-Length or chunk by chunk, each
//! piece handed on at once, for replies that stream (server-sent events).

use std::ops::Deref;

use bytes::Buf;

/// A chunk-size line longer than this is not HTTP.
const MAX_SIZE_LINE: usize = 1024;

/// How a body ends, and how much of it is left.
#[derive(Debug)]
pub enum Framing {
    /// Bytes left of a Content-Length body.
    Length(usize),
    Chunked(Chunk),
}

#[derive(Debug)]
pub enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Bytes left of the current chunk.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer lines after the last chunk, up to the empty one.
    Trailers,
}

impl Framing {
    pub fn chunked() -> Framing {
        Framing::Chunked(Chunk::Size)
    }

    /// Takes what it can of the body from the front of `buf`, handing each piece of the
    /// body to `out`; true once the body is complete (what follows stays in `buf`).
    pub fn decode<B: Buf + Deref<Target = [u8]>>(
        &mut self,
        buf: &mut B,
        out: &mut impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<bool, String> {
        let state = match self {
            Framing::Length(left) => {
                let n = (*left).min(buf.len());
                if n > 0 {
                    out(&buf[..n])?;
                    buf.advance(n);
                }
                *left -= n;
                return Ok(*left == 0);
            }
            Framing::Chunked(state) => state,
        };
        loop {
            match state {
                Chunk::Size => {
                    let Some(eol) = line_end(buf)? else { return Ok(false) };
                    let size = chunk_size(&buf[..eol])?;
                    buf.advance(eol + 2);
                    *state = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
                }
                Chunk::Data(left) => {
                    let n = (*left).min(buf.len());
                    if n == 0 {
                        return Ok(false);
                    }
                    out(&buf[..n])?;
                    buf.advance(n);
                    *left -= n;
                    if *left == 0 {
                        *state = Chunk::DataEnd;
                    }
                }
                Chunk::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("a chunk is longer than its size".to_string());
                    }
                    buf.advance(2);
                    *state = Chunk::Size;
                }
                Chunk::Trailers => {
                    let Some(eol) = line_end(buf)? else { return Ok(false) };
                    buf.advance(eol + 2);
                    if eol == 0 {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// The size a chunk-size line gives (its extensions ignored). Streams send one chunk per
/// event, so the plain line (a few hex digits) is read without the general path's steps.
fn chunk_size(line: &[u8]) -> Result<usize, String> {
    if (1..=8).contains(&line.len()) {
        let plain = line.iter().try_fold(0usize, |size, b| Some(size * 16 + (*b as char).to_digit(16)? as usize));
        if let Some(size) = plain {
            return Ok(size);
        }
    }
    let line = std::str::from_utf8(line).map_err(|_| "bad chunk size line".to_string())?;
    let hex = line.split(';').next().unwrap_or("").trim();
    usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size '{hex}'"))
}

/// Where the CRLF of the line at the start of `buf` is; None while it has not come. Only
/// the first bytes are looked at, so that how the line arrived does not matter.
pub(super) fn line_end(buf: &[u8]) -> Result<Option<usize>, String> {
    let head = &buf[..buf.len().min(MAX_SIZE_LINE + 2)];
    match head.windows(2).position(|w| w == b"\r\n") {
        Some(eol) => Ok(Some(eol)),
        None if head.len() == MAX_SIZE_LINE + 2 => Err("a chunk-size or trailer line is too long".to_string()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// The body and whether it completed, fed in pieces of `step` bytes.
    fn decode(mut framing: Framing, raw: &[u8], step: usize) -> Result<(Vec<u8>, bool, usize), String> {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in raw.chunks(step) {
            buf.extend_from_slice(piece);
            let mut take = |p: &[u8]| {
                body.extend_from_slice(p);
                Ok(())
            };
            if framing.decode(&mut buf, &mut take)? {
                return Ok((body, true, buf.len()));
            }
        }
        Ok((body, false, buf.len()))
    }

    #[test]
    fn chunked_bodies_in_any_pieces() {
        let raw = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for step in 1..raw.len() {
            let (body, done, _) = decode(Framing::chunked(), raw, step).unwrap();
            assert_eq!((body, done), (b"hello!".to_vec(), true), "step {step}");
        }
        // What follows the body stays unread.
        assert_eq!(decode(Framing::chunked(), raw, raw.len()).unwrap().2, 4);
        assert_eq!(decode(Framing::chunked(), b"5\r\nhel", 100).unwrap(), (b"hel".to_vec(), false, 0));
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        assert_eq!(decode(Framing::Length(3), b"abcdef", 2).unwrap(), (b"abc".to_vec(), true, 1));
        let empty = decode(Framing::Length(0), b"x", 1).unwrap();
        assert_eq!(empty, (vec![], true, 1));
    }

    #[test]
    fn plain_and_general_chunk_size_lines_agree() {
        for (line, size) in [("a", 10), ("FF", 255), ("0", 0), ("ffffffff", 0xffff_ffff), ("1a;x=y", 26), (" 3 ", 3)] {
            assert_eq!(chunk_size(line.as_bytes()), Ok(size), "{line:?}");
        }
        assert_eq!(chunk_size(b"1g"), Err("bad chunk size '1g'".to_string()));
        assert_eq!(chunk_size(b"\xff"), Err("bad chunk size line".to_string()));
    }

    #[test]
    fn bad_chunks_are_errors() {
        assert!(decode(Framing::chunked(), b"zz\r\n", 10).is_err());
        assert!(decode(Framing::chunked(), b"2\r\nabc\r\n", 10).is_err());
        assert!(decode(Framing::chunked(), b"ffffffffffffffffff\r\n", 100).is_err());
        assert!(decode(Framing::chunked(), &[b'1'; 2000], 100).is_err());
        // A long line is refused whether it came whole or in pieces.
        let mut long = vec![b'0'; 1100];
        long.extend_from_slice(b"1\r\nx\r\n0\r\n\r\n");
        assert!(decode(Framing::chunked(), &long, long.len()).is_err());
        assert!(decode(Framing::chunked(), &long, 7).is_err());
    }
}
