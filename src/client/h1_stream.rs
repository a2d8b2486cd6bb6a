//! A streamed HTTP/1.1 reply (server-sent events) read as it arrives. Each load thread reads
//! its streams into one scratch buffer of its own and hands every piece of a body on from
//! there; a stream keeps only the bytes a read cut off (part of an event: rare on loopback,
//! where an event is one write), so that a thousand open streams do not each hold a read
//! buffer, and the bytes just read are in a buffer the cache already holds.

use std::cell::RefCell;
use std::future::poll_fn;
use std::ops::Deref;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rustix::io::{ioctl_fionbio, Errno};
use rustix::net::sockopt::{set_socket_timeout, Timeout};
use rustix::net::{recv, RecvFlags};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::exclusive::may_block;
use super::h1_body::Framing;
use super::h1_head::{head, Body};
use crate::tls::Stream;

/// Bytes read at most per call, into the thread's scratch buffer.
const SCRATCH: usize = 64 * 1024;
/// A blocking read waits at most this long before it looks again whether it may go on
/// blocking (another task of the thread may have been woken meanwhile) and how much of the
/// request's time is left.
const BLOCK_STEP: Duration = Duration::from_millis(50);

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A streamed response, once its body was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streamed {
    pub status: u16,
    pub body: Body,
}

/// A streamed reply as read so far: once its head is complete, its status, how its body
/// ends and whether the connection stays open.
#[derive(Default)]
pub(crate) struct StreamedReply {
    head: Option<(Streamed, Framing, bool)>,
}

impl StreamedReply {
    /// Takes what it can of the reply from the front of `buf`, each piece of the body to
    /// `on_body` (with what the body is); once complete, the reply and keep-alive.
    pub(crate) fn advance<B: Buf + Deref<Target = [u8]>>(
        &mut self,
        buf: &mut B,
        on_body: &mut impl FnMut(Body, &[u8]) -> Result<(), String>,
    ) -> Result<Option<(Streamed, bool)>, String> {
        if self.head.is_none() {
            while let Some(h) = head(buf)? {
                buf.advance(h.len);
                if !(100..200).contains(&h.status) {
                    // An error's body is read whole unless it is an event stream.
                    let lines_ok = h.body != Body::Lines || (200..300).contains(&h.status);
                    let streamed = Streamed { status: h.status, body: if lines_ok { h.body } else { Body::Other } };
                    self.head = Some((streamed, h.framing()?, h.keep_alive));
                    break;
                }
            }
        }
        let Some((streamed, framing, keep_alive)) = &mut self.head else { return Ok(None) };
        let body = streamed.body;
        let done = framing.decode(buf, &mut |piece| on_body(body, piece))?;
        Ok(done.then_some((*streamed, *keep_alive)))
    }

    /// Takes `fresh` bytes just read: straight from them when nothing was kept from an
    /// earlier read, else after what was (`kept`). What is left of them (part of an event, or
    /// bytes after the reply) is kept.
    pub(crate) fn feed(
        &mut self,
        kept: &mut BytesMut,
        fresh: &[u8],
        on_body: &mut impl FnMut(Body, &[u8]) -> Result<(), String>,
    ) -> Result<Option<(Streamed, bool)>, String> {
        if !kept.is_empty() {
            kept.extend_from_slice(fresh);
            return self.advance(kept, on_body);
        }
        let mut rest = fresh;
        let done = self.advance(&mut rest, on_body)?;
        kept.extend_from_slice(rest);
        Ok(done)
    }
}

/// Why a read of a streamed reply ended it.
pub(crate) enum ReadError {
    /// The server closed the connection.
    Closed,
    Io(std::io::Error),
    /// The bytes are not a valid reply, or `on_body` refused them.
    Reply(String),
}

/// Waits for bytes of `stream`, reads what is there (up to the scratch buffer's size) and
/// feeds it to `reply`, each piece with the instant the read returned; the reply and
/// keep-alive once it is complete.
pub(crate) async fn read_more(
    stream: &mut Stream,
    kept: &mut BytesMut,
    reply: &mut StreamedReply,
    on_body: &mut impl FnMut(Body, &[u8], Instant) -> Result<(), String>,
) -> Result<Option<(Streamed, bool)>, ReadError> {
    poll_fn(|cx| {
        SCRATCH_BUF.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(ReadError::Io(e))),
                Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Err(ReadError::Closed)),
                Poll::Ready(Ok(())) => {
                    let at = Instant::now();
                    let fed = reply.feed(kept, read.filled(), &mut |body, piece| on_body(body, piece, at));
                    Poll::Ready(fed.map_err(ReadError::Reply))
                }
            }
        })
    })
    .await
}

