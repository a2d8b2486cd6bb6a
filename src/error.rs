//! The errors a run can end with. Each names what it is about; `main` alone maps them to
//! perf_analyzer's exit codes (2 unstable, 3 empty window, 99 everything else).

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A bad flag or flag combination (perf_analyzer's usage errors).
    #[error("{0}")]
    Usage(String),
    /// A perf_analyzer flag that rperf does not implement yet.
    #[error("{0}")]
    Unsupported(String),
    /// The server could not be reached or refused a control call; `what` says which.
    #[error("{what}: {message}")]
    Server { what: String, message: String },
    /// The server does not have the call at all (gRPC `Unimplemented`, HTTP 404 on an
    /// extension's route): the extension is missing even if the server listed it.
    #[error("{what}: {message}")]
    NotImplemented { what: String, message: String },
    /// The model's metadata or config does not fit the request (batch size, shapes, types).
    #[error("{0}")]
    Model(String),
    /// A report file that cannot be read, compared or merged: names the file and the figure.
    #[error("{0}")]
    Report(String),
    /// Bad input data: names the file, entry, input and what was expected.
    #[error("Failed to init manager inputs: {0}")]
    Input(String),
    /// A certificate or key file that cannot be used: names the flag, the file and why.
    #[error("{0}")]
    Tls(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The first level of a linear sweep never stabilized (exit 2).
    #[error("Failed to obtain stable measurement.")]
    Unstable,
    /// A window recorded no request (exit 3).
    #[error("No valid requests recorded within time interval. Please use a larger time window.")]
    EmptyWindow,
    /// Every request of a window failed: the run stops with the server's message.
    #[error("every request of a measurement window failed: {0}")]
    AllFailed(String),
    /// --fail-if thresholds were breached (exit 4), each with its level and value.
    #[error("{}", .0.join("\n"))]
    Thresholds(Vec<String>),
    /// Requests failed during an otherwise complete run (reported, then exit 99).
    #[error("{failed} of {total} requests failed ({pct:.2}%), more than --max-error-rate allows")]
    RequestsFailed { failed: u64, total: u64, pct: f64 },
}

impl Error {
    pub fn server(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Server { what: what.into(), message: message.into() }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Unstable => 2,
            Error::EmptyWindow => 3,
            Error::Thresholds(_) => 4,
            _ => 99,
        }
    }
}
