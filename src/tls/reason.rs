//! Why a TLS handshake failed, in the user's terms: which file or flag is concerned, and
//! whether the server's certificate expired, names another host, comes from an unknown CA,
//! or the server refused ours.

use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Whether the server asked for a client certificate in a handshake that had none to give.
    asked: AtomicBool,
    /// Whether a session of this client ever read a byte: then the server accepts sessions
    /// without a certificate (it asks for an optional one), and a session that ends early
    /// ended for another reason.
    answered: AtomicBool,
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
        Words {
            trust,
            identity,
            identity_flag,
            host: host.to_string(),
            host_hint,
            asked: AtomicBool::new(false),
            answered: AtomicBool::new(false),
        }
    }

    /// The server asked for a client certificate and the flags gave none (rustls then sends
    /// an empty one, and a server that requires one refuses the session).
    pub fn note_asked(&self) {
        self.asked.store(true, Ordering::Relaxed);
    }

    /// A session read its first byte.
    pub fn note_answered(&self) {
        if !self.answered.load(Ordering::Relaxed) {
            self.answered.store(true, Ordering::Relaxed);
        }
    }

    /// Why a session that ended before its first byte was refused, when the server asked for a
    /// client certificate that the flags did not give and never answered a session without one.
    pub fn refusal(&self) -> Option<String> {
        let refused = self.asked.load(Ordering::Relaxed) && !self.answered.load(Ordering::Relaxed);
        (self.identity.is_none() && refused).then(|| {
            format!(
                "the server requires a client certificate: it asked for one and none was given ({} and its key)",
                self.identity_flag
            )
        })
    }

    /// A session closed cleanly (close_notify) before its first byte: an error if the server
    /// asked for a client certificate that was not given. TLS 1.3 finishes the client's side of
    /// the handshake first, so that is how some servers (gRPC's OpenSSL) refuse it.
    pub fn clean_close(&self, read: bool) -> Option<std::io::Error> {
        let why = self.refusal().filter(|_| !read)?;
        Some(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why))
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

    /// A read or write error of an established session: a refusal alert is explained, the
    /// rest kept. `read`: whether the session had read anything before.
    pub fn after_handshake(&self, e: std::io::Error, read: bool) -> std::io::Error {
        use std::io::ErrorKind::*;
        match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
            Some(Error::AlertReceived(alert)) => std::io::Error::other(self.alert(*alert)),
            // Triton's gRPC (OpenSSL) refuses a missing client certificate by ending the
            // session on the first call, without an alert: a close (with or without
            // close_notify), or a reset that the next write meets. Later, such an end is a
            // server that went away, and the system's or rustls's words say so.
            _ if !read && matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted) => {
                match self.refusal() {
                    Some(why) => std::io::Error::new(e.kind(), why),
                    None if e.kind() == UnexpectedEof => std::io::Error::new(UnexpectedEof, self.closed()),
                    None => e,
                }
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
                format!("the server refused the client certificate {mine}: alert {}", alert_name(alert))
            }
            _ => format!("the server ended the handshake with alert {}", alert_name(alert)),
        }
    }
}

/// An alert as RFC 8446 names it, with its number: `bad_certificate (42)`; only the number
/// for one rustls has no name for. rustls's names
/// are its variants' (`BadCertificate`, `UnknownCA`), turned here into the RFC's words.
fn alert_name(alert: AlertDescription) -> String {
    let variant = format!("{alert:?}");
    if variant.contains('(') {
        // A number rustls has no name for.
        return u8::from(alert).to_string();
    }
    let chars: Vec<char> = variant.chars().collect();
    let mut name = String::with_capacity(variant.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let word_after_acronym =
            i > 0 && chars[i - 1].is_ascii_uppercase() && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        if c.is_ascii_uppercase() && (after_lower || word_after_acronym) {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    format!("{name} ({})", u8::from(alert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn alerts_are_named_as_the_rfc_names_them() {
        let names = [
            (AlertDescription::BadCertificate, "bad_certificate (42)"),
            (AlertDescription::UnknownCA, "unknown_ca (48)"),
            (AlertDescription::CertificateRequired, "certificate_required (116)"),
            (AlertDescription::UnknownPSKIdentity, "unknown_psk_identity (115)"),
            (AlertDescription::HandshakeFailure, "handshake_failure (40)"),
            (AlertDescription::from(200u8), "200"),
        ];
        for (alert, name) in names {
            assert_eq!(alert_name(alert), name);
        }
    }

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
        assert!(words.clean_close(false).is_none());
    }

    #[test]
    fn a_server_that_asked_for_a_client_certificate_is_named_whichever_way_it_ends_the_session() {
        let options = TlsOptions { verify_peer: true, verify_host: true, ca: None, identity: None };
        let words = Words::new(&options, Protocol::Grpc, "127.0.0.1");
        words.note_asked();
        let why = "the server requires a client certificate: it asked for one and none was given \
                   (--ssl-grpc-certificate-chain-file and its key)";
        for kind in [ErrorKind::UnexpectedEof, ErrorKind::BrokenPipe, ErrorKind::ConnectionReset] {
            let said = words.after_handshake(IoError::new(kind, "os words"), false);
            assert_eq!((said.kind(), said.to_string()), (kind, why.to_string()));
            // After the first byte the server accepted the session: its end is its own.
            assert_eq!(words.after_handshake(IoError::new(kind, "os words"), true).to_string(), "os words");
        }
        assert_eq!(words.clean_close(false).map(|e| e.to_string()), Some(why.to_string()));
        assert!(words.clean_close(true).is_none());
        // A server that answered a session without a certificate asked for an optional one:
        // a session that ends early later ended for another reason.
        words.note_answered();
        assert!(words.clean_close(false).is_none());
        let reset = words.after_handshake(IoError::new(ErrorKind::ConnectionReset, "os words"), false);
        assert_eq!(reset.to_string(), "os words");
    }
}
