//! The built-in stress scenarios (`--scenario NAME`, listed by `rperf scenarios`): named
//! stage plans in the spirit of Locust's and k6's usual ones, scaled by `--users N`. Pure
//! data: `config` turns a scenario's stages text into its `Stages`.

use std::time::Duration;

use clap::Parser;

/// One built-in scenario.
pub struct Scenario {
    pub name: &'static str,
    /// What it is for, in one line.
    pub what: &'static str,
    /// (seconds, target) for `users`; the first stage ramps from 0, as every `--stages`.
    plan: fn(u64) -> Vec<(u64, u64)>,
    /// A pause of each user between its requests, when the scenario has one.
    pub think_time: Option<(Duration, Duration)>,
}

/// `--users` when not given.
pub const DEFAULT_USERS: u64 = 10;

const SCENARIOS: [Scenario; 6] = [
    Scenario { name: "smoke", what: "1 user for 30 s: does the model answer at all", plan: smoke, think_time: None },
    Scenario {
        name: "baseline",
        what: "ramp to the users over 30 s, hold 2 min, ramp down in 10 s: the figures to compare others with",
        plan: baseline,
        think_time: None,
    },
    Scenario {
        name: "load",
        what: "ramp to the users over 1 min, hold 5 min, ramp down over 1 min: the expected traffic",
        plan: load,
        think_time: None,
    },
    Scenario {
        name: "stress",
        what: "steps of the users, twice and four times them (ramp 1 min, hold 2 min each), down over 1 min: \
               where it breaks",
        plan: stress,
        think_time: None,
    },
    Scenario {
        name: "spike",
        what: "a tenth of the users for 30 s, four times them within 10 s for 1 min, back for 30 s: a burst \
               and the recovery",
        plan: spike,
        think_time: None,
    },
    Scenario {
        name: "soak",
        what: "ramp to the users over 1 min, hold 4 h, ramp down over 1 min: drift and leaks",
        plan: soak,
        think_time: None,
    },
];

fn smoke(_: u64) -> Vec<(u64, u64)> {
    vec![(0, 1), (30, 1)]
}

fn baseline(u: u64) -> Vec<(u64, u64)> {
    vec![(30, u), (120, u), (10, 0)]
}

fn load(u: u64) -> Vec<(u64, u64)> {
    vec![(60, u), (300, u), (60, 0)]
}

fn stress(u: u64) -> Vec<(u64, u64)> {
    let (u2, u4) = (u.saturating_mul(2), u.saturating_mul(4));
    vec![(60, u), (120, u), (60, u2), (120, u2), (60, u4), (120, u4), (60, 0)]
}

fn spike(u: u64) -> Vec<(u64, u64)> {
    let (low, high) = ((u / 10).max(1), u.saturating_mul(4));
    vec![(0, low), (30, low), (10, high), (60, high), (10, low), (30, low), (10, 0)]
}

fn soak(u: u64) -> Vec<(u64, u64)> {
    vec![(60, u), (4 * 3600, u), (60, 0)]
}

impl Scenario {
    /// The stages for `users`, in `--stages` form (`30s:10,2m:10,10s:0`).
    pub fn stages(&self, users: u64) -> String {
        (self.plan)(users)
            .iter()
            .map(|&(secs, target)| format!("{}:{target}", span(secs)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How long it runs.
    pub fn total(&self, users: u64) -> Duration {
        Duration::from_secs((self.plan)(users).iter().map(|(secs, _)| secs).sum())
    }
}

/// Seconds in the largest unit that divides them: `2m`, `4h`, `30s`.
fn span(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `4h2m`, `2m40s`, `30s`.
fn length(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [(s / 3600, "h"), (s / 60 % 60, "m"), (s % 60, "s")];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect()
}

/// Every built-in scenario.
pub fn catalog() -> &'static [Scenario] {
    &SCENARIOS
}

/// The scenario called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name.eq_ignore_ascii_case(name.trim()))
}

/// The known names, for an error about an unknown one.
pub fn names() -> String {
    SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// `rperf scenarios`: the built-in scenarios.
#[derive(Parser, Debug)]
#[command(name = "rperf scenarios", about = "List the built-in scenarios of --scenario, with their stages")]
pub struct ScenariosArgs {
    /// Show the stages scaled to this many users (concurrency, or requests/s in rate mode).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_USERS, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
}

/// The listing `rperf scenarios` prints: a block per scenario.
pub fn listing(users: u64) -> String {
    let mut out = format!("Built-in scenarios (rperf --scenario NAME --users {users} ...):\n");
    for s in catalog() {
        out += &format!("\n{:<9} {}\n", s.name, s.what);
        out += &format!("{:<9} --stages {} ({} in all)\n", "", s.stages(users), length(s.total(users)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_scale_with_the_users() {
        let stages = |name: &str, u: u64| find(name).unwrap().stages(u);
        assert_eq!(stages("smoke", 50), "0s:1,30s:1");
        assert_eq!(stages("baseline", 10), "30s:10,2m:10,10s:0");
        assert_eq!(stages("load", 10), "1m:10,5m:10,1m:0");
        assert_eq!(stages("stress", 10), "1m:10,2m:10,1m:20,2m:20,1m:40,2m:40,1m:0");
        assert_eq!(stages("spike", 10), "0s:1,30s:1,10s:40,1m:40,10s:1,30s:1,10s:0");
        assert_eq!(stages("spike", 5), "0s:1,30s:1,10s:20,1m:20,10s:1,30s:1,10s:0", "a tenth, at least 1");
        assert_eq!(stages("SOAK", 10), "1m:10,4h:10,1m:0");
        assert_eq!(find("soak").unwrap().total(10), Duration::from_secs(4 * 3600 + 120));
        assert!(find("nope").is_none());
    }

    #[test]
    fn the_listing_names_every_scenario_with_its_stages() {
        let text = listing(10);
        for s in catalog() {
            assert!(text.contains(&format!("\n{:<9} {}", s.name, s.what)), "{text}");
            assert!(text.contains(&format!("--stages {} (", s.stages(10))), "{text}");
        }
        assert_eq!(names(), "smoke, baseline, load, stress, spike, soak");
        assert!(text.contains("--stages 1m:10,4h:10,1m:0 (4h2m in all)"), "{text}");
        assert!(text.contains("--stages 30s:10,2m:10,10s:0 (2m40s in all)"), "{text}");
        assert!(ScenariosArgs::try_parse_from(["scenarios", "--users", "0"]).is_err());
    }
}
