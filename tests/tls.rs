//! TLS end to end, with certificates this test makes (rcgen) in a temp dir: a CA, the
//! server's (localhost, 127.0.0.1), a client's, and bad ones (another CA's, expired, for
//! another host). Sweeps over HTTPS and gRPC with TLS against `rperf serve`, with and
//! without mutual TLS; one-line errors for refused certificates; and the real Triton's gRPC
//! with TLS and with mutual TLS (Triton's HTTP has no TLS).

mod common;

use common::{lines_with, read, rperf, start_private_triton_with, temp_path, Run, Serve};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files of one test's public-key infrastructure.
struct Pki {
    dir: tempfile::TempDir,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        let ca = new_ca("rperf test CA");
        pki.write("ca.pem", ca.pem().as_bytes());
        pki.write("other_ca.pem", new_ca("another CA").pem().as_bytes());
        let server = ["localhost", "127.0.0.1"];
        pki.leaf("server", &server, &ca, ExtendedKeyUsagePurpose::ServerAuth, false);
        pki.leaf("expired", &server, &ca, ExtendedKeyUsagePurpose::ServerAuth, true);
        pki.leaf("wronghost", &["other.example"], &ca, ExtendedKeyUsagePurpose::ServerAuth, false);
        pki.leaf("client", &["rperf-client"], &ca, ExtendedKeyUsagePurpose::ClientAuth, false);
        pki.write("not_pem.pem", b"this is not a certificate\n");
        pki
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }

    /// NAME.pem and NAME.key, and their DER forms NAME.der and NAME.key.der.
    fn leaf(
        &self,
        name: &str,
        names: &[&str],
        ca: &CertifiedIssuer<KeyPair>,
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) {
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        if expired {
            (p.not_before, p.not_after) = (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1));
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, ca).unwrap();
        self.write(&format!("{name}.pem"), cert.pem().as_bytes());
        self.write(&format!("{name}.der"), cert.der());
        self.write(&format!("{name}.key"), key.serialize_pem().as_bytes());
        self.write(&format!("{name}.key.der"), &key.serialize_der());
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// `rperf serve` over TLS with NAME.pem / NAME.key, and the client CA if `mutual`.
    fn serve(&self, name: &str, mutual: bool) -> Serve {
        let (cert, key, ca) =
            (self.path(&format!("{name}.pem")), self.path(&format!("{name}.key")), self.path("ca.pem"));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
        if mutual {
            args.extend(["--tls-client-ca", &ca]);
        }
        Serve::start(&args)
    }
}

/// A short sweep of concurrency 1 and 2 with `extra` flags.
fn sweep(extra: &[&str]) -> Run {
    let mut args = vec!["--concurrency-range", "1:2", "-p", "300", "-s", "100"];
    args.extend(extra);
    rperf(&args)
}

fn assert_levels(run: &Run, levels: usize) {
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(lines_with(&run.stdout, "Request concurrency: ").len(), levels, "{}", run.stdout);
}

/// A refused run: exit 99 and one line on stderr that contains every one of `words`.
fn assert_one_line_error(run: &Run, words: &[&str]) {
    assert_eq!(run.code, 99, "{}", run.all());
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    for w in words {
        assert!(lines[0].contains(w), "'{w}' missing from: {}", lines[0]);
    }
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn https_sweeps_against_rperf_serve_with_and_without_mutual_tls() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let s = pki.serve("server", false);
    let url = format!("https://{}", s.http);
    assert_levels(&sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca]), 2);
    // The same by name: the certificate names localhost too.
    let by_name = format!("https://localhost:{}", common::port_of(&s.http));
    assert_levels(&sweep(&["-m", "simple", "-u", &by_name, "--ssl-https-ca-certificates-file", &ca]), 2);
    // Plain HTTP to a TLS port, and TLS to a plain port, fail in one line.
    let plain = Serve::start(&[]);
    let to_plain = format!("https://{}", plain.http);
    let run = sweep(&["-m", "simple", "-u", &to_plain, "--ssl-https-ca-certificates-file", &ca]);
    assert_one_line_error(&run, &["TLS handshake with", "is it serving without TLS?"]);

    let m = pki.serve("server", true);
    let url = format!("https://{}", m.http);
    let (cert, key) = (pki.path("client.der"), pki.path("client.key.der"));
    let mut args = vec!["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca];
    args.extend(["--ssl-https-client-certificate-file", &cert, "--ssl-https-client-certificate-type", "DER"]);
    args.extend(["--ssl-https-private-key-file", &key, "--ssl-https-private-key-type=der"]);
    assert_levels(&sweep(&args), 2);
    let run = sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca]);
    assert_one_line_error(&run, &["requires a client certificate", "--ssl-https-client-certificate-file"]);
}

