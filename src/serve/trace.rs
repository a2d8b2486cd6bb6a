//! Triton's trace extension in `rperf serve`: the server's trace settings and each model's,
//! read and updated over HTTP (`/v2[/models/M]/trace/setting`) and gRPC (`TraceSetting`)
//! with Triton's rules: a model's first update takes what it does not set from the server's
//! settings, a cleared value (null, or no values) falls back to them again, the trace file
//! is set only on the command line (`--trace-file`), and a level other than OFF needs one.
//! Unlike Triton, an unknown setting name or level is refused rather than ignored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::trace_log::{Clock, Fields, Level, Setting, Specified, Trace, TraceFile};
use crate::sync::lock;

/// Triton's defaults for the server's settings.
const DEFAULTS: Fields =
    Fields { level: Level { timestamps: false, tensors: false }, rate: 1000, count: -1, log_frequency: 0 };

/// An update the server refuses: `unsupported` for what cannot be changed over the network
/// (gRPC UNIMPLEMENTED, as Triton's UNSUPPORTED), else an invalid argument. HTTP 400 both.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub unsupported: bool,
    pub message: String,
}

fn invalid(message: String) -> Refusal {
    Refusal { unsupported: false, message }
}

/// A setting's values as given: None clears it (the model falls back to the server's).
pub type Given = Vec<(String, Option<Vec<String>>)>;

/// The settings of one update: outer None leaves a field alone, inner None clears it.
#[derive(Default)]
struct Changes {
    level: Option<Option<Level>>,
    rate: Option<Option<u32>>,
    count: Option<Option<i32>>,
    log_frequency: Option<Option<u32>>,
}

pub struct Traces {
    /// Whether any setting may trace: the only thing an untraced request looks at.
    on: AtomicBool,
    file: Arc<TraceFile>,
    clock: Arc<Clock>,
    next_id: AtomicU64,
    state: Mutex<State>,
}

struct State {
    server: Arc<Setting>,
    models: HashMap<String, Arc<Setting>>,
}

impl Traces {
    /// Triton's defaults, with `file` (`--trace-file`; "" for none).
    pub fn new(file: String) -> Traces {
        let (file, clock) = (Arc::new(TraceFile::new(file)), Arc::new(Clock::new()));
        let server = Arc::new(Setting::new(DEFAULTS, Specified::default(), file.clone(), clock.clone()));
        let state = Mutex::new(State { server, models: HashMap::new() });
        Traces { on: AtomicBool::new(false), file, clock, next_id: AtomicU64::new(1), state }
    }

    /// A trace for a request to `model` when its setting samples this one.
    pub fn sample(&self, model: &str) -> Option<Arc<Trace>> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        let setting = {
            let s = lock(&self.state);
            s.models.get(model).unwrap_or(&s.server).clone()
        };
        setting.sample(model, &self.next_id)
    }

    /// The settings of `model` (None: the server's), by name, as Triton lists them.
    pub fn get(&self, model: Option<&str>) -> Vec<(&'static str, Vec<String>)> {
        let f = {
            let s = lock(&self.state);
            model.and_then(|m| s.models.get(m)).unwrap_or(&s.server).fields()
        };
        vec![
            ("trace_level", f.level.names()),
            ("trace_rate", vec![f.rate.to_string()]),
            ("trace_count", vec![f.count.to_string()]),
            ("log_frequency", vec![f.log_frequency.to_string()]),
            ("trace_file", vec![self.file.path.clone()]),
            ("trace_mode", vec!["triton".to_string()]),
        ]
    }

    /// Applies `given` to `model`'s settings (None: the server's; the models that take
    /// some of theirs from the server follow it).
    pub fn update(&self, model: Option<&str>, given: Given) -> Result<(), Refusal> {
        let changes = parse(given)?;
        let mut s = lock(&self.state);
        match model {
            None => {
                let server = Arc::new(self.derive(DEFAULTS, Some(&s.server), &changes)?);
                let mut models = HashMap::new();
                for (name, m) in &s.models {
                    models.insert(name.clone(), Arc::new(self.derive(server.fields(), Some(m), &Changes::default())?));
                }
                s.server = server;
                s.models = models;
            }
            Some(name) => {
                let next = self.derive(s.server.fields(), s.models.get(name).map(|m| &**m), &changes)?;
                if next.specified.any() {
                    s.models.insert(name.to_string(), Arc::new(next));
                } else {
                    s.models.remove(name);
                }
            }
        }
        let on = s.server.traces() || s.models.values().any(|m| m.traces());
        self.on.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Writes every trace not written yet (the server stops).
    pub fn flush(&self) {
        let s = lock(&self.state);
        s.server.write_rest();
        s.models.values().for_each(|m| m.write_rest());
    }

    /// The setting after `changes`: a field given or set before keeps its own value, any
    /// other comes from `fallback`.
    fn derive(&self, fallback: Fields, current: Option<&Setting>, c: &Changes) -> Result<Setting, Refusal> {
        let now = current.map(Setting::fields);
        let was = current.map(|s| s.specified).unwrap_or_default();
        let mut f = fallback;
        let specified = Specified {
            level: pick(&mut f.level, &c.level, was.level, now.map(|n| n.level)),
            rate: pick(&mut f.rate, &c.rate, was.rate, now.map(|n| n.rate)),
            count: pick(&mut f.count, &c.count, was.count, now.map(|n| n.count)),
            log_frequency: pick(
                &mut f.log_frequency,
                &c.log_frequency,
                was.log_frequency,
                now.map(|n| n.log_frequency),
            ),
        };
        let on = f.level != Level::default();
        let reason = if on && f.rate == 0 {
            Some("sample rate must be non-zero")
        } else if on && self.file.path.is_empty() {
            Some("trace file name is not given")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(invalid(format!("Attempting to set invalid trace setting :{reason}")));
        }
        Ok(Setting::new(f, specified, self.file.clone(), self.clock.clone()))
    }
}

