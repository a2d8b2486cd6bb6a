//! perf_analyzer's flags that rperf does not implement: refused (exit 99), never silently
//! ignored. Those a later piece implements say "not supported yet"; those rperf will not
//! have (MPI, the C API, other servers' protocols) say what to use instead.

use crate::cli::Args;
use crate::error::Error;

fn unsupported(flag: &str) -> Error {
    Error::Unsupported(format!("{flag} is not supported yet by rperf"))
}

/// Flags that perf_analyzer has and a later piece of rperf implements: refused, never ignored.
pub fn refuse(a: &Args) -> Result<(), Error> {
    not_planned(a)?;
    let given: [(&str, bool); 3] = [
        ("--model-signature-name", a.model_signature_name.is_some()),
        ("--triton-server-directory", a.triton_server_directory.is_some()),
        ("--model-repository", a.model_repository.is_some()),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(unsupported(flag)),
        None => Ok(()),
    }
}

/// MPI and the service kinds rperf has no client for: one line each on what does the job.
fn not_planned(a: &Args) -> Result<(), Error> {
    if a.enable_mpi {
        return Err(Error::Unsupported(
            "--enable-mpi is not supported by rperf: run one rperf per load machine and combine their --json \
             reports with `rperf merge` (deploy/ shows such a run)."
                .into(),
        ));
    }
    let kind = a.service_kind.to_ascii_lowercase();
    let instead = match kind.as_str() {
        "triton" | "openai" => return Ok(()),
        "triton_c_api" => {
            "rperf does not load Triton in-process: start tritonserver and point -u (-i http or grpc) at its endpoint"
        }
        "tfserving" => {
            "rperf has no TensorFlow Serving client: for its REST API (/v1/models/NAME:predict) use --service-kind \
             openai --endpoint v1/models/NAME:predict --endpoint-type json with --input-data"
        }
        "torchserve" => {
            "rperf has no TorchServe client: for its JSON API use --service-kind openai --endpoint predictions/NAME \
             --endpoint-type json with --input-data"
        }
        _ => {
            return Err(super::parse_err(
                "--service-kind",
                &format!(
                    "Unsupported type provided: '{}'. The available options are 'triton' and 'openai' (rperf), or \
                     'tfserving', 'torchserve', 'triton_c_api' (perf_analyzer's, not in rperf).",
                    a.service_kind
                ),
            ))
        }
    };
    Err(Error::Unsupported(format!("--service-kind {kind} is not supported by rperf: {instead}.")))
}

#[cfg(test)]
mod tests {
    use super::super::tests::usage_msg;

    /// Each flag rperf will not have is one line that says what to use instead.
    #[test]
    fn refusals_say_what_to_use_instead() {
        let m = usage_msg(&["-m", "a", "--enable-mpi"]);
        assert!(m.contains("rperf merge") && !m.contains('\n'), "{m}");
        for (kind, instead) in [("triton_c_api", "point -u"), ("tfserving", ":predict"), ("torchserve", "predictions/")]
        {
            let m = usage_msg(&["-m", "a", "--service-kind", kind]);
            assert!(m.starts_with(&format!("--service-kind {kind} is not supported by rperf: ")), "{m}");
            assert!(m.contains(instead) && !m.contains('\n'), "{m}");
        }
        assert!(usage_msg(&["-m", "a", "--service-kind", "kserve"]).contains("Unsupported type provided: 'kserve'"));
    }
}
