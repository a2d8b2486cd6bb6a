//! `--plan FILE.toml`: the `[[model]]` tables of a run of several models, checked key by
//! key so that every error names the file, the entry, the key and what was expected. The
//! file is read here (the one file validation reads); `parse` is the pure part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Value;

use super::stress::{ModelPlan, Plan, PlanLoad};
use super::values::normalize_url;
use super::{DataSource, Protocol};
use crate::error::Error;

const KEYS: [&str; 12] = [
    "name",
    "version",
    "protocol",
    "url",
    "input_data",
    "batch_size",
    "streaming",
    "sequence_length",
    "sequence_id_range",
    "concurrency",
    "request_rate",
    "weight",
];

/// A usage error on one line, whatever the file's strings hold.
fn usage(msg: String) -> Error {
    Error::Usage(msg.replace('\n', "\\n").replace('\r', "\\r"))
}

/// Reads and checks the plan file at `path`.
pub fn read(path: &Path, interference: bool) -> Result<Plan, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("--plan {}: cannot be read: {e}", path.display())))?;
    parse(path, &text, interference)
}

/// Checks the text of the plan file at `path`; relative input data paths are taken from
/// the file's folder.
pub fn parse(path: &Path, text: &str, interference: bool) -> Result<Plan, Error> {
    let file = path.display();
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let before = e.span().map_or(&[][..], |s| &text.as_bytes()[..s.start.min(text.len())]);
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        usage(format!("{file}: line {line}: {}", e.message().trim().replace('\n', " ")))
    })?;
    if let Some(key) = table.keys().find(|k| *k != "model") {
        return Err(usage(format!("{file}: unknown key '{key}' (expected [[model]] tables only)")));
    }
    let entries = match table.get("model") {
        None => &Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(usage(format!("{file}: 'model' must be [[model]] tables"))),
    };
    if entries.is_empty() {
        return Err(usage(format!("{file}: no [[model]] table (expected one per model, each with a name)")));
    }
    let folder = path.parent().unwrap_or(Path::new(""));
    let mut models: Vec<ModelPlan> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let model = Entry::new(&file.to_string(), i + 1, entry)?.model(folder)?;
        if let Some(first) = seen.insert(model.name.clone(), i + 1) {
            return Err(usage(format!(
                "{file}: model {} ('{}'): name: already model {first}'s (expected each model once)",
                i + 1,
                model.name
            )));
        }
        models.push(model);
    }
    if interference && models.len() < 2 {
        return Err(usage(format!(
            "--interference compares each model alone with all together: {file} has one model (expected at least two)"
        )));
    }
    Ok(Plan { path: path.to_path_buf(), models, interference })
}

/// One `[[model]]` table, with what its errors say it is.
struct Entry<'a> {
    table: &'a toml::Table,
    /// "plan.toml: model 2 ('resnet')".
    at: String,
}

impl<'a> Entry<'a> {
    fn new(file: &str, n: usize, value: &'a Value) -> Result<Entry<'a>, Error> {
        let Value::Table(table) = value else {
            return Err(usage(format!("{file}: model {n}: expected a [[model]] table")));
        };
        let at = match table.get("name") {
            Some(Value::String(name)) => format!("{file}: model {n} ('{name}')"),
            _ => format!("{file}: model {n}"),
        };
        let entry = Entry { table, at };
        if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(entry.err(key, &format!("unknown key (expected one of {})", KEYS.join(", "))));
        }
        Ok(entry)
    }

