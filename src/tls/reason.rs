//! Why a TLS handshake failed, in the user's terms: which file or flag is concerned, and
//! whether the server's certificate expired, names another host, comes from an unknown CA,
//! or the server refused ours.

use rustls::{AlertDescription, CertificateError, Error};

use crate::config::{Protocol, TlsOptions};

/// The names the explanations use.
pub struct Words {
    /// The trusted CAs: "--ssl-https-ca-certificates-file ca.pem" or "the system's CA store".
    pub trust: String,
    /// The client certificate given, or the flag that gives one.
    identity: Option<String>,
    identity_flag: &'static str,
    host: String,
    /// How the host check is turned off, where it can be.
    host_hint: &'static str,
}

impl Words {
    pub fn new(options: &TlsOptions, protocol: Protocol, host: &str) -> Words {
        let (ca_flag, identity_flag, host_hint) = match protocol {
            Protocol::Http => (
                "--ssl-https-ca-certificates-file",
                "--ssl-https-client-certificate-file",
                " (--ssl-https-verify-host 0 skips this check)",
            ),
            Protocol::Grpc => ("--ssl-grpc-root-certifications-file", "--ssl-grpc-certificate-chain-file", ""),
        };
        let trust = match &options.ca {
            Some(f) => format!("{} {}", f.flag, f.path.display()),
            None => format!("the system's CA store (no {ca_flag})"),
        };
        let identity = options.identity.as_ref().map(|(c, _)| format!("{} {}", c.flag, c.path.display()));
        Words { trust, identity, identity_flag, host: host.to_string(), host_hint }
    }

    /// A failed handshake's reason.
    pub fn explain(&self, e: &std::io::Error) -> String {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
            Some(tls) => self.tls(tls),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake (is it serving TLS?)".into()
            }
            None => e.to_string(),
        }
    }

    /// A read error of an established session: a refusal alert is explained, the rest kept.
    /// `read`: whether the session had read anything before.
    pub fn after_handshake(&self, e: std::io::Error, read: bool) -> std::io::Error {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
            Some(Error::AlertReceived(alert)) => std::io::Error::other(self.alert(*alert)),
            // Triton's gRPC (OpenSSL) refuses a missing client certificate by closing the
            // session on the first call, without an alert; later, such a close is a server
            // that went away, and rustls's words say so.
            _ if e.kind() == std::io::ErrorKind::UnexpectedEof && !read => {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, self.closed())
            }
            _ => e,
        }
    }

    /// A session the server closed without a close_notify.
    fn closed(&self) -> String {
        let what = "the server closed the TLS session without a close_notify";
        match &self.identity {
            None => format!("{what}; if it requires a client certificate, give {} and its key", self.identity_flag),
            Some(_) => what.to_string(),
        }
    }

    fn tls(&self, e: &Error) -> String {
        match e {
            Error::InvalidCertificate(c) => self.certificate(c),
            Error::AlertReceived(alert) => self.alert(*alert),
            Error::InvalidMessage(_) => "the server did not answer in TLS (is it serving without TLS?)".into(),
            other => other.to_string(),
        }
    }

    fn certificate(&self, c: &CertificateError) -> String {
        match c {
            CertificateError::UnknownIssuer => {
                format!("the server's certificate is not signed by a CA of {} (unknown CA)", self.trust)
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet".into()
            }
            CertificateError::NotValidForName => {
                format!("the server's certificate is not valid for host '{}'{}", self.host, self.host_hint)
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server's certificate is not valid for host '{}' (it names {}){}",
                self.host,
                presented.join(", "),
                self.host_hint
            ),
            other => format!("the server's certificate was refused: {other:?}, checked against {}", self.trust),
        }
    }

    fn alert(&self, alert: AlertDescription) -> String {
        use AlertDescription::*;
        match (&self.identity, alert) {
            (None, CertificateRequired | HandshakeFailure) => {
                format!("the server requires a client certificate ({} and its key)", self.identity_flag)
            }
            (Some(mine), BadCertificate | UnknownCA | CertificateUnknown | DecryptError | AccessDenied) => {
                format!("the server refused the client certificate {mine} ({alert:?})")
            }
            _ => format!("the server ended the handshake with the alert {alert:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn a_session_closed_without_a_word_names_the_client_certificate_flag_when_none_was_given() {
        let options = TlsOptions { verify_peer: true, verify_host: true, ca: None, identity: None };
        let words = Words::new(&options, Protocol::Grpc, "127.0.0.1");
        let eof = IoError::new(ErrorKind::UnexpectedEof, "peer closed connection without sending TLS close_notify");
        let later = IoError::new(ErrorKind::UnexpectedEof, "peer closed connection without sending TLS close_notify");
        assert!(words.after_handshake(later, true).to_string().starts_with("peer closed connection"));
        let said = words.after_handshake(eof, false);
        assert_eq!(said.kind(), ErrorKind::UnexpectedEof);
        assert!(said
            .to_string()
            .contains("if it requires a client certificate, give --ssl-grpc-certificate-chain-file"));
        let other = words.after_handshake(IoError::new(ErrorKind::ConnectionReset, "reset"), false);
        assert_eq!(other.to_string(), "reset");
    }
}
