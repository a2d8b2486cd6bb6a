//! The flags of stress runs (issue 18): `--plan FILE.toml` (several models at once, each
//! with its own load), `--interference`, `--stages`, `--think-time`, `--duration` with
//! `--slice`, `--monitor`, `--scenario` with `--users`.

#![allow(dead_code)] // Until the flags are parsed (the next commits).

use std::path::PathBuf;
use std::time::Duration;

use super::{DataSource, Protocol};

/// A run cut in time slices (a staged run, a scenario or a soak) instead of stabilized levels.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// How long the whole run lasts (the stages' total when they are given).
    pub duration: Duration,
    /// How long each slice (one row of the report) lasts.
    pub slice: Duration,
    /// The targets the load ramps between; None: the command line's load, held (a soak).
    pub stages: Option<Stages>,
    /// `--monitor`: the drift so far is printed after each slice.
    pub monitor: bool,
    /// `--scenario NAME`, when the run is a built-in scenario.
    pub scenario: Option<String>,
}

/// One stage: ramp linearly to `target` over `duration` (k6's stages).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// Concurrency, or requests per second in rate mode.
    pub target: f64,
}

/// `--stages 30s:10,5m:10,1m:50,10s:0`: the load starts at 0 and ramps from each target to
/// the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    pub stages: Vec<Stage>,
    /// As given, for the report's settings.
    pub text: String,
}

/// The load one model of a plan gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlanLoad {
    /// Its own fixed concurrency.
    Concurrency(u64),
    /// Its own fixed request rate.
    RequestRate(f64),
    /// A share of the command line's load (its level times weight / the weights' sum).
    Weight(f64),
}

/// One `[[model]]` of a plan file; what it leaves out comes from the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    pub name: String,
    pub version: Option<String>,
    pub protocol: Option<Protocol>,
    /// host:port; default: -u, or the protocol's default port when the protocol differs
    /// from the command line's and -u was not given.
    pub url: Option<String>,
    pub input_data: Option<Vec<DataSource>>,
    pub batch_size: Option<usize>,
    pub load: PlanLoad,
    /// gRPC streaming (decoupled models).
    pub streaming: Option<bool>,
    pub sequence_length: Option<u64>,
    /// First correlation id and how many (`--sequence-id-range` start:end).
    pub sequence_ids: Option<(u64, u64)>,
}

/// `--plan FILE.toml`: several models under load at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub path: PathBuf,
    pub models: Vec<ModelPlan>,
    /// `--interference`: each model is also measured alone first.
    pub interference: bool,
}
