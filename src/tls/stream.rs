//! A client connection with or without TLS: one type for the hot paths (`client::h1`'s own
//! HTTP/1.1, `client::h2`'s raw HTTP/2) and tonic's channels, so that the plain path stays a
//! TcpStream behind one match and TLS adds only its own cost.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::reason::Words;
use super::ClientTls;

/// A connected socket, plain or TLS (with the words that explain the server's alerts: a
/// TLS 1.3 server refuses a client certificate after the client's side of the handshake,
/// and the first read or write meets the refusal; and whether the session has read anything
/// yet, as such a refusal comes first).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>, Arc<Words>, bool),
}

/// Opens a TCP connection to `addr` (TCP_NODELAY), then the TLS session if `tls` asks for it;
/// `what` names the protocol in the error ("HTTP", "gRPC").
pub async fn connect(addr: &str, tls: Option<&ClientTls>, what: &str) -> Result<Stream, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr} over {what}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Stream::Plain(tcp)),
        Some(tls) => Ok(Stream::Tls(Box::new(tls.handshake(tcp, addr).await?), tls.words.clone(), false)),
    }
}

impl Stream {
    /// Whether a connection that sat idle was closed by the server (or sent bytes nobody
    /// asked for) meanwhile, checked without waiting. TLS records the server sends on its
    /// own (session tickets) are taken in by the TLS layer and do not count.
    pub fn closed_while_idle(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(s) => !matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            Stream::Tls(s, _, _) => {
                let mut cx = Context::from_waker(Waker::noop());
                Pin::new(&mut **s).poll_read(&mut cx, &mut ReadBuf::new(&mut probe)).is_ready()
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s, words, read) => {
                let before = buf.filled().len();
                let room = buf.remaining() > 0;
                match Pin::new(&mut **s).poll_read(cx, buf) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(words.after_handshake(e, *read))),
                    Poll::Ready(Ok(())) if room && buf.filled().len() == before => match words.clean_close(*read) {
                        Some(refused) => Poll::Ready(Err(refused)),
                        None => Poll::Ready(Ok(())),
                    },
                    other => {
                        if !*read && buf.filled().len() > before {
                            *read = true;
                            words.note_answered();
                        }
                        other
                    }
                }
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s, words, read) => {
                Pin::new(&mut **s).poll_write(cx, buf).map_err(|e| words.after_handshake(e, *read))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s, words, read) => {
                Pin::new(&mut **s).poll_write_vectored(cx, bufs).map_err(|e| words.after_handshake(e, *read))
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s, _, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s, words, read) => {
                Pin::new(&mut **s).poll_flush(cx).map_err(|e| words.after_handshake(e, *read))
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s, _, _) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// What tonic's channels connect with when TLS is on: the same `connect` as the hot path's,
/// so a certificate error reads the same whichever path met it first.
#[derive(Clone)]
pub struct Connector {
    pub addr: Arc<str>,
    pub tls: Arc<ClientTls>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let stream = connect(&this.addr, Some(&this.tls), "gRPC").await.map_err(io::Error::other)?;
            Ok(TokioIo::new(stream))
        })
    }
}