/// What blocking reads of a reply ended with.
pub(crate) struct Blocked {
    /// Whether any bytes were read.
    pub(crate) read: bool,
    /// The reply's end or an error, as `read_more` gives them; None when the reads stopped
    /// before that (the thread is wanted elsewhere, or the request's time is nearly up): the
    /// reply goes on through `read_more`.
    pub(crate) end: Option<Result<Option<(Streamed, bool)>, ReadError>>,
}

/// `read_more` with blocking reads while the request has its load thread to itself
/// ([`may_block`]) and more than two steps of its time are left (`until`): the socket is made
/// blocking for the streak, each read waits at most [`BLOCK_STEP`], and the socket is
/// non-blocking again on return, before tokio reads it anew.
pub(crate) fn read_blocking(
    tcp: &TcpStream,
    kept: &mut BytesMut,
    reply: &mut StreamedReply,
    on_body: &mut impl FnMut(Body, &[u8], Instant) -> Result<(), String>,
    until: Instant,
) -> Blocked {
    // A read may wait a step and the kernel rounds its timeout up to its tick: two steps.
    let time_left = || until.saturating_duration_since(Instant::now()) > 2 * BLOCK_STEP;
    if !(may_block() && time_left()) {
        return Blocked { read: false, end: None };
    }
    if set_socket_timeout(tcp, Timeout::Recv, Some(BLOCK_STEP)).and_then(|()| ioctl_fionbio(tcp, false)).is_err() {
        // Left as it was (non-blocking, or never changed): tokio reads it.
        let _ = ioctl_fionbio(tcp, true);
        return Blocked { read: false, end: None };
    }
    let mut read = false;
    let end = loop {
        let got = SCRATCH_BUF.with_borrow_mut(|scratch| match recv(tcp, &mut scratch[..], RecvFlags::empty()) {
            Ok((0, _)) => Some(Err(ReadError::Closed)),
            Ok((n, _)) => {
                read = true;
                let at = Instant::now();
                match reply.feed(kept, &scratch[..n], &mut |body, piece| on_body(body, piece, at)) {
                    Ok(None) => None,
                    fed => Some(fed.map_err(ReadError::Reply)),
                }
            }
            // Nothing within the step, or a signal: look again below.
            Err(Errno::AGAIN | Errno::INTR) => None,
            Err(e) => Some(Err(ReadError::Io(e.into()))),
        });
        if got.is_some() || !(may_block() && time_left()) {
            break got;
        }
    };
    match ioctl_fionbio(tcp, true) {
        Ok(()) => Blocked { read, end },
        // A socket tokio cannot read without blocking its thread: the connection is dropped.
        Err(e) => Blocked { read, end: Some(Err(ReadError::Io(e.into()))) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
        f\r\ndata: {\"a\":1}\n\n\r\nf\r\ndata: {\"b\":2}\n\n\r\n0\r\n\r\n";
    const BODY: &[u8] = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\n";

    #[test]
    fn a_reply_fed_in_reads_of_any_size_gives_its_body_and_keeps_only_what_a_read_cut() {
        for step in 1..=REPLY.len() {
            let (mut reply, mut kept, mut body) = (StreamedReply::default(), BytesMut::new(), Vec::new());
            let mut done = None;
            for piece in REPLY.chunks(step) {
                assert!(done.is_none(), "step {step}: bytes after the end");
                let mut take = |kind: Body, p: &[u8]| {
                    assert_eq!(kind, Body::Events);
                    body.extend_from_slice(p);
                    Ok(())
                };
                done = reply.feed(&mut kept, piece, &mut take).unwrap();
            }
            let status = Streamed { status: 200, body: Body::Events };
            assert_eq!((done, &body[..], kept.len()), (Some((status, true)), BODY, 0), "step {step}");
        }
    }

    #[test]
    fn bytes_after_the_reply_are_kept_and_a_bad_reply_is_an_error() {
        let (mut reply, mut kept) = (StreamedReply::default(), BytesMut::new());
        let mut ignore = |_: Body, _: &[u8]| Ok(());
        let with_more = [REPLY, b"HTTP/1.1"].concat();
        assert!(reply.feed(&mut kept, &with_more, &mut ignore).unwrap().is_some());
        assert_eq!(&kept[..], b"HTTP/1.1");
        let mut reply = StreamedReply::default();
        let err = reply.feed(&mut BytesMut::new(), b"HTTP/1.1 200 OK\r\n\r\n", &mut ignore).unwrap_err();
        assert!(err.contains("neither Content-Length nor chunked"), "{err}");
    }
}
