//! A session run (`--session-concurrency N`): every conversation of the input data played
//! once, N at a time (`load::sessions`), measured as one level over the whole run: printed
//! as a level of concurrency N and written to every file asked for, the profile export with
//! every turn. perf_analyzer reports nothing but the export in this mode; rperf adds the rest.

use std::sync::atomic::AtomicBool;

use super::sweep::conclude;
use crate::client::Transport;
use crate::config::{parse_err, Config};
use crate::error::Error;
use crate::input::payloads::Payload;
use crate::load::sessions;
use crate::measure::clock::{Clock, SystemClock};
use crate::measure::{Level, LoadValue, Outcome, RecordOptions, Recorder};
use crate::report::html::Baseline;
use crate::report::schema::{RangeSetting, Settings};
use crate::report::{build, text};

/// What a session run is given besides the transport.
pub struct SessionPlan<'a> {
    pub config: &'a Config,
    pub settings: Settings,
    pub baseline: Option<Baseline>,
    pub interrupted: &'a AtomicBool,
}

impl SessionPlan<'_> {
    /// Plays every session of `streams` (one per session, from `payloads`) once, `n` at a time.
    pub async fn run<T: Transport<Input = Payload>>(
        mut self,
        transport: T,
        streams: &[Vec<Payload>],
        n: usize,
    ) -> Result<(), Error> {
        check(streams, n)?;
        let sessions = streams
            .iter()
            .map(|s| s.iter().map(|p| transport.prepare(p)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        let config = self.config;
        let options = RecordOptions {
            from_send: false,
            export: config.output.profile_export.is_some(),
            goodput: config.generative.as_ref().map(|g| g.goodput).unwrap_or_default(),
        };
        let recorder = Recorder::new(options);
        let turns: usize = streams.iter().map(Vec::len).sum();
        println!("Session concurrency: {n} ({} sessions of {turns} turns in all, each played once)", streams.len());
        let cpu = SystemClock.cpu();
        let threads = config.load.load_threads.min(n);
        let run = sessions::run(transport, sessions, n, &recorder, threads, self.interrupted).await?;
        let cpu = SystemClock.cpu().saturating_sub(cpu);
        let span = (run.started, run.ended.duration_since(run.started));
        let mut level = Level::whole(LoadValue::Concurrency(n as u64), recorder.end_window(), span, (cpu, threads));
        if run.interrupted {
            level.outcome = Outcome::Interrupted;
        }
        let value = n as f64;
        self.settings.range = Some(RangeSetting { start: value, end: value, step: 1.0 });
        let level = build::level(&self.settings, level);
        let verbose = config.output.verbose > 0;
        print!("{}", text::level(&self.settings, &level, verbose, &mut text::Style::default()));
        if run.interrupted {
            eprintln!("Received exit signal: {} of {turns} turns were sent.", run.sent);
        }
        let report = build::run(self.settings, vec![level], &Ok(()));
        conclude(config, report, Ok(()), self.baseline.as_ref())
    }
}

/// Every stream must be a session, and there must be at least `n` of them (perf_analyzer's
/// words for the latter).
fn check(streams: &[Vec<Payload>], n: usize) -> Result<(), Error> {
    let flag = "--session-concurrency";
    if let Some(s) = streams.iter().find(|s| s.first().is_some_and(|p| p.session.is_none())) {
        return Err(parse_err(
            "--input-data",
            &format!(
                "{flag} plays sessions: every entry of \"data\" needs a \"session_id\", and {} have none.",
                s.len()
            ),
        ));
    }
    if streams.len() < n {
        return Err(Error::Usage(format!(
            "The input data file contains {} unique session IDs, which is fewer than the required session \
             concurrency level of {n}. Please add more unique session IDs to the file or lower the session \
             concurrency level.",
            streams.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn payload(session: Option<&str>) -> Payload {
        Payload {
            body: Default::default(),
            session: session.map(Into::into),
            delay: Duration::ZERO,
            prompt_tokens: None,
        }
    }

    #[test]
    fn sessions_only_and_enough_of_them() {
        let two = [vec![payload(Some("a"))], vec![payload(Some("b")), payload(Some("b"))]];
        assert!(check(&two, 2).is_ok());
        let few = check(&two, 3).unwrap_err().to_string();
        assert!(few.contains("contains 2 unique session IDs") && few.contains("level of 3"), "{few}");
        let mixed = [vec![payload(Some("a"))], vec![payload(None), payload(None)]];
        let err = check(&mixed, 1).unwrap_err().to_string();
        assert!(err.contains("--input-data") && err.contains("needs a \"session_id\", and 2 have none"), "{err}");
    }
}
