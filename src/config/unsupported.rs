//! perf_analyzer's flags that rperf does not implement yet: refused with "not supported
//! yet" (exit 99), never silently ignored.

use crate::cli::Args;
use crate::error::Error;

fn unsupported(flag: &str) -> Error {
    Error::Unsupported(format!("{flag} is not supported yet by rperf"))
}

/// Flags that perf_analyzer has and a later piece of rperf implements: refused, never ignored.
pub fn refuse(a: &Args) -> Result<(), Error> {
    let given: [(&str, bool); 26] = [
        ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
        ("--request-period", a.request_period.is_some()),
        ("--model-signature-name", a.model_signature_name.is_some()),
        ("--triton-server-directory", a.triton_server_directory.is_some()),
        ("--model-repository", a.model_repository.is_some()),
        ("--ssl-grpc-use-ssl", a.ssl_grpc_use_ssl),
        ("--ssl-grpc-root-certifications-file", a.ssl_grpc_root_certifications_file.is_some()),
        ("--ssl-grpc-private-key-file", a.ssl_grpc_private_key_file.is_some()),
        ("--ssl-grpc-certificate-chain-file", a.ssl_grpc_certificate_chain_file.is_some()),
        ("--ssl-https-verify-peer", a.ssl_https_verify_peer.is_some()),
        ("--ssl-https-verify-host", a.ssl_https_verify_host.is_some()),
        ("--ssl-https-ca-certificates-file", a.ssl_https_ca_certificates_file.is_some()),
        ("--ssl-https-client-certificate-file", a.ssl_https_client_certificate_file.is_some()),
        ("--ssl-https-client-certificate-type", a.ssl_https_client_certificate_type.is_some()),
        ("--ssl-https-private-key-file", a.ssl_https_private_key_file.is_some()),
        ("--ssl-https-private-key-type", a.ssl_https_private_key_type.is_some()),
        ("--trace-file", a.trace_file.is_some()),
        ("--trace-level", a.trace_level.is_some()),
        ("--trace-rate", a.trace_rate.is_some()),
        ("--trace-count", a.trace_count.is_some()),
        ("--log-frequency", a.log_frequency.is_some()),
        ("--enable-mpi", a.enable_mpi),
        ("-t", a.deprecated_concurrency.is_some()),
        ("-c", a.deprecated_max_concurrency.is_some()),
        ("-d", a.deprecated_dynamic),
        ("--service-kind", !["triton", "openai"].iter().any(|k| a.service_kind.eq_ignore_ascii_case(k))),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(unsupported(flag)),
        None => Ok(()),
    }
}
