//! Help beyond `--help`: `rperf completions SHELL` (clap_complete's scripts for rperf and
//! each of its commands) and `rperf man` (the page build.rs rendered from `cli` with
//! clap_mangen). Both read the one clap definition the flags are parsed with.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use clap_complete::Shell;

use crate::cli::Args;

/// The man page, rendered at build time (build.rs).
const MAN_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/rperf.1"));

/// `rperf completions SHELL`.
#[derive(Parser, Debug)]
#[command(
    name = "rperf completions",
    about = "Print a shell completion script: rperf completions bash|zsh|fish|elvish|powershell",
    long_about = "Print a shell completion script for rperf and its commands. For example:\n  \
                  rperf completions bash > ~/.local/share/bash-completion/completions/rperf\n  \
                  rperf completions zsh > ~/.zfunc/_rperf\n  \
                  rperf completions fish > ~/.config/fish/completions/rperf.fish"
)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// `rperf man`.
#[derive(Parser, Debug)]
#[command(name = "rperf man", about = "Print the man page: rperf man > /usr/local/share/man/man1/rperf.1")]
pub struct ManArgs {}

/// A command's flags, parsed with its usage line saying `rperf NAME` (clap would name it
/// after argv[0], which is the bare NAME here).
pub fn parse<P: Parser>(argv: &[std::ffi::OsString]) -> Result<P, clap::Error> {
    let mut cmd = P::command();
    let name = cmd.get_name().to_string();
    cmd = cmd.bin_name(name);
    let matches = cmd.try_get_matches_from_mut(argv)?;
    P::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// rperf with every command as a subcommand, as the completion scripts see it (the binary
/// dispatches the commands by hand, so `Args` alone does not know them).
pub fn command() -> clap::Command {
    let sub = |name: &'static str, cmd: clap::Command| cmd.name(name).bin_name(format!("rperf {name}"));
    Args::command()
        .disable_help_subcommand(true)
        .subcommand(sub("serve", crate::serve::ServeArgs::command()))
        .subcommand(sub("demo", crate::demo::DemoArgs::command()))
        .subcommand(sub("batching", crate::batching::BatchingArgs::command()))
        .subcommand(sub("compare", crate::compare::CompareArgs::command()))
        .subcommand(sub("merge", crate::merge::MergeArgs::command()))
        .subcommand(sub("scenarios", crate::scenarios::ScenariosArgs::command()))
        .subcommand(sub("completions", CompletionsArgs::command()))
        .subcommand(sub("man", ManArgs::command()))
}

/// `rperf completions SHELL`: the script on stdout. A missing or unknown shell is one line
/// naming SHELL and the shells there are, exit 99.
pub fn completions_main(argv: &[std::ffi::OsString]) -> ExitCode {
    let shell = match parse::<CompletionsArgs>(argv) {
        Ok(args) => args.shell,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::MissingRequiredArgument) => {
            let got = match e.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(v)) => format!("got '{v}'"),
                _ => "none given".to_string(),
            };
            eprintln!("error: Failed to parse SHELL. Expected bash, zsh, fish, elvish or powershell, {got}.");
            return ExitCode::from(99);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(99);
        }
    };
    clap_complete::generate(shell, &mut command(), "rperf", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `rperf man`: the roff page on stdout.
pub fn man_main(argv: &[std::ffi::OsString]) -> ExitCode {
    match parse::<ManArgs>(argv) {
        Ok(ManArgs {}) => {
            print!("{MAN_PAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = e.print();
            let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            ExitCode::from(if help { 0 } else { 99 })
        }
    }
}

/// The one line each command's own `--help` starts with, as `rperf --help` lists it.
#[cfg(test)]
fn about(name: &str) -> Option<String> {
    command().find_subcommand(name).and_then(|c| c.get_about()).map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::COMMANDS;

    #[test]
    fn the_listing_says_what_each_command_says_of_itself() {
        let subcommands: Vec<String> = command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        let listed: Vec<String> = COMMANDS.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(subcommands, listed);
        for (name, line) in COMMANDS {
            assert_eq!(about(name).as_deref(), Some(line), "rperf {name}");
        }
    }

    #[test]
    fn every_flag_of_every_command_says_what_it_does_and_its_default() {
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            for arg in sub.get_arguments().filter(|a| !["help", "version"].contains(&a.get_id().as_str())) {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
                let default_known = !arg.get_default_values().is_empty()
                    || arg.is_required_set()
                    || arg.is_positional()
                    || ["default", "required", "deprecated"].iter().any(|w| help.to_lowercase().contains(w));
                if help.trim().is_empty() || help.contains('\n') || (takes_value && !default_known) {
                    missing.push(format!("{} {}: '{help}'", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no one line with the default:\n{}", missing.join("\n"));
    }

    #[test]
    fn every_flag_of_rperf_is_in_a_group() {
        let cmd = Args::command();
        for arg in cmd.get_arguments().filter(|a| !["help", "version"].contains(&a.get_id().as_str())) {
            assert!(arg.get_help_heading().is_some(), "{} has no help heading", arg.get_id());
        }
    }
}
