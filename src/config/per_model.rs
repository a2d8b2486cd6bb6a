//! One model of a `--plan` as a configuration of its own: the command line's, with the
//! entry's overrides (`Config::for_model`), and the checks of a plan against the command
//! line that the file alone cannot make.

use super::load::{CLOSED_MAX_THREADS, OPEN_MAX_THREADS};
use super::stress::{ModelPlan, Plan, PlanLoad};
use super::values::normalize_url;
use super::{Compression, Config, LoadMode, Protocol, Range, RateRange};
use crate::error::Error;

impl Config {
    /// The configuration of one model of the plan: the command line's, with what the entry
    /// sets. A `weight` keeps the command line's load (the driver gives each level's share);
    /// the copy has no plan.
    pub fn for_model(&self, m: &ModelPlan) -> Config {
        let mut c = self.clone();
        c.plan = None;
        c.target.model = m.name.clone();
        c.target.version = m.version.clone();
        c.target.bls_composing.clear();
        let protocol = m.protocol.unwrap_or(self.server.protocol);
        c.server.protocol = protocol;
        c.server.url = match &m.url {
            Some(url) => url.clone(),
            // The protocol's default port, as without -u (normalize_url cannot fail on None).
            None if protocol != self.server.protocol && !self.server.url_given => {
                normalize_url(None, protocol).unwrap_or_else(|_| self.server.url.clone())
            }
            None => self.server.url.clone(),
        };
        if protocol == Protocol::Http {
            c.server.compression = Compression::None;
        }
        match m.https {
            Some(true) => c.server.tls.http = self.server.tls.https_settings.clone(),
            Some(false) => c.server.tls.http = None,
            None => {}
        }
        c.server.streaming = m.streaming.unwrap_or(self.server.streaming && protocol == Protocol::Grpc);
        if let Some(data) = &m.input_data {
            c.input.data = data.clone();
        }
        if let Some(batch) = m.batch_size {
            c.load.batch_size = batch;
        }
        if let Some(length) = m.sequence_length {
            c.load.sequences.length = Some(length);
            c.load.sequence_flags.push("sequence_length (--plan)");
        }
        if let Some((first, count)) = m.sequence_ids {
            (c.load.sequences.first_id, c.load.sequences.id_range) = (first, count);
            c.load.sequence_flags.push("sequence_id_range (--plan)");
        }
        let threads = |default| if self.load.max_threads_given { self.load.max_threads } else { default };
        match m.load {
            PlanLoad::Concurrency(n) => {
                c.load.mode = LoadMode::Concurrency(Range { start: n, end: n, step: 1 });
                c.load.max_threads = threads(CLOSED_MAX_THREADS);
            }
            PlanLoad::RequestRate(r) => {
                c.load.mode = LoadMode::RequestRate(RateRange { start: r, end: r, step: 1.0 });
                c.load.max_threads = threads(OPEN_MAX_THREADS);
                // Pauses between a user's requests are a closed loop's.
                c.load.think_time = None;
            }
            PlanLoad::Weight(_) => {}
        }
        c
    }
}

