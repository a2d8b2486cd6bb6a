//! Stand-ins for the configuration's methods, until the flags' branch lands.

use std::time::Duration;

use crate::config::{Config, LoadMode, ModelPlan, PlanLoad, Range, RateRange, Stages};

pub trait ForModel {
    fn for_model(&self, m: &ModelPlan) -> Config;
}

impl ForModel for Config {
    fn for_model(&self, m: &ModelPlan) -> Config {
        let mut c = self.clone();
        c.target.model = m.name.clone();
        c.target.version = m.version.clone();
        c.target.bls_composing.clear();
        c.plan = None;
        match m.load {
            PlanLoad::Concurrency(n) => c.load.mode = LoadMode::Concurrency(Range { start: n, end: n, step: 1 }),
            PlanLoad::RequestRate(r) => c.load.mode = LoadMode::RequestRate(RateRange { start: r, end: r, step: 1.0 }),
            PlanLoad::Weight(_) => {}
        }
        c
    }
}

pub trait TargetAt {
    fn target_at(&self, elapsed: Duration) -> f64;
}

impl TargetAt for Stages {
    fn target_at(&self, elapsed: Duration) -> f64 {
        let (mut from, mut at) = (0.0, Duration::ZERO);
        for s in &self.stages {
            if elapsed < at + s.duration {
                let f = (elapsed - at).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
                return from + (s.target - from) * f;
            }
            (from, at) = (s.target, at + s.duration);
        }
        from
    }
}
