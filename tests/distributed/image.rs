//! The image the Kubernetes recipe runs, checked without Docker: the Dockerfile builds with
//! `cargo build --release` and the stage that runs copies exactly the binary that command
//! makes, and nothing else; the recipe uses that image and gives every pod one start.

use super::common::{read, root};
use super::dockerfile::{option, parse, words, Stage};

/// `[[bin]] name` of Cargo.toml, the binary `cargo build --release` writes to target/release/.
fn binary_name() -> String {
    let manifest = read(&root().join("Cargo.toml"));
    let bin = manifest.split("[[bin]]").nth(1).expect("Cargo.toml has a [[bin]]");
    let name = bin.lines().find_map(|l| l.trim().strip_prefix("name = ")).expect("[[bin]] has a name");
    name.trim_matches('"').to_string()
}

/// (major, minor) of a version such as `1.88` or `1.95-bookworm`.
fn rust_version(v: &str) -> (u32, u32) {
    let mut parts = v.split(['.', '-']).map(|p| p.parse().unwrap_or_else(|_| panic!("a Rust version, not {v}")));
    (parts.next().unwrap(), parts.next().unwrap())
}

/// The stage whose RUN is the release build, and that RUN's words.
fn builder(stages: &[Stage]) -> (usize, Vec<String>) {
    let builds: Vec<(usize, Vec<String>)> = stages
        .iter()
        .enumerate()
        .flat_map(|(k, s)| s.all("RUN").map(move |r| (k, words(&r.args).iter().map(|w| w.to_string()).collect())))
        .filter(|(_, w): &(usize, Vec<String>)| w.starts_with(&["cargo".into(), "build".into()]))
        .collect();
    assert_eq!(builds.len(), 1, "one `cargo build` in the Dockerfile: {builds:?}");
    builds.into_iter().next().unwrap()
}

#[test]
fn the_dockerfile_copies_the_binary_cargo_build_release_makes() {
    let stages = parse(&read(&root().join("Dockerfile"))).expect("the Dockerfile parses");
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    let (k, build) = builder(&stages);
    let stage = &stages[k];
    assert_eq!(build, ["cargo", "build", "--release", "--locked"], "the release build, with Cargo.lock's versions");
    // The official Rust image, at least as new as the project's rust-version.
    let tag = stage.image.strip_prefix("rust:").unwrap_or_else(|| panic!("built in the Rust image: {}", stage.image));
    let manifest = read(&root().join("Cargo.toml"));
    let msrv = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).expect("Cargo.toml's rust-version");
    assert!(rust_version(tag) >= rust_version(msrv.trim_matches('"')), "rust:{tag} is older than {msrv}");
    // Nothing moves the output away from target/release/: no target dir of its own.
    assert!(stage.all("ENV").all(|e| !e.args.contains("CARGO_TARGET_DIR") && !e.args.contains("CARGO_BUILD_TARGET")));
    let workdir = stage.all("WORKDIR").last().expect("the builder sets its WORKDIR").args.clone();
    let binary = format!("{}/target/release/{}", workdir.trim_end_matches('/'), binary_name());
    // The binary this test runs against is the one cargo names so.
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_rperf"));
    assert_eq!(built.file_name().unwrap().to_str(), Some(binary_name().as_str()));

    let last = stages.last().unwrap();
    assert!(
        last.image.starts_with("debian:") && last.image.ends_with("-slim")
            || last.image.starts_with("gcr.io/distroless/cc"),
        "a minimal base, not {}",
        last.image
    );
    assert_eq!(last.all("RUN").count(), 0, "the final stage only receives the binary");
    let copies: Vec<_> = last.all("COPY").chain(last.all("ADD")).collect();
    assert_eq!(copies.len(), 1, "the final stage copies one thing: {copies:?}");
    let from = option(&copies[0].args, "from").expect("copied from the builder stage");
    assert!(from == k.to_string() || stage.name.as_deref() == Some(from), "COPY --from={from}, not the builder");
    let paths = words(&copies[0].args);
    assert_eq!(paths.len(), 2, "COPY SOURCE DEST: {}", copies[0].args);
    assert_eq!(paths[0], binary, "the final stage copies what `cargo build --release` wrote");
    let entry = last.all("ENTRYPOINT").last().expect("an ENTRYPOINT").args.clone();
    let on_path = paths[1].strip_prefix("/usr/local/bin/").unwrap_or(paths[1]);
    assert!(entry.contains(&format!("\"{}\"", paths[1])) || entry.contains(&format!("\"{on_path}\"")), "{entry}");
}

#[test]
fn the_build_context_leaves_out_outputs_and_keeps_the_sources() {
    let ignore = read(&root().join(".dockerignore"));
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/'))
        .collect();
    for out in ["target", ".git"] {
        assert!(patterns.contains(&out), ".dockerignore leaves out {out}/: {patterns:?}");
    }
    let needed = ["Cargo.toml", "Cargo.lock", "build.rs", "src/main.rs", "proto", "testdata/serve/default_models.toml"];
    for path in needed {
        assert!(root().join(path).exists(), "{path}");
        let dropped = patterns.iter().find(|p| path == **p || path.starts_with(&format!("{p}/")));
        assert!(dropped.is_none(), ".dockerignore drops {path}, which the build needs ({dropped:?})");
    }
}

#[test]
fn the_recipe_runs_the_image_with_one_start_and_levels_of_one_length() {
    let job = read(&root().join("deploy/rperf-indexed-job.yaml"));
    let image = job.lines().find_map(|l| l.trim().strip_prefix("image: ")).expect("the Job names an image");
    let image = image.split_whitespace().next().unwrap();
    assert!(image.split('/').next_back().unwrap().starts_with("rperf:"), "{image}");
    for flag in ["--start-at \"$START_AT\"", "--level-duration \"$LEVEL_DURATION\""] {
        assert!(job.contains(flag), "every pod's rperf gets {flag}");
    }
    for var in ["START_AT", "LEVEL_DURATION"] {
        assert!(job.contains(&format!("- name: {var}")), "the Job sets {var} once for every pod");
    }
    let readme = read(&root().join("deploy/README.md"));
    for step in ["docker build -t", "docker push", "--start-at", "--level-duration", "rperf merge"] {
        assert!(readme.contains(step), "deploy/README.md says {step}");
    }
}