/// Sets `field` from the change or the current value when it stays specified; says whether.
fn pick<T: Copy>(field: &mut T, change: &Option<Option<T>>, was: bool, now: Option<T>) -> bool {
    match (change, now) {
        (Some(None), _) => false,
        (Some(Some(v)), _) => {
            *field = *v;
            true
        }
        (None, Some(v)) if was => {
            *field = v;
            true
        }
        _ => false,
    }
}

fn parse(given: Given) -> Result<Changes, Refusal> {
    let mut c = Changes::default();
    for (name, values) in given {
        if name == "trace_file" || name == "trace_mode" {
            let what = if name == "trace_file" { "trace file location" } else { "trace mode" };
            return Err(Refusal {
                unsupported: true,
                message: format!("{what} can not be updated through network protocol"),
            });
        }
        let Some(values) = values else {
            match name.as_str() {
                "trace_level" => c.level = Some(None),
                "trace_rate" => c.rate = Some(None),
                "trace_count" => c.count = Some(None),
                "log_frequency" => c.log_frequency = Some(None),
                _ => return Err(unknown(&name)),
            }
            continue;
        };
        match name.as_str() {
            "trace_level" => c.level = Some(Some(level(&values)?)),
            "trace_rate" => c.rate = Some(Some(number(&name, &values, 0)?)),
            "trace_count" => c.count = Some(Some(number(&name, &values, -1)?)),
            "log_frequency" => c.log_frequency = Some(Some(number(&name, &values, 0)?)),
            _ => return Err(unknown(&name)),
        }
    }
    Ok(c)
}

fn unknown(name: &str) -> Refusal {
    invalid(format!("unknown trace setting '{name}': expected trace_level, trace_rate, trace_count or log_frequency"))
}

fn level(values: &[String]) -> Result<Level, Refusal> {
    let mut l = Level::default();
    for v in values {
        match v.as_str() {
            "OFF" if values.len() == 1 => {}
            "OFF" => return Err(invalid("Expect only one trace level 'OFF' is specified".into())),
            "TIMESTAMPS" => l.timestamps = true,
            "TENSORS" => l.tensors = true,
            other => {
                return Err(invalid(format!("unknown trace level '{other}': expected OFF, TIMESTAMPS or TENSORS")))
            }
        }
    }
    Ok(l)
}

/// One whole number of the setting's type, at least `min`, with Triton's wording.
fn number<T: TryFrom<i64>>(name: &str, values: &[String], min: i64) -> Result<T, Refusal> {
    let [text] = values else {
        return Err(invalid(format!("Unable to parse '{name}', expected one value, got {}", values.len())));
    };
    let n: i64 = text.trim().parse().map_err(|_| invalid(format!("Unable to parse '{name}', got: {text}")))?;
    if n < min {
        return Err(invalid(format!("Unable to parse '{name}'. Expecting value >= {min}, got:{text}")));
    }
    T::try_from(n).map_err(|_| invalid(format!("Unable to parse '{name}', value is out of range, got: {text}")))
}

