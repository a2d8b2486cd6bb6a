//! `rperf serve --tls-cert --tls-key [--tls-client-ca]`: its HTTP and gRPC listeners over
//! TLS (ALPN http/1.1 and h2), and with a client CA, mutual TLS: a client without a
//! certificate signed by that CA is refused in the handshake.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::files::{certificates, identity_error, private_key, served};
use crate::error::Error;

/// A client that opens a connection and says nothing is dropped after this long.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The server's certificate, for each of its listeners.
pub struct ServerTls {
    pub http: TlsAcceptor,
    grpc: TlsAcceptor,
}

impl ServerTls {
    /// Reads the certificate chain and key (and the client CA, for mutual TLS).
    pub fn new(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTls, Error> {
        let (cert, key) = (served("--tls-cert", cert), served("--tls-key", key));
        let provider = super::provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("TLS cannot be set up: {e}")))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let file = served("--tls-client-ca", path);
                let mut roots = RootCertStore::empty();
                for c in certificates(&file)? {
                    roots.add(c).map_err(|e| {
                        Error::Tls(format!("--tls-client-ca {}: not a usable CA certificate: {e}", path.display()))
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| Error::Tls(format!("--tls-client-ca {}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certificates(&cert)?, private_key(&key)?)
            .map_err(|e| identity_error(&cert, &key, e))?;
        let with_alpn = |alpn: &[u8]| {
            let mut c = config.clone();
            c.alpn_protocols = vec![alpn.to_vec()];
            TlsAcceptor::from(Arc::new(c))
        };
        Ok(ServerTls { http: with_alpn(b"http/1.1"), grpc: with_alpn(b"h2") })
    }

    /// The gRPC listener's connections once their handshake is done, for tonic's
    /// `serve_with_incoming`; handshakes run apart so a slow one holds back no other.
    /// The task that accepts them is returned, to be stopped with the server.
    pub fn grpc_incoming(&self, listener: TcpListener) -> (ReceiverStream<io::Result<Tls>>, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let acceptor = self.grpc.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                        let _ = tx.send(Ok(Tls(tls))).await;
                    }
                });
            }
        });
        (ReceiverStream::new(rx), accepting)
    }
}

/// A served gRPC connection over TLS.
pub struct Tls(TlsStream<TcpStream>);

impl Connected for Tls {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for Tls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
