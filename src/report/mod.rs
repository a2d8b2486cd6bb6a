//! Turning measured levels into perf_analyzer's outputs: the text report on stdout and the
//! CSV file. Pure formatting over `Level` values; file I/O happens in `run`.

pub mod csv;
pub mod html;
pub mod json;
pub mod junit;
mod number;
pub mod profile;
pub mod text;

pub use number::{fmt_g, usec};
