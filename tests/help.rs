//! What rperf tells about itself: `--help` lists every command and describes every flag,
//! `rperf completions SHELL` completes every long flag, and `rperf man` is a roff page with
//! every long flag; a shell it does not know is one line naming SHELL.

mod common;

use common::rperf;

/// The long flags of `rperf --help` (or of a command's), in the order listed.
fn long_flags(help: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for (line, _) in described(help) {
        for word in line.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == '<') {
            if word.starts_with("--") && word.len() > 2 && !flags.iter().any(|f| f == word) {
                flags.push(word.to_string());
            }
        }
    }
    flags
}

/// Each flag or argument of a help text with its description: beside it, or on the line
/// under it (clap's layout when the names are long, and always in the long form).
fn described(help: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if !(indent == 2 || indent == 6) || !line.trim_start().starts_with(['-', '<']) {
            continue;
        }
        let (name, beside) = line.trim().split_once("  ").unwrap_or((line.trim(), ""));
        let under = lines.get(i + 1).filter(|l| l.starts_with("          ")).map_or("", |l| l.trim());
        let what = if beside.trim().is_empty() { under } else { beside.trim() };
        out.push((name.to_string(), what.to_string()));
    }
    out
}

#[test]
fn help_lists_every_command_and_describes_every_flag() {
    for flag in ["--help", "-h"] {
        let run = rperf(&[flag]);
        assert_eq!(run.code, 0, "{flag}");
        let commands = run.stdout.split("Commands:\n").nth(1).expect("a Commands section").split("\n\n").next();
        let commands: Vec<(&str, &str)> = commands
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().split_once("  ").expect("NAME  what it does"))
            .collect();
        let names: Vec<&str> = commands.iter().map(|(name, _)| *name).collect();
        let want = ["serve", "demo", "batching", "compare", "merge", "scenarios", "completions", "man"];
        assert_eq!(names, want, "{flag}");
        assert!(commands.iter().all(|(_, what)| what.trim().len() > 20), "{commands:?}");
        for heading in ["General Options:", "Measurement Options:", "Input Data Options:", "Server Options:"] {
            assert!(run.stdout.contains(heading), "{flag}: {heading}");
        }
    }
    // Every flag has a description, in the summary (-h) and in the long form (--help).
    let short = rperf(&["-h"]).stdout;
    let long = rperf(&["--help"]).stdout;
    for help in [&short, &long] {
        let flags = described(help);
        assert!(flags.len() >= 100, "{} flags in:\n{help}", flags.len());
        for (flag, what) in flags {
            assert!(what.len() > 10, "{flag}: no description");
        }
    }
    assert_eq!(long_flags(&long), long_flags(&short));
}

#[test]
fn each_command_has_help_with_every_flag_described() {
    for sub in ["serve", "demo", "batching", "compare", "merge", "scenarios", "completions", "man"] {
        let run = rperf(&[sub, "-h"]);
        assert_eq!(run.code, 0, "{sub}");
        assert!(run.stdout.starts_with(char::is_uppercase), "{sub}: {}", run.stdout);
        assert!(run.stdout.contains(&format!("\nUsage: rperf {sub}")), "{sub}: {}", run.stdout);
        for (flag, what) in described(&run.stdout) {
            assert!(what.len() > 5, "rperf {sub}: {flag}: no description");
        }
    }
}

#[test]
fn completions_cover_every_long_flag_of_rperf_and_its_commands() {
    let flags = long_flags(&rperf(&["-h"]).stdout);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = rperf(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        // fish writes `-l concurrency-range`, the others `--concurrency-range`.
        for flag in &flags {
            let bare = flag.trim_start_matches('-');
            let found = run.stdout.contains(flag.as_str()) || run.stdout.contains(&format!("-l {bare}"));
            assert!(found, "{shell}: {flag} is not completed");
        }
        assert!(run.stdout.contains("plain-kserve") && run.stdout.contains("max-throughput-drop"), "{shell}");
    }
}

/// What bash offers for the words typed (the last one being completed), with the script
/// `rperf completions bash` wrote.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let function = std::fs::read_to_string(script).unwrap();
    let function = function.split("complete -F ").nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
    let call = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         {function} rperf '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        words.len() - 1,
        words.join(" ")
    );
    let out = std::process::Command::new("bash").args(["-c", &call]).output().expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn bash_completes_commands_and_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rperf.bash");
    std::fs::write(&script, rperf(&["completions", "bash"]).stdout).unwrap();
    assert_eq!(bash_completes(&script, &["rperf", "--concurrency-r"]), ["--concurrency-range"]);
    assert_eq!(bash_completes(&script, &["rperf", "sc"]), ["scenarios"]);
    assert_eq!(bash_completes(&script, &["rperf", "serve", "--pl"]), ["--plain-kserve"]);
    assert_eq!(bash_completes(&script, &["rperf", "compare", "--max-l"]), ["--max-latency-rise"]);
    let shells = bash_completes(&script, &["rperf", "completions", ""]);
    assert!(
        ["bash", "zsh", "fish", "elvish", "powershell"].iter().all(|s| shells.iter().any(|c| c == s)),
        "{shells:?}"
    );
    assert!(!bash_completes(&script, &["rperf", ""]).iter().any(|c| c == "help"), "no 'rperf help' command");
}

#[test]
fn an_unknown_or_missing_shell_is_one_line_naming_shell() {
    for args in [&["completions", "tcsh"][..], &["completions"]] {
        let run = rperf(args);
        assert_eq!(run.code, 99, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("error: Failed to parse SHELL. Expected bash, zsh, fish, elvish or powershell"));
        assert!(run.stdout.is_empty());
    }
    assert!(rperf(&["completions", "tcsh"]).stderr.contains("got 'tcsh'"));
}

#[test]
fn the_man_page_is_roff_with_every_long_flag_and_command() {
    let run = rperf(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = &run.stdout;
    assert!(page.contains("\n.TH rperf 1 0.1.0 rperf \"rperf manual\"\n"), "{}", &page[..page.len().min(300)]);
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH \"GENERAL OPTIONS\"", ".SH COMMANDS"] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains(".SH \"EXIT STATUS\""));
    for flag in long_flags(&rperf(&["-h"]).stdout) {
        // roff escapes each '-' of a flag as '\-'.
        let escaped = flag.replace('-', "\\-");
        assert!(page.contains(&escaped), "{flag} is not in the man page");
    }
    for sub in ["serve", "demo", "batching", "compare", "merge", "scenarios", "completions", "man"] {
        assert!(page.contains(&format!("rperf {sub}")), "rperf {sub}");
    }
}