/// The settings of an HTTP body: a string each, a list of strings for `trace_level`, null to clear.
pub fn from_json(body: &Value) -> Result<Given, Refusal> {
    let object = body.as_object().ok_or_else(|| invalid("the trace setting request must be a JSON object".into()))?;
    let mut given = Vec::new();
    for (name, v) in object {
        let values = match v {
            Value::Null => None,
            Value::String(s) if name != "trace_level" => Some(vec![s.clone()]),
            Value::Array(a) if name == "trace_level" => {
                let strings: Option<Vec<String>> = a.iter().map(|x| x.as_str().map(str::to_string)).collect();
                Some(strings.ok_or_else(|| invalid("'trace_level' must be an array of strings".into()))?)
            }
            _ if name == "trace_level" => return Err(invalid("'trace_level' must be an array of strings".into())),
            _ => return Err(invalid(format!("'{name}' must be a string"))),
        };
        given.push((name.clone(), values));
    }
    Ok(given)
}

/// The HTTP answer: a string each, a list for `trace_level`.
pub fn to_json(settings: &[(&'static str, Vec<String>)]) -> Value {
    let object = settings
        .iter()
        .map(|(k, v)| {
            let value = if *k == "trace_level" { Value::from(v.clone()) } else { Value::from(v.join(",")) };
            (k.to_string(), value)
        })
        .collect();
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(t: &Traces, model: Option<&str>, pairs: &[(&str, Option<&str>)]) -> Result<(), Refusal> {
        let given = pairs.iter().map(|(k, v)| (k.to_string(), v.map(|v| vec![v.to_string()]))).collect();
        t.update(model, given)
    }

    fn value(t: &Traces, model: Option<&str>, name: &str) -> String {
        t.get(model).into_iter().find(|(k, _)| *k == name).map(|(_, v)| v.join(",")).unwrap_or_default()
    }

    #[test]
    fn a_model_takes_the_server_values_it_does_not_set_and_follows_them() {
        let t = Traces::new("/tmp/unused-trace.json".into());
        set(&t, Some("m"), &[("trace_rate", Some("7"))]).unwrap();
        assert_eq!(
            (value(&t, Some("m"), "trace_rate"), value(&t, Some("m"), "trace_count")),
            ("7".into(), "-1".into())
        );
        set(&t, None, &[("trace_count", Some("5")), ("trace_rate", Some("9"))]).unwrap();
        assert_eq!((value(&t, Some("m"), "trace_rate"), value(&t, Some("m"), "trace_count")), ("7".into(), "5".into()));
        set(&t, Some("m"), &[("trace_rate", None)]).unwrap();
        assert_eq!(value(&t, Some("m"), "trace_rate"), "9");
        assert_eq!(value(&t, Some("other"), "trace_level"), "OFF");
        assert!(!t.on.load(Ordering::Relaxed));
        set(&t, Some("m"), &[("trace_level", Some("TIMESTAMPS"))]).unwrap();
        assert!(t.on.load(Ordering::Relaxed));
    }

    #[test]
    fn refusals() {
        let t = Traces::new(String::new());
        let msg = |r: Result<(), Refusal>| r.unwrap_err().message;
        assert_eq!(
            msg(set(&t, None, &[("trace_level", Some("TIMESTAMPS"))])),
            "Attempting to set invalid trace setting :trace file name is not given"
        );
        let file = set(&t, Some("m"), &[("trace_file", Some("x"))]).unwrap_err();
        assert!(file.unsupported && file.message == "trace file location can not be updated through network protocol");
        assert_eq!(msg(set(&t, None, &[("trace_rate", Some("x"))])), "Unable to parse 'trace_rate', got: x");
        assert_eq!(
            msg(set(&t, None, &[("trace_count", Some("-2"))])),
            "Unable to parse 'trace_count'. Expecting value >= -1, got:-2"
        );
        assert!(msg(set(&t, None, &[("trace_level", Some("ALL"))])).contains("unknown trace level 'ALL'"));
        assert!(msg(set(&t, None, &[("rate", Some("1"))])).contains("unknown trace setting 'rate'"));
        assert_eq!(value(&t, None, "trace_rate"), "1000", "nothing changed");
    }
}
