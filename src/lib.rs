//! rperf: a perf_analyzer-compatible benchmark client for KServe v2 / Triton servers.
//! `main` parses the flags, runs, and alone decides the exit code (perf_analyzer's: 0 ok,
//! 2 no stable measurement, 3 an empty window, 99 any other error). The modules are
//! private: the binary calls `main`, and the fuzz targets (fuzz/) call `fuzzing`.
//! Outside tests, no `unwrap`, `expect` or `panic!`: bytes from a user or a server must never
//! end the program (the few `expect`s on constant bounds say why where they are).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod batching;
mod cli;
mod client;
mod compare;
mod config;
mod demo;
mod drift;
mod error;
pub mod fuzzing;
mod help;
mod input;
mod interrupt;
mod load;
mod measure;
mod merge;
mod metrics;
mod model;
mod noise;
mod proto;
mod report;
mod run;
mod scenarios;
mod serve;
mod server_stats;
mod shm;
mod sync;
mod thresholds;
mod tls;
mod tokenizer;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::error::ErrorKind;
use clap::Parser;

use crate::cli::Args;
use crate::config::Config;
use crate::error::Error;

/// The whole program: what `src/main.rs` runs.
pub fn main() -> ExitCode {
    measure::clock::started();
    raise_open_files_limit();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some("batching") => return batching_main(&argv[1..]),
        Some("serve") => return serve_main(&argv[1..]),
        Some("demo") => return demo_main(&argv[1..]),
        Some("compare") => {
            return parse_sub::<compare::CompareArgs>(&argv[1..]).map_or_else(|c| c, |a| result(compare::run(a)))
        }
        Some("scenarios") => {
            return parse_sub::<scenarios::ScenariosArgs>(&argv[1..]).map_or_else(
                |c| c,
                |a| {
                    print!("{}", scenarios::listing(a.users));
                    ExitCode::SUCCESS
                },
            )
        }
        Some("merge") => {
            return parse_sub::<merge::MergeArgs>(&argv[1..]).map_or_else(|c| c, |a| result(merge::run(a)))
        }
        Some("completions") => return help::completions_main(&argv[1..]),
        Some("man") => return help::man_main(&argv[1..]),
        _ => {}
    }
    let args = match Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap exits 2 on usage errors, which is perf_analyzer's "unstable" code: use 99.
            let _ = e.print();
            return ExitCode::from(99);
        }
    };
    if args.version {
        println!("rperf {} (perf_analyzer 2.40 compatible)", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.fail_if.iter().any(|t| t.trim().eq_ignore_ascii_case("help")) {
        print!("{}", config::threshold::help());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_args(&args) {
        Ok((config, warnings)) => {
            warnings.iter().for_each(|w| eprintln!("{w}"));
            config
        }
        Err(e) => return fail(&e),
    };
    // This runtime only coordinates (windows, statistics, reports); the load has threads of
    // its own (load::threads).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => return fail(&Error::Model(format!("cannot start the async runtime: {e}"))),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let result = runtime.block_on(async {
        tokio::spawn(watch_signals(interrupted.clone()));
        run::run(&config, interrupted).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Ctrl-C and SIGTERM. The first ends the run at the window in flight; the run then writes
/// every file and exits as it ends (0 unless an error or a threshold says otherwise, as
/// perf_analyzer after Ctrl-C). A second exits at once with 128 + its number (130 for
/// Ctrl-C): the files already hold every level measured, written after each one.
async fn watch_signals(interrupted: Arc<AtomicBool>) {
    use std::io::Write;
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    loop {
        let number = tokio::select! {
            Some(()) = int.recv() => 2,
            Some(()) = term.recv() => 15,
            else => return,
        };
        println!("Interrupt signal ({number}) received.");
        if !interrupt::raise(&interrupted) {
            println!("Waiting for in-flight inferences to complete.");
            continue;
        }
        println!("Exiting immediately; the report files hold the levels measured so far.");
        let _ = std::io::stdout().flush();
        // The exit skips every drop: shared-memory regions are unregistered and removed first.
        run::release_before_exit().await;
        std::process::exit(128 + number);
    }
}

/// Thousands of connections need thousands of file descriptors: take the hard limit, as Go
/// programs do, rather than fail at the usual soft limit of 1024.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
    }
}

/// Parses a subcommand's flags; usage errors exit 99 as everywhere in rperf.
fn parse_sub<P: Parser>(argv: &[std::ffi::OsString]) -> Result<P, ExitCode> {
    help::parse::<P>(argv).map_err(|e| {
        let _ = e.print();
        let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
        if help {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(99)
        }
    })
}

fn block_on(threads: usize, f: impl std::future::Future<Output = Result<(), Error>>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build();
    match runtime
        .map_err(|e| Error::Model(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(f))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `rperf batching ...`: the batching report from the server's statistics.
fn batching_main(argv: &[std::ffi::OsString]) -> ExitCode {
    match parse_sub::<batching::BatchingArgs>(argv) {
        Ok(args) => block_on(1, batching::run(args)),
        Err(code) => code,
    }
}

/// `rperf demo`: the embedded server and a sweep against it, in one process.
fn demo_main(argv: &[std::ffi::OsString]) -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    match parse_sub::<demo::DemoArgs>(argv) {
        Ok(args) => block_on(cores, demo::run(args, Arc::new(AtomicBool::new(false)))),
        Err(code) => code,
    }
}

/// `rperf serve ...`: the embedded server.
fn serve_main(argv: &[std::ffi::OsString]) -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    match parse_sub::<serve::ServeArgs>(argv) {
        Ok(args) => block_on(cores, serve::run(args)),
        Err(code) => code,
    }
}

fn result(r: Result<(), Error>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    match e {
        Error::Unstable | Error::EmptyWindow => eprintln!("{e}"),
        Error::Thresholds(breaches) => breaches.iter().for_each(|b| eprintln!("rperf: {b}")),
        Error::Usage(_) => eprintln!("error: {e}\nRun 'rperf --help' for the list of flags."),
        _ => eprintln!("error: {e}"),
    }
    ExitCode::from(e.exit_code() as u8)
}
