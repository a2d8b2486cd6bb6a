//! Compiles proto/ with protox (a pure-Rust protobuf compiler from crates.io), so building
//! rperf needs no system protoc; and renders the man page rperf(1) from the flags' own
//! definition (src/cli.rs, which needs nothing but clap) with clap_mangen, for `rperf man`.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

// Only the command definition and its help are used here.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=src/cli.rs");
    let fds = protox::compile(["grpc_service.proto", "model_config.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Tensor payloads as `bytes::Bytes`, so responses are sliced, not copied.
        .bytes(".")
        .compile_fds(fds)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("rperf.1"), man_page()?)?;
    Ok(())
}

/// clap_mangen's sections for the flags (one per help group), then the commands, which the
/// binary dispatches by hand (their own flags are in `rperf COMMAND --help`), and the exit codes.
fn man_page() -> std::io::Result<Vec<u8>> {
    // .TH's date is the version: an empty one would shift the fields after it, and a build
    // date would make two builds of one version differ.
    let man = Man::new(cli::Args::command()).date(env!("CARGO_PKG_VERSION")).source("rperf").manual("rperf manual");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for (name, about) in cli::COMMANDS {
        roff.control("TP", []);
        roff.text([bold(format!("rperf {name}"))]);
        roff.text([roman(about)]);
    }
    roff.control("PP", []);
    roff.text([roman("Each command's flags: "), bold("rperf COMMAND --help"), roman(".")]);
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(format!("{}.", cli::EXIT_CODES))]);
    roff.to_writer(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}
