//! perf_analyzer's TLS flags (`-u https://...` with `--ssl-https-*`, `--ssl-grpc-*`), checked
//! with its wording: values in range, files that exist, a key with its certificate. The
//! files themselves are read by `tls` when the first connection is made.

use std::path::PathBuf;

use super::{parse_err, Protocol};
use crate::cli::Args;
use crate::error::Error;

/// How a certificate or key file is encoded (`--ssl-https-*-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Pem,
    Der,
}

/// A certificate or key file, with the flag that named it (every error about it names both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFile {
    pub flag: &'static str,
    pub path: PathBuf,
    pub kind: FileKind,
}

/// How a client checks the server and shows itself, for one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// Whether the server's certificate must chain to a trusted CA (`--ssl-https-verify-peer`).
    pub verify_peer: bool,
    /// Whether it must name the host of `-u` (`--ssl-https-verify-host` 1 or 2; gRPC always).
    pub verify_host: bool,
    /// The trusted CAs; None: the system's store.
    pub ca: Option<TlsFile>,
    /// Mutual TLS: the client's certificate (chain) and its private key.
    pub identity: Option<(TlsFile, TlsFile)>,
}

/// The TLS of each protocol: a `--plan` model may use the other one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// `-u https://...`.
    pub http: Option<TlsOptions>,
    /// The `--ssl-https-*` settings whatever -u is: a `--plan` model whose url is
    /// https:// connects with them.
    pub https_settings: Option<TlsOptions>,
    /// `--ssl-grpc-use-ssl`.
    pub grpc: Option<TlsOptions>,
}

impl Tls {
    pub fn of(&self, protocol: Protocol) -> Option<&TlsOptions> {
        match protocol {
            Protocol::Http => self.http.as_ref(),
            Protocol::Grpc => self.grpc.as_ref(),
        }
    }
}

/// The TLS flags; `https` is whether `-u` began with https://, `plan_https` whether a
/// `--plan` model's url does. Flags that cannot apply to the run's protocol are warned
/// about, as perf_analyzer ignores them.
pub fn options(
    a: &Args,
    protocol: Protocol,
    (https, plan_https): (bool, bool),
    warnings: &mut Vec<String>,
) -> Result<Tls, Error> {
    let http = http_options(a)?;
    let grpc = grpc_options(a)?;
    let http_flags = a.ssl_https_verify_peer.is_some()
        || a.ssl_https_verify_host.is_some()
        || a.ssl_https_ca_certificates_file.is_some()
        || a.ssl_https_client_certificate_file.is_some()
        || a.ssl_https_private_key_file.is_some();
    if http_flags && !(https && protocol == Protocol::Http) && !plan_https {
        warnings.push("--ssl-https-* flags have no effect without -i http and -u https://HOST:PORT.".into());
    }
    let grpc_flags = a.ssl_grpc_root_certifications_file.is_some()
        || a.ssl_grpc_private_key_file.is_some()
        || a.ssl_grpc_certificate_chain_file.is_some();
    if (grpc_flags || a.ssl_grpc_use_ssl) && protocol != Protocol::Grpc {
        warnings.push("--ssl-grpc-* flags have no effect without -i grpc.".into());
    } else if grpc_flags && !a.ssl_grpc_use_ssl {
        warnings.push("--ssl-grpc-* files have no effect without --ssl-grpc-use-ssl.".into());
    }
    Ok(Tls { http: https.then(|| http.clone()), https_settings: Some(http), grpc: a.ssl_grpc_use_ssl.then_some(grpc) })
}

fn http_options(a: &Args) -> Result<TlsOptions, Error> {
    let verify_peer = match a.ssl_https_verify_peer.as_deref().map(str::trim) {
        None | Some("1") => true,
        Some("0") => false,
        Some(_) => return Err(parse_err("--ssl-https-verify-peer", "The value must be either 0 or 1.")),
    };
    // curl (which perf_analyzer's HTTP client is) treats 1 as 2.
    let verify_host = match a.ssl_https_verify_host.as_deref().map(str::trim) {
        None | Some("1") | Some("2") => true,
        Some("0") => false,
        Some(_) => return Err(parse_err("--ssl-https-verify-host", "The value must be either 0, 1, or 2.")),
    };
    let cert_kind = kind("--ssl-https-client-certificate-type", a.ssl_https_client_certificate_type.as_deref())?;
    let key_kind = kind("--ssl-https-private-key-type", a.ssl_https_private_key_type.as_deref())?;
    let ca = file("--ssl-https-ca-certificates-file", &a.ssl_https_ca_certificates_file, FileKind::Pem)?;
    let cert = file("--ssl-https-client-certificate-file", &a.ssl_https_client_certificate_file, cert_kind)?;
    let key = file("--ssl-https-private-key-file", &a.ssl_https_private_key_file, key_kind)?;
    Ok(TlsOptions { verify_peer, verify_host, ca, identity: pair(cert, key)? })
}

