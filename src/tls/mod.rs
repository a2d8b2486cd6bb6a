//! TLS on both sides, with rustls (ring): the client's session settings from the `--ssl-*`
//! flags (`ClientTls`), the one connect function of every client path (`stream`), and
//! `rperf serve`'s certificate (`server`). Certificate problems are one line naming the
//! file and the reason (`reason`).

mod files;
mod reason;
mod server;
mod stream;
mod verify;

pub use server::ServerTls;
pub use stream::{connect, Connector, Stream};

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{Protocol, TlsOptions};
use crate::error::Error;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A client's TLS settings for one server, made once from the flags and shared by every
/// connection (which also share rustls's session cache, so reconnects resume).
pub struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// What the errors call the trusted CAs, the client certificate, and the host.
    words: Arc<reason::Words>,
}

impl ClientTls {
    /// The settings for `url` (HOST:PORT) over `protocol` (whose ALPN it offers: h2 for
    /// gRPC); reads the CA, certificate and key files.
    pub fn new(options: &TlsOptions, url: &str, protocol: Protocol) -> Result<ClientTls, Error> {
        let host = url.rsplit_once(':').map_or(url, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::Usage(format!("Failed to parse -u. '{host}' is not a host name for TLS.")))?;
        let words = Arc::new(reason::Words::new(options, protocol, host));
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = if options.verify_peer {
            let roots = Arc::new(trusted(options, &words)?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::Tls(format!("{}: {e}", words.trust)))?;
            match options.verify_host {
                true => chain,
                false => Arc::new(verify::Relaxed {
                    chain: Some(chain),
                    algorithms: provider.signature_verification_algorithms,
                }),
            }
        } else {
            Arc::new(verify::Relaxed { chain: None, algorithms: provider.signature_verification_algorithms })
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("TLS cannot be set up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &options.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(files::certificates(cert)?, files::private_key(key)?)
                .map_err(|e| files::identity_error(cert, key, e))?,
            None => builder.with_client_cert_resolver(Arc::new(NoCertificate(words.clone()))),
        };
        config.alpn_protocols = vec![match protocol {
            Protocol::Http => b"http/1.1".to_vec(),
            Protocol::Grpc => b"h2".to_vec(),
        }];
        Ok(ClientTls { connector: TlsConnector::from(Arc::new(config)), name, words })
    }

    /// The TLS session on a connected socket to `addr`; a refused certificate is one line
    /// naming the file and the reason.
    pub async fn handshake(&self, tcp: TcpStream, addr: &str) -> Result<TlsStream<TcpStream>, String> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr} failed: {}", self.words.explain(&e)))
    }

    /// Why the server may have refused the session: it asked for a client certificate and
    /// the flags gave none. For a call that failed in the transport without the words of the
    /// TLS layer (a connection closed under a request not yet sent).
    pub fn refusal(&self) -> Option<String> {
        self.words.refusal()
    }
}

/// The client certificate of a client that has none: it gives none (rustls then sends an
/// empty one), and notes that the server asked, so that a refusal can be explained.
struct NoCertificate(Arc<reason::Words>);

impl std::fmt::Debug for NoCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoCertificate")
    }
}

impl rustls::client::ResolvesClientCert for NoCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.note_asked();
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The CAs of the given file, or else the system's store.
fn trusted(options: &TlsOptions, words: &reason::Words) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match &options.ca {
        Some(file) => {
            for cert in files::certificates(file)? {
                roots.add(cert).map_err(|e| {
                    Error::Tls(format!("{} {}: not a usable CA certificate: {e}", file.flag, file.path.display()))
                })?;
            }
        }
        None => {
            let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!("{}: no CA certificate to trust", words.trust)));
    }
    Ok(roots)
}

/// The TLS of `server`'s protocol, if any, ready for its connections.
pub fn client_of(server: &crate::config::ServerOptions) -> Result<Option<Arc<ClientTls>>, Error> {
    server.tls_of().map(|t| ClientTls::new(t, &server.url, server.protocol).map(Arc::new)).transpose()
}
