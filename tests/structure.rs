//! The shape of the source tree, checked: no two top-level modules of `src/` import each other,
//! directly or through others; no two files of one folder do either; no file is over 500 lines.
//! `cargo test --release --test structure -- --nocapture` prints the modules in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The names that follow `prefix` in `text` (`crate::measure::x` gives `measure`), skipping
/// comments.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.insert(name);
            }
            rest = after;
        }
    }
    names
}

/// Kahn's algorithm: the nodes in dependency order, or the nodes left on a cycle.
fn order(edges: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, Vec<String>> {
    let mut pending: BTreeMap<&String, BTreeSet<&String>> =
        edges.iter().map(|(from, to)| (from, to.iter().filter(|t| *t != from).collect())).collect();
    let mut done = Vec::new();
    loop {
        let ready: Vec<&String> = pending.iter().filter(|(_, deps)| deps.is_empty()).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            break;
        }
        for n in ready {
            pending.remove(n);
            for deps in pending.values_mut() {
                deps.remove(n);
            }
            done.push(n.clone());
        }
    }
    if pending.is_empty() {
        Ok(done)
    } else {
        Err(pending.keys().map(|n| n.to_string()).collect())
    }
}

fn describe(edges: &BTreeMap<String, BTreeSet<String>>, left: &[String]) -> String {
    left.iter()
        .map(|n| {
            let on: Vec<&String> = edges[n].iter().filter(|d| left.contains(d) && *d != n).collect();
            format!("{n} -> {on:?}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        edges.entry(module).or_default().extend(names_after(&text, "crate::"));
    }
    let known: BTreeSet<String> = edges.keys().cloned().collect();
    for deps in edges.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    match order(&edges) {
        Ok(sorted) => {
            println!("top-level modules in dependency order (each imports only those before it):");
            for m in &sorted {
                let deps: Vec<&String> = edges[m].iter().filter(|d| *d != m).collect();
                println!("  {m:<13} <- {deps:?}");
            }
        }
        Err(left) => panic!("top-level modules import each other: {}", describe(&edges, &left)),
    }
}

#[test]
fn no_two_files_of_one_folder_import_each_other() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut folders: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let dir = file.parent().unwrap().to_path_buf();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        // The folder's mod.rs is the parent of its files, not their sibling.
        if dir == root || stem == "mod" {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        let mut deps = names_after(&text, "super::");
        let folder = dir.strip_prefix(&root).unwrap().to_string_lossy().replace('/', "::");
        deps.extend(names_after(&text, &format!("crate::{folder}::")));
        folders.entry(dir).or_default().entry(stem).or_default().extend(deps);
    }
    let mut loops = Vec::new();
    for (dir, mut edges) in folders {
        let known: BTreeSet<String> = edges.keys().cloned().collect();
        for deps in edges.values_mut() {
            deps.retain(|d| known.contains(d));
        }
        if let Err(left) = order(&edges) {
            loops.push(format!("{}: {}", dir.display(), describe(&edges, &left)));
        }
    }
    assert!(loops.is_empty(), "files of one folder import each other:\n{}", loops.join("\n"));
}

#[test]
fn no_source_file_is_over_500_lines() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut sizes: Vec<(usize, String)> = files
        .iter()
        .map(|f| (fs::read_to_string(f).unwrap().lines().count(), f.strip_prefix(&root).unwrap().display().to_string()))
        .collect();
    sizes.sort();
    println!("largest files of src/:");
    for (lines, name) in sizes.iter().rev().take(5) {
        println!("  {lines:>4} {name}");
    }
    let over: Vec<&(usize, String)> = sizes.iter().filter(|(n, _)| *n > MAX_LINES).collect();
    assert!(over.is_empty(), "files over {MAX_LINES} lines: {over:?}");
}