    fn err(&self, key: &str, msg: &str) -> Error {
        usage(format!("{}: {key}: {msg}", self.at))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
            Some(_) => Err(self.err(key, "expected a non-empty string")),
        }
    }

    /// A whole number from 1.
    fn count(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 1 => Ok(Some(*n as u64)),
            Some(_) => Err(self.err(key, "expected a whole number >= 1")),
        }
    }

    /// A number above 0, whole or not.
    fn positive(&self, key: &str) -> Result<Option<f64>, Error> {
        let v = match self.table.get(key) {
            None => return Ok(None),
            Some(Value::Integer(n)) => *n as f64,
            Some(Value::Float(f)) => *f,
            Some(_) => f64::NAN,
        };
        match v {
            v if v.is_finite() && v > 0.0 => Ok(Some(v)),
            _ => Err(self.err(key, "expected a number > 0")),
        }
    }

    fn model(&self, folder: &Path) -> Result<ModelPlan, Error> {
        let name = self.string("name")?.ok_or_else(|| self.err("name", "required (the model's name on the server)"))?;
        let version = match self.table.get("version") {
            None => None,
            Some(Value::Integer(v)) if *v >= 1 => Some(v.to_string()),
            Some(Value::String(v)) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Some(_) => return Err(self.err("version", "expected a version number (1, or \"1\")")),
        };
        let protocol = match self.string("protocol")?.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("http") => Some(Protocol::Http),
            Some("grpc") => Some(Protocol::Grpc),
            Some(_) => return Err(self.err("protocol", "expected \"http\" or \"grpc\"")),
        };
        let (url, https) = match self.string("url")? {
            None => (None, None),
            Some(u) => {
                let scheme = |s: &str| u.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s));
                let https = scheme("https://").then_some(true).or(scheme("http://").then_some(false));
                let bare = if https == Some(true) { &u[8..] } else { u };
                let url = normalize_url(Some(bare), protocol.unwrap_or(Protocol::Http)).map_err(|_| {
                    self.err("url", &format!("'{u}': expected HOST:PORT (http:// or https:// optional)"))
                })?;
                (Some(url), https)
            }
        };
        let streaming = match self.table.get("streaming") {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => return Err(self.err("streaming", "expected true or false")),
        };
        Ok(ModelPlan {
            name: name.to_string(),
            version,
            protocol,
            url,
            https,
            input_data: self.input_data(folder)?,
            batch_size: self.count("batch_size")?.map(|b| b as usize),
            load: self.load()?,
            streaming,
            sequence_length: self.count("sequence_length")?,
            sequence_ids: self.sequence_ids()?,
        })
    }

    /// "random", "zero", a path, or a list of them; paths from the plan file's folder.
    fn input_data(&self, folder: &Path) -> Result<Option<Vec<DataSource>>, Error> {
        let one = |s: &str| match s.trim() {
            "" => Err(self.err("input_data", "expected \"random\", \"zero\" or a path, not an empty string")),
            "random" => Ok(DataSource::Random),
            "zero" => Ok(DataSource::Zero),
            p => Ok(DataSource::Path(folder.join(PathBuf::from(p)))),
        };
        match self.table.get("input_data") {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![one(s)?])),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => one(s),
                    _ => Err(self.err("input_data", "expected strings: \"random\", \"zero\" or paths")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.err("input_data", "expected \"random\", \"zero\", a path, or a list of them")),
        }
    }

    /// Exactly one of concurrency, request_rate and weight.
    fn load(&self) -> Result<PlanLoad, Error> {
        let given = ["concurrency", "request_rate", "weight"].map(|k| self.table.contains_key(k));
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(usage(format!(
                "{}: expected exactly one of concurrency, request_rate or weight (its load)",
                self.at
            )));
        }
        if let Some(c) = self.count("concurrency")? {
            return Ok(PlanLoad::Concurrency(c));
        }
        if let Some(r) = self.positive("request_rate")? {
            return Ok(PlanLoad::RequestRate(r));
        }
        let weight = self.positive("weight")?;
        Ok(PlanLoad::Weight(weight.unwrap_or(1.0)))
    }

    /// "start:end": the first correlation id (>= 1) and how many there are (end exclusive).
    fn sequence_ids(&self) -> Result<Option<(u64, u64)>, Error> {
        let Some(text) = self.string("sequence_id_range")? else { return Ok(None) };
        let bad = || self.err("sequence_id_range", &format!("'{text}': expected \"START:END\", 1 <= START < END"));
        let (start, end) = text.split_once(':').ok_or_else(bad)?;
        let (start, end) = (start.trim().parse::<u64>(), end.trim().parse::<u64>());
        match (start, end) {
            (Ok(s), Ok(e)) if s >= 1 && s < e => Ok(Some((s, e - s))),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text is a plan or a one-line error, never a panic.
        #[test]
        fn plans_never_panic(text in "(\\[\\[model\\]\\]\n|(name|version|protocol|url|input_data|batch_size|streaming|sequence_length|sequence_id_range|concurrency|request_rate|weight|x) = |\"[a-z0-9:./\\\\]{0,8}\"|-?[0-9.e]{1,6}|true|\n|[\\[\\]{},=\\x{e9}]){0,24}") {
            if let Err(e) = parse(Path::new("p.toml"), &text, false) {
                prop_assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }

    fn plan(text: &str) -> Result<Plan, String> {
        parse(Path::new("/p/plan.toml"), text, false).map_err(|e| e.to_string())
    }

    #[test]
    fn every_key() {
        let p = plan(
            r#"
            [[model]]
            name = "resnet"
            version = 2
            protocol = "gRPC"
            url = "http://10.0.0.1:8001/"
            input_data = "req.json"
            batch_size = 4
            streaming = true
            sequence_length = 9
            sequence_id_range = "100:108"
            request_rate = 200

            [[model]]
            name = "bert"
            input_data = ["random", "/abs/d.json"]
            weight = 0.5

            [[model]]
            name = "tiny"
            concurrency = 8
            url = "HTTPS://secure:443"
            "#,
        )
        .unwrap();
        let m = &p.models[0];
        assert_eq!((m.name.as_str(), m.version.as_deref(), m.protocol), ("resnet", Some("2"), Some(Protocol::Grpc)));
        assert_eq!((m.url.as_deref(), m.https), (Some("10.0.0.1:8001"), Some(false)));
        assert_eq!(m.input_data, Some(vec![DataSource::Path("/p/req.json".into())]));
        assert_eq!((m.batch_size, m.streaming, m.sequence_length), (Some(4), Some(true), Some(9)));
        assert_eq!((m.sequence_ids, m.load), (Some((100, 8)), PlanLoad::RequestRate(200.0)));
        let b = &p.models[1];
        assert_eq!(b.input_data, Some(vec![DataSource::Random, DataSource::Path("/abs/d.json".into())]));
        assert_eq!((b.load, b.protocol, b.url.as_ref(), b.https), (PlanLoad::Weight(0.5), None, None, None));
        assert_eq!(p.models[2].load, PlanLoad::Concurrency(8));
        assert_eq!((p.models[2].url.as_deref(), p.models[2].https), (Some("secure:443"), Some(true)));
        assert_eq!((p.path.as_path(), p.interference), (Path::new("/p/plan.toml"), false));
    }

    #[test]
    fn errors_name_the_file_entry_and_key() {
        let one = |body: &str| plan(&format!("[[model]]\nname = \"a\"\nconcurrency = 1\n\n[[model]]\n{body}"));
        let cases = [
            ("name = \"b\"\nconcurrency = 0", "model 2 ('b'): concurrency: expected a whole number >= 1"),
            ("name = \"b\"\nrequest_rate = -1.0", "model 2 ('b'): request_rate: expected a number > 0"),
            ("name = \"b\"\nweight = \"x\"", "model 2 ('b'): weight: expected a number > 0"),
            ("name = \"b\"", "model 2 ('b'): expected exactly one of concurrency, request_rate or weight"),
            ("name = \"b\"\nweight = 1\nconcurrency = 2", "model 2 ('b'): expected exactly one of"),
            ("concurrency = 2", "model 2: name: required"),
            ("name = \"b\"\nconcurency = 2", "model 2 ('b'): concurency: unknown key (expected one of name,"),
            ("name = \"b\"\nweight = 1\nprotocol = \"udp\"", "model 2 ('b'): protocol: expected \"http\" or \"grpc\""),
            ("name = \"b\"\nweight = 1\nurl = \"h:1/x\"", "model 2 ('b'): url: 'h:1/x': expected HOST:PORT"),
            ("name = \"b\"\nweight = 1\nstreaming = 1", "model 2 ('b'): streaming: expected true or false"),
            ("name = \"b\"\nweight = 1\nbatch_size = 1.5", "model 2 ('b'): batch_size: expected a whole number"),
            ("name = \"b\"\nweight = 1\nsequence_id_range = \"9:3\"", "sequence_id_range: '9:3': expected"),
            ("name = \"b\"\nweight = 1\ninput_data = [1]", "input_data: expected strings"),
            ("name = \"b\"\nweight = 1\nversion = 0", "model 2 ('b'): version: expected a version number"),
            ("name = \"a\"\nweight = 1", "model 2 ('a'): name: already model 1's"),
        ];
        for (body, want) in cases {
            let e = one(body).unwrap_err();
            assert!(e.starts_with("/p/plan.toml: ") && e.contains(want) && !e.contains('\n'), "{body}: {e}");
        }
        assert!(plan("").unwrap_err().contains("/p/plan.toml: no [[model]] table"));
        assert!(plan("models = 1").unwrap_err().contains("unknown key 'models'"));
        assert!(plan("model = 1").unwrap_err().contains("'model' must be [[model]] tables"));
        let e = plan("[[model]]\nname = \"a\"\nconcurrency = 1\nname = \"b\"\n").unwrap_err();
        assert!(e.starts_with("/p/plan.toml: line 4: ") && !e.contains('\n'), "{e}");
        let e = parse(Path::new("p.toml"), "[[model]]\nname = \"a\"\nweight = 1\n", true).unwrap_err().to_string();
        assert!(e.contains("--interference") && e.contains("p.toml has one model"), "{e}");
        let e = read(Path::new("/no/such/plan.toml"), false).unwrap_err().to_string();
        assert!(e.starts_with("--plan /no/such/plan.toml: cannot be read"), "{e}");
    }
}
