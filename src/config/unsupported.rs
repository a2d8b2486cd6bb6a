//! perf_analyzer's flags that rperf does not implement yet: refused with "not supported
//! yet" (exit 99), never silently ignored.

use crate::cli::Args;
use crate::error::Error;

fn unsupported(flag: &str) -> Error {
    Error::Unsupported(format!("{flag} is not supported yet by rperf"))
}

/// Flags that perf_analyzer has and a later piece of rperf implements: refused, never ignored.
pub fn refuse(a: &Args) -> Result<(), Error> {
    let given: [(&str, bool); 17] = [
        ("--periodic-concurrency-range", a.periodic_concurrency_range.is_some()),
        ("--request-period", a.request_period.is_some()),
        ("--shared-memory", a.shared_memory.as_deref().is_some_and(|m| m != "none")),
        ("--output-shared-memory-size", a.output_shared_memory_size.is_some()),
        ("--model-signature-name", a.model_signature_name.is_some()),
        ("--triton-server-directory", a.triton_server_directory.is_some()),
        ("--model-repository", a.model_repository.is_some()),
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