/// A `--plan` whose models live on an HTTPS server and on a plain one: each url's scheme
/// decides, with the --ssl-https-* settings for the https:// one.
#[test]
fn a_plan_mixes_an_https_model_and_a_plain_one() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let (secure, plain) = (pki.serve("server", false), Serve::start(&[]));
    let plan = temp_path("tls_plan.toml");
    let text = format!(
        "[[model]]\nname = \"simple\"\nurl = \"https://{}\"\nconcurrency = 1\n\n\
         [[model]]\nname = \"preprocess\"\nurl = \"http://{}\"\nconcurrency = 1\n",
        secure.http, plain.http
    );
    std::fs::write(&plan, text).unwrap();
    let (plan_s, out) = (plan.to_string_lossy().into_owned(), temp_path("tls_plan.json"));
    let out_s = out.to_string_lossy().into_owned();
    let args = ["--plan", &plan_s, "-p", "300", "-s", "100", "--ssl-https-ca-certificates-file", &ca, "--json", &out_s];
    let run = rperf(&args);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.stderr.contains("have no effect"), "the CA file is used: {}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
    for (i, name) in ["simple", "preprocess"].iter().enumerate() {
        let m = &report["models"][i];
        assert!(m["sent"].as_u64().unwrap() > 0, "{name}: {m}");
        let failed: u64 = m["levels"].as_array().unwrap().iter().map(|l| l["failed"].as_u64().unwrap()).sum();
        assert_eq!(failed, 0, "{name}");
    }
    // Without the CA, the https:// model's server is not trusted: one line, naming the file flag.
    let run = rperf(&["--plan", &plan_s, "-p", "300", "-s", "100"]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn grpc_unary_and_streaming_over_tls_against_rperf_serve() {
    let pki = Pki::new();
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let s = pki.serve("server", false);
    let tls = ["-i", "grpc", "-u", &s.grpc, "--ssl-grpc-use-ssl", "--ssl-grpc-root-certifications-file", &ca];
    assert_levels(&sweep(&[&["-m", "simple"][..], &tls].concat()), 2);
    assert_levels(&sweep(&[&["-m", "simple", "--streaming"][..], &tls].concat()), 2);
    // Without TLS, against its TLS port: refused, in one line.
    let run = sweep(&["-m", "simple", "-i", "grpc", "-u", &s.grpc]);
    assert_eq!(run.code, 99, "{}", run.all());

    let m = pki.serve("server", true);
    let mut mutual = vec!["-m", "simple", "-i", "grpc", "-u", &m.grpc, "--ssl-grpc-use-ssl"];
    mutual.extend(["--ssl-grpc-root-certifications-file", &ca, "--ssl-grpc-certificate-chain-file", &cert]);
    mutual.extend(["--ssl-grpc-private-key-file", &key]);
    assert_levels(&sweep(&mutual), 2);
    assert_levels(&sweep(&[&mutual[..], &["--streaming"]].concat()), 2);
}

#[test]
fn refused_certificates_are_one_line_naming_the_file_and_the_reason() {
    let pki = Pki::new();
    let (ca, other) = (pki.path("ca.pem"), pki.path("other_ca.pem"));
    let s = pki.serve("server", false);
    let url = format!("https://{}", s.http);
    let run = sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &other]);
    assert_one_line_error(&run, &[&other, "unknown CA"]);
    let grpc = ["-m", "simple", "-i", "grpc", "-u", &s.grpc, "--ssl-grpc-use-ssl"];
    let run = sweep(&[&grpc[..], &["--ssl-grpc-root-certifications-file", &other]].concat());
    assert_one_line_error(&run, &["--ssl-grpc-root-certifications-file", &other, "unknown CA"]);

    let wrong = pki.serve("wronghost", false);
    let url = format!("https://{}", wrong.http);
    let run = sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca]);
    assert_one_line_error(&run, &["not valid for host '127.0.0.1'", "other.example", "--ssl-https-verify-host 0"]);
    let unchecked = ["--ssl-https-verify-host", "0"];
    assert_levels(
        &sweep(&[&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca], &unchecked[..]].concat()),
        2,
    );
    let grpc = ["-m", "simple", "-i", "grpc", "-u", &wrong.grpc, "--ssl-grpc-use-ssl"];
    let run = sweep(&[&grpc[..], &["--ssl-grpc-root-certifications-file", &ca]].concat());
    assert_one_line_error(&run, &["not valid for host '127.0.0.1'"]);

    let expired = pki.serve("expired", false);
    let url = format!("https://{}", expired.http);
    let run = sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &ca]);
    assert_one_line_error(&run, &["has expired"]);
    assert_levels(&sweep(&["-m", "simple", "-u", &url, "--ssl-https-verify-peer", "0"]), 2);

    // The client's own files.
    let (cert, server_key) = (pki.path("client.pem"), pki.path("server.key"));
    let mut args = vec!["-m", "simple", "-u", &url, "--ssl-https-client-certificate-file", &cert];
    args.extend(["--ssl-https-private-key-file", &server_key]);
    assert_one_line_error(&sweep(&args), &[&cert, &server_key, "does not match"]);
    let not_pem = pki.path("not_pem.pem");
    let run = sweep(&["-m", "simple", "-u", &url, "--ssl-https-ca-certificates-file", &not_pem]);
    assert_one_line_error(&run, &["--ssl-https-ca-certificates-file", &not_pem, "not a PEM file"]);
    // And the server's: refused before it listens.
    let serve = common::rperf(&[
        "serve",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--metrics-port",
        "0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &server_key,
    ]);
    assert_one_line_error(&serve, &["--tls-cert", &cert, "does not match"]);
}