/// What a plan needs from the command line: a load to share for weights, gRPC for
/// streaming, Triton's tensors. `load_given`: --concurrency-range or --request-rate-range.
pub fn check(plan: &Plan, config: &Config, load_given: bool) -> Result<(), Error> {
    if config.generative.is_some() {
        return Err(Error::Unsupported("--plan with --service-kind openai is not supported yet by rperf".into()));
    }
    for (i, m) in plan.models.iter().enumerate() {
        let at = format!("{}: model {} ('{}')", plan.path.display(), i + 1, m.name);
        if matches!(m.load, PlanLoad::Weight(_)) && !load_given {
            return Err(Error::Usage(format!(
                "{at}: weight: a share of the command line's load, which has none: give --concurrency-range or \
                 --request-rate-range (or set concurrency or request_rate instead)"
            )));
        }
        let protocol = m.protocol.unwrap_or(config.server.protocol);
        if m.streaming == Some(true) && protocol != Protocol::Grpc {
            return Err(Error::Usage(format!("{at}: streaming: only with gRPC (the model's protocol is http)")));
        }
        if m.https == Some(true) && protocol == Protocol::Grpc {
            return Err(Error::Usage(format!(
                "{at}: url: https:// is for the http protocol; gRPC over TLS is --ssl-grpc-use-ssl with HOST:PORT"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::super::DataSource;
    use super::*;
    use std::path::PathBuf;

    fn entry(load: PlanLoad) -> ModelPlan {
        ModelPlan {
            name: "b".into(),
            version: None,
            protocol: None,
            url: None,
            https: None,
            input_data: None,
            batch_size: None,
            load,
            streaming: None,
            sequence_length: None,
            sequence_ids: None,
        }
    }

    #[test]
    fn an_entry_overrides_the_command_line() {
        let cli = config(&["-m", "a", "-x", "3", "--bls-composing-models", "c", "--think-time", "1s"]).unwrap();
        let m = ModelPlan {
            version: Some("2".into()),
            protocol: Some(Protocol::Grpc),
            input_data: Some(vec![DataSource::Path("/p/d.json".into())]),
            batch_size: Some(4),
            streaming: Some(true),
            sequence_length: Some(9),
            sequence_ids: Some((100, 8)),
            ..entry(PlanLoad::Concurrency(8))
        };
        let c = cli.for_model(&m);
        assert_eq!((c.target.model.as_str(), c.target.version.as_deref()), ("b", Some("2")));
        assert!(c.target.bls_composing.is_empty() && c.plan.is_none());
        assert_eq!(
            (c.server.protocol, c.server.url.as_str(), c.server.streaming),
            (Protocol::Grpc, "localhost:8001", true)
        );
        assert_eq!((c.input.data.clone(), c.load.batch_size), (vec![DataSource::Path("/p/d.json".into())], 4));
        let s = &c.load.sequences;
        assert_eq!((s.length, s.first_id, s.id_range), (Some(9), 100, 8));
        assert_eq!(c.load.mode, LoadMode::Concurrency(Range { start: 8, end: 8, step: 1 }));
        assert_eq!((c.load.max_threads, c.load.think_time), (16, cli.load.think_time));
        assert_eq!((c.window, c.output.clone()), (cli.window, cli.output.clone()), "the rest is the command line's");

        let r = cli.for_model(&entry(PlanLoad::RequestRate(200.0)));
        assert_eq!(r.load.mode, LoadMode::RequestRate(RateRange { start: 200.0, end: 200.0, step: 1.0 }));
        assert_eq!((r.load.max_threads, r.load.think_time, r.target.version), (4, None, None));
        assert_eq!((r.server.protocol, r.server.url.as_str()), (Protocol::Http, "localhost:8000"));
        assert_eq!(r.input.data, cli.input.data);

        let w = cli.for_model(&entry(PlanLoad::Weight(2.0)));
        assert_eq!((w.load.mode, w.load.max_threads), (cli.load.mode.clone(), 16));
    }

    #[test]
    fn the_url_follows_the_protocol_unless_given() {
        let grpc = ModelPlan { protocol: Some(Protocol::Grpc), ..entry(PlanLoad::Weight(1.0)) };
        let given = config(&["-m", "a", "-u", "h:9"]).unwrap();
        assert_eq!(given.for_model(&grpc).server.url, "h:9", "-u is kept");
        let own = ModelPlan { url: Some("g:7".into()), ..grpc.clone() };
        assert_eq!(given.for_model(&own).server.url, "g:7");
        let cli = config(&["-m", "a", "-i", "grpc", "--streaming", "--grpc-compression-algorithm", "gzip"]).unwrap();
        let http = ModelPlan { protocol: Some(Protocol::Http), ..entry(PlanLoad::Weight(1.0)) };
        let c = cli.for_model(&http);
        assert_eq!((c.server.url.as_str(), c.server.streaming), ("localhost:8000", false));
        assert_eq!(c.server.compression, Compression::None);
        let threads = config(&["-m", "a", "--max-threads", "7"]).unwrap();
        assert_eq!(threads.for_model(&entry(PlanLoad::RequestRate(5.0))).load.max_threads, 7);
    }

    #[test]
    fn the_url_scheme_decides_tls() {
        let cli = config(&["-m", "a", "--ssl-https-verify-peer", "0"]).unwrap();
        assert!(cli.server.tls.http.is_none(), "-u is plain");
        let https = ModelPlan { url: Some("h:1".into()), https: Some(true), ..entry(PlanLoad::Concurrency(1)) };
        let tls = cli.for_model(&https).server.tls.http.expect("https:// connects with TLS");
        assert!(!tls.verify_peer, "with the --ssl-https-* settings");
        let secure = config(&["-m", "a", "-u", "https://h:2"]).unwrap();
        let plain = ModelPlan { https: Some(false), ..https.clone() };
        assert!(secure.for_model(&plain).server.tls.http.is_none(), "http:// is plain");
        let bare = ModelPlan { https: None, ..https.clone() };
        assert!(secure.for_model(&bare).server.tls.http.is_some(), "HOST:PORT connects as -u");
    }

    #[test]
    fn plans_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str, text: &str| -> String {
            let p: PathBuf = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let two = path(
            "two.toml",
            "[[model]]\nname = \"x\"\nconcurrency = 2\ninput_data = \"d.json\"\n[[model]]\nname = \"y\"\nweight = 1\n",
        );
        let c = config(&["--plan", &two, "--concurrency-range", "4", "--interference"]).unwrap();
        let plan = c.plan.as_ref().unwrap();
        assert_eq!((c.target.model.as_str(), plan.models.len(), plan.interference), ("x", 2, true));
        assert_eq!(plan.models[0].input_data, Some(vec![DataSource::Path(dir.path().join("d.json"))]));
        let m = usage_msg(&["--plan", &two]);
        assert!(m.contains("two.toml: model 2 ('y'): weight: a share of the command line's load"), "{m}");
        assert!(usage_msg(&["--plan", &two, "-m", "x"]).starts_with("-m names the one model"));
        assert!(usage_msg(&["-m", "a", "--interference"]).starts_with("--interference needs --plan"));
        let one = path("one.toml", "[[model]]\nname = \"x\"\nstreaming = true\nconcurrency = 1\n");
        assert!(usage_msg(&["--plan", &one, "--interference"]).contains("one.toml has one model"));
        let m = usage_msg(&["--plan", &one]);
        assert!(m.contains("one.toml: model 1 ('x'): streaming: only with gRPC"), "{m}");
        assert!(config(&["--plan", &one, "-i", "grpc"]).is_ok());
        let m = usage_msg(&["--plan", &one, "--service-kind", "openai", "--endpoint", "v1/embeddings"]);
        assert!(m.contains("--plan with --service-kind openai is not supported yet"), "{m}");
    }
}
