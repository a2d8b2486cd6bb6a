//! The head of an HTTP/1.1 response, parsed in place (`httparse`): its status, how its body
//! is delimited, whether the connection stays open, and what its Content-Type says the
//! body is (server-sent events, JSON lines, or anything else).

use super::h1_body::Framing;

const MAX_HEADERS: usize = 32;

/// What a streamed response's body is, by its Content-Type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// Anything else: read whole.
    #[default]
    Other,
    /// `text/event-stream`: server-sent events.
    Events,
    /// `application/x-ndjson`, `application/jsonl`, or no Content-Type at all (LitServe's
    /// plain streams) on a 2xx: JSON lines, when the endpoint is known to stream them.
    Lines,
}

/// What a response's head says.
pub(super) struct Head {
    /// Its length in the buffer.
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) content_length: Option<usize>,
    pub(super) chunked: bool,
    pub(super) keep_alive: bool,
    pub(super) header_len: Option<usize>,
    pub(super) body: Body,
}

/// The head at the start of `buf`, None while incomplete.
pub(super) fn head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("unreadable HTTP response: {e}")),
    };
    let mut h = Head {
        len,
        status: parsed.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        keep_alive: parsed.version == Some(1),
        header_len: None,
        // No Content-Type: LitServe's plain stream.
        body: Body::Lines,
    };
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            h.content_length = Some(value.parse::<usize>().map_err(|_| format!("bad Content-Length '{value}'"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = value.len() >= 7 && value.as_bytes()[value.len() - 7..].eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    h.keep_alive = false;
                    break;
                }
                h.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("inference-header-content-length") {
            h.header_len = value.parse().ok();
        } else if name.eq_ignore_ascii_case("content-type") {
            let starts = |prefix: &str| value.get(..prefix.len()).is_some_and(|v| v.eq_ignore_ascii_case(prefix));
            h.body = if starts("text/event-stream") {
                Body::Events
            } else if starts("application/x-ndjson") || starts("application/jsonl") {
                Body::Lines
            } else {
                Body::Other
            };
        }
    }
    Ok(Some(h))
}

impl Head {
    /// How the body is delimited; an error for a body that would run to the close.
    pub(super) fn framing(&self) -> Result<Framing, String> {
        if self.chunked {
            return Ok(Framing::chunked());
        }
        let no_body = self.status == 204 || self.status == 304;
        match self.content_length.or(no_body.then_some(0)) {
            Some(len) => Ok(Framing::Length(len)),
            // No length: the body runs to the end of the connection, which HTTP/1.1 servers
            // do not do for inference; refuse rather than wait for a close.
            None => Err(format!("HTTP response {} has neither Content-Length nor chunked encoding", self.status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(headers: &str) -> Head {
        head(format!("HTTP/1.1 200 OK\r\n{headers}\r\n").as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn header_values_are_read_whatever_their_case_and_bytes() {
        let h = of("Transfer-Encoding: gzip, CHUNKED\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n");
        assert!(h.chunked);
        assert_eq!(h.body, Body::Events);
        assert_eq!(of("content-type: APPLICATION/X-NDJSON\r\n").body, Body::Lines);
        assert_eq!(of("Content-Type: application/json\r\n").body, Body::Other);
        assert_eq!(of("").body, Body::Lines, "no Content-Type: a plain stream's");
        // Values that are not ASCII, or shorter than what is looked for, are not these.
        let h = of("Transfer-Encoding: ééééchunké\r\nContent-Type: é\r\n");
        assert!(!h.chunked);
        assert_eq!(h.body, Body::Other);
        assert!(!of("Transfer-Encoding: x\r\n").chunked);
    }
}
