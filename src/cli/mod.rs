//! The command line: perf_analyzer's flags (`args`) and their validation (`config`).

mod args;
mod config;

pub use args::Args;
pub use config::{
    Compression, Config, DataSource, Distribution, LoadMode, Protocol, RequestParameter, TensorFormat, WindowMode,
};