fn grpc_options(a: &Args) -> Result<TlsOptions, Error> {
    let ca = file("--ssl-grpc-root-certifications-file", &a.ssl_grpc_root_certifications_file, FileKind::Pem)?;
    let chain = file("--ssl-grpc-certificate-chain-file", &a.ssl_grpc_certificate_chain_file, FileKind::Pem)?;
    let key = file("--ssl-grpc-private-key-file", &a.ssl_grpc_private_key_file, FileKind::Pem)?;
    Ok(TlsOptions { verify_peer: true, verify_host: true, ca, identity: pair(chain, key)? })
}

fn kind(flag: &str, v: Option<&str>) -> Result<FileKind, Error> {
    match v.map(str::trim) {
        None => Ok(FileKind::Pem),
        Some(k) if k.eq_ignore_ascii_case("pem") => Ok(FileKind::Pem),
        Some(k) if k.eq_ignore_ascii_case("der") => Ok(FileKind::Der),
        Some(k) => Err(parse_err(
            flag,
            &format!("Unsupported type provided: '{k}'. The available options are 'PEM' or 'DER'."),
        )),
    }
}

fn file(flag: &'static str, given: &Option<String>, kind: FileKind) -> Result<Option<TlsFile>, Error> {
    let Some(path) = given else { return Ok(None) };
    if !std::path::Path::new(path).is_file() {
        return Err(parse_err(flag, "The value must be a valid file path."));
    }
    Ok(Some(TlsFile { flag, path: PathBuf::from(path), kind }))
}

/// A certificate and its key come together: one alone cannot prove anything.
fn pair(cert: Option<TlsFile>, key: Option<TlsFile>) -> Result<Option<(TlsFile, TlsFile)>, Error> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        (Some(c), None) => Err(parse_err(c.flag, "A client certificate needs its private key file too.")),
        (None, Some(k)) => Err(parse_err(k.flag, "A private key needs its client certificate file too.")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};

    #[test]
    fn https_urls_turn_tls_on_for_http_only() {
        let c = config(&["-m", "a", "-u", "https://h:9"]).unwrap();
        assert_eq!(c.server.url, "h:9");
        let t = c.server.tls.http.as_ref().unwrap();
        assert!(t.verify_peer && t.verify_host && t.ca.is_none() && t.identity.is_none());
        assert!(config(&["-m", "a", "-u", "h:9"]).unwrap().server.tls.http.is_none());
        assert!(usage_msg(&["-m", "a", "-i", "grpc", "-u", "https://h:9"]).contains("--ssl-grpc-use-ssl"));
        let g = config(&["-m", "a", "-i", "grpc", "--ssl-grpc-use-ssl"]).unwrap();
        assert!(g.server.tls.grpc.is_some() && g.server.tls.http.is_none());
    }

    #[test]
    fn perf_analyzer_values_and_messages() {
        let c = config(&["-m", "a", "-u", "https://h:9", "--ssl-https-verify-peer", "0", "--ssl-https-verify-host=0"]);
        let t = c.unwrap().server.tls.http.unwrap();
        assert!(!t.verify_peer && !t.verify_host);
        let host = config(&["-m", "a", "-u", "https://h:9", "--ssl-https-verify-host", "1"]).unwrap();
        assert!(host.server.tls.http.unwrap().verify_host, "1 is 2, as in curl");
        let msg = usage_msg(&["-m", "a", "--ssl-https-verify-peer", "2"]);
        assert_eq!(msg, "Failed to parse --ssl-https-verify-peer. The value must be either 0 or 1.");
        let msg = usage_msg(&["-m", "a", "--ssl-https-verify-host", "3"]);
        assert_eq!(msg, "Failed to parse --ssl-https-verify-host. The value must be either 0, 1, or 2.");
        let msg = usage_msg(&["-m", "a", "--ssl-https-private-key-type", "p12"]);
        assert!(msg.ends_with("Unsupported type provided: 'p12'. The available options are 'PEM' or 'DER'."), "{msg}");
        let msg = usage_msg(&["-m", "a", "--ssl-grpc-root-certifications-file", "/no/such.pem"]);
        assert_eq!(msg, "Failed to parse --ssl-grpc-root-certifications-file. The value must be a valid file path.");
    }

    #[test]
    fn a_certificate_comes_with_its_key_and_stray_flags_are_warned_about() {
        let file = std::env::current_exe().unwrap();
        let f = file.to_str().unwrap();
        let msg = usage_msg(&["-m", "a", "-i", "grpc", "--ssl-grpc-use-ssl", "--ssl-grpc-certificate-chain-file", f]);
        assert!(msg.contains("needs its private key"), "{msg}");
        let args = ["rperf", "-m", "a", "--ssl-https-ca-certificates-file", f];
        let (c, warnings) = crate::config::Config::from_args(&clap::Parser::parse_from(args)).unwrap();
        assert!(c.server.tls.http.is_none());
        assert!(warnings.iter().any(|w| w.contains("https://")), "{warnings:?}");
    }
}
