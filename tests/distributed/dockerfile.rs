//! A reader of Dockerfiles, enough to check the project's own: stages (`FROM image [AS
//! name]`) and their instructions, with comments, parser directives and continued lines
//! handled as Docker does. Nothing is built.

/// One instruction: its keyword in capitals, and the rest of its (joined) line.
#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// One build stage.
#[derive(Debug)]
pub struct Stage {
    pub image: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The instructions with `keyword`.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.instructions.iter().filter(move |i| i.keyword == keyword)
    }
}

/// The logical lines of `text`: comments and blank lines dropped, lines ending in `\` joined
/// with the next (a comment between continued lines is dropped, as Docker does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current).trim().to_string());
            }
        }
    }
    if !current.trim().is_empty() {
        lines.push(current.trim().to_string());
    }
    lines
}

/// The stages of a Dockerfile; an error names the line that is not an instruction of a stage.
pub fn parse(text: &str) -> Result<Vec<Stage>, String> {
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical_lines(text) {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_string());
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let (image, name) = match words.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => (image.to_string(), Some(name.to_string())),
                _ => return Err(format!("FROM {args}: expected `FROM image [AS name]`")),
            };
            stages.push(Stage { image, name, instructions: Vec::new() });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction { keyword, args });
        } else if keyword != "ARG" {
            return Err(format!("{line}: an instruction before the first FROM"));
        }
    }
    Ok(stages)
}

/// The words of a RUN or COPY instruction without its `--flag=value` options.
pub fn words(args: &str) -> Vec<&str> {
    args.split_whitespace().filter(|w| !w.starts_with("--") || !w.contains('=')).collect()
}

/// The value of option `--name=value` of an instruction.
pub fn option<'a>(args: &'a str, name: &str) -> Option<&'a str> {
    args.split_whitespace().find_map(|w| w.strip_prefix("--")?.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_comments_and_continued_lines() {
        let text = "# syntax=docker/dockerfile:1\nARG V=1\nFROM rust:1.95 AS build\nWORKDIR /src\nRUN --mount=type=cache,target=/x \\\n  # a note\n    cargo build \\\n    --release\n\nfrom debian:bookworm-slim\nCOPY --from=build /src/target/release/rperf /usr/local/bin/rperf\n";
        let stages = parse(text).unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!((stages[0].image.as_str(), stages[0].name.as_deref()), ("rust:1.95", Some("build")));
        let run = stages[0].all("RUN").next().unwrap();
        assert_eq!(words(&run.args), ["cargo", "build", "--release"]);
        assert_eq!(option(&run.args, "mount"), Some("type=cache,target=/x"));
        assert_eq!((stages[1].image.as_str(), stages[1].name.as_deref()), ("debian:bookworm-slim", None));
        let copy = stages[1].all("COPY").next().unwrap();
        assert_eq!(option(&copy.args, "from"), Some("build"));
        assert!(parse("RUN true\nFROM x").unwrap_err().contains("before the first FROM"));
        assert!(parse("FROM a b").unwrap_err().contains("FROM a b"));
    }
}
