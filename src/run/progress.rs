//! What the user sees while a level is measured: `-v` pass lines as windows close and,
//! when stderr is a terminal, a live progress line there (plain text, so nothing to honour
//! NO_COLOR for; nothing when piped).

use crate::config::Config;
use crate::measure::{LoadValue, Observer, WindowRecord};
use crate::report::text;

pub struct Progress<'a> {
    pub config: &'a Config,
    pub value: LoadValue,
    pub live: bool,
}

impl<'a> Progress<'a> {
    pub fn new(config: &'a Config, value: LoadValue) -> Progress<'a> {
        Progress { config, value, live: std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }
}

impl Observer for Progress<'_> {
    fn window(&mut self, index: usize, record: &WindowRecord) {
        if self.config.output.verbose > 0 {
            let percentile = self.config.window.percentile;
            println!("{}", text::pass_line(percentile, index, record.figures.throughput, &record.stats.latency()));
        }
        if self.live {
            let level = match self.value {
                LoadValue::Concurrency(c) => format!("concurrency {c}"),
                LoadValue::RequestRate(r) => format!("{} req/s", crate::report::fmt_g(r)),
                LoadValue::Intervals(_) => "intervals".into(),
            };
            let what = self.config.window.percentile.map_or("avg".to_string(), |p| format!("p{p}"));
            eprint!(
                "\r\x1b[2K{level}: window {} of {}: {:.1} infer/sec, {what} {:.2} ms",
                index + 1,
                self.config.window.max_trials,
                record.figures.throughput,
                record.figures.latency_us / 1000.0
            );
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if self.live {
            eprint!("\r\x1b[2K");
        }
    }
}