/// The real Triton's gRPC with TLS, then with mutual TLS (its own flags, certificates from
/// here); concurrency 1 to 4 each.
#[test]
fn real_triton_grpc_with_tls_and_mutual_tls() {
    let pki = Pki::new();
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let server = [
        "--grpc-use-ssl=true".to_string(),
        format!("--grpc-server-cert={}", pki.path("server.pem")),
        format!("--grpc-server-key={}", pki.path("server.key")),
        format!("--grpc-root-cert={ca}"),
    ];
    let levels = ["--concurrency-range", "1:4", "-p", "400", "-s", "100"];
    for mutual in [false, true] {
        let mut args: Vec<&str> = server.iter().map(String::as_str).collect();
        if mutual {
            args.push("--grpc-use-ssl-mutual=true");
        }
        let triton = start_private_triton_with(&args);
        let url = triton.grpc_url();
        let mut run = vec!["-m", "identity", "-i", "grpc", "-u", &url, "--ssl-grpc-use-ssl"];
        run.extend(["--ssl-grpc-root-certifications-file", &ca]);
        if mutual {
            let without = rperf(&[&run[..], &levels].concat());
            assert_eq!(without.code, 99, "no client certificate: {}", without.all());
            // Triton's refusal comes after the handshake: it ends the session on the first
            // call without an alert, and the client meets a close, a reset, or a request
            // cancelled before it was sent, as the timing falls. rperf noted that Triton asked
            // for a certificate and none was given, and says so whichever it met.
            assert_one_line_error(
                &without,
                &["requires a client certificate", "asked for one", "--ssl-grpc-certificate-chain-file"],
            );
            run.extend(["--ssl-grpc-certificate-chain-file", &cert, "--ssl-grpc-private-key-file", &key]);
        }
        run.extend(levels);
        let result = rperf(&run);
        assert_eq!(result.code, 0, "{}", result.all());
        assert_eq!(lines_with(&result.stdout, "Request concurrency: ").len(), 4);
        assert_eq!(lines_with(&result.stdout, "    Avg gRPC time: ").len(), 4);
        triton.kill();
    }
}
