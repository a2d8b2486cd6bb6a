//! Certificates and private keys read from PEM or DER files, each error one line naming the
//! flag, the file and what is wrong with it.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{FileKind, TlsFile};
use crate::error::Error;

fn fail(flag: &str, path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{flag} {}: {reason}", path.display()))
}

fn pem_reason(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => format!("not a PEM file with {what} (no -----BEGIN {what}----- section)"),
        other => format!("not a readable PEM file: {other}"),
    }
}

/// The certificates of `file`: a PEM bundle (a chain, or trusted CAs), or one DER certificate.
pub fn certificates(file: &TlsFile) -> Result<Vec<CertificateDer<'static>>, Error> {
    let (flag, path) = (file.flag, file.path.as_path());
    if file.kind == FileKind::Der {
        let der = std::fs::read(path).map_err(|e| fail(flag, path, format!("cannot read it: {e}")))?;
        if der.first() != Some(&0x30) {
            return Err(fail(flag, path, "not a DER certificate (it does not begin with an ASN.1 sequence)"));
        }
        return Ok(vec![CertificateDer::from(der)]);
    }
    let each = CertificateDer::pem_file_iter(path).map_err(|e| fail(flag, path, pem_reason(e, "CERTIFICATE")))?;
    let certs = each.collect::<Result<Vec<_>, _>>().map_err(|e| fail(flag, path, pem_reason(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(fail(flag, path, pem_reason(pem::Error::NoItemsFound, "CERTIFICATE")));
    }
    Ok(certs)
}

/// The private key of `file` (PKCS#8, PKCS#1 or SEC1), PEM or DER.
pub fn private_key(file: &TlsFile) -> Result<PrivateKeyDer<'static>, Error> {
    let (flag, path) = (file.flag, file.path.as_path());
    if file.kind == FileKind::Der {
        let der = std::fs::read(path).map_err(|e| fail(flag, path, format!("cannot read it: {e}")))?;
        return PrivateKeyDer::try_from(der).map_err(|e| fail(flag, path, format!("not a DER private key: {e}")));
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| fail(flag, path, pem_reason(e, "PRIVATE KEY")))
}

/// A file given to `rperf serve`, with its flag.
pub fn served(flag: &'static str, path: &Path) -> TlsFile {
    TlsFile { flag, path: path.to_path_buf(), kind: FileKind::Pem }
}

/// A certificate and key that do not belong together, or that rustls cannot use.
pub fn identity_error(cert: &TlsFile, key: &TlsFile, e: rustls::Error) -> Error {
    let reason = match e {
        rustls::Error::InconsistentKeys(_) => "the private key does not match the certificate".to_string(),
        other => format!("the certificate and key cannot be used: {other}"),
    };
    Error::Tls(format!("{} {} with {} {}: {reason}", cert.flag, cert.path.display(), key.flag, key.path.display()))
}
