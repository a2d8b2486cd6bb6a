//! Where a level's average request spent its time, as horizontal stacked bars: the client's
//! side (its latency minus the server's request time: network and client overhead), then the
//! server's overhead, queue and compute input/infer/output; and a bar per composing model.

use std::fmt::Write;

use super::escape;
use crate::report::schema::LevelReport;
use crate::server_stats::ServerFigures;

/// A bar's parts in the order drawn: class, legend and colour.
const PARTS: [(&str, &str, &str); 6] = [
    ("network", "network and client", "#7f7f7f"),
    ("overhead", "server overhead", "#bcbd22"),
    ("queue", "queue", "#ff7f0e"),
    ("input", "compute input", "#17becf"),
    ("infer", "compute infer", "#9467bd"),
    ("output", "compute output", "#8c564b"),
];

const W: f64 = 640.0;
/// Where the bars begin: the model names are left of it.
const LABEL: f64 = 150.0;
const ROW: f64 = 26.0;
const TOP: f64 = 34.0;

/// One bar: a model, how deep it is among composing models, and its parts in microseconds
/// (in the order of `PARTS`).
#[derive(Debug, PartialEq)]
pub struct Bar {
    pub model: String,
    pub depth: usize,
    pub us: [f64; 6],
}

/// A model's server parts of its average request, counted as the text report counts them (an
/// ensemble's queue and compute are its computing models').
fn server_parts(f: &ServerFigures) -> [f64; 6] {
    let t = f.request_times();
    let overhead = t.request.saturating_sub(t.queue + t.compute);
    [0.0, overhead as f64, t.queue as f64, t.compute_input as f64, t.compute_infer as f64, t.compute_output as f64]
}

/// The bars of a level: its model with the client's part, then its composing models depth
/// first (by name, as the text report lists them). None without server figures.
pub fn bars(l: &LevelReport) -> Vec<Bar> {
    let Some(top) = l.server_model().filter(|f| f.stats.success.count > 0) else { return Vec::new() };
    // The client's latency counted from the send, as the text's protocol line counts it.
    let from_send = l.open_loop.as_ref().and_then(|o| o.latency_from_send_us.as_ref()).unwrap_or(&l.latency_us);
    let mut us = server_parts(top);
    us[0] = (from_send.avg - top.stats.success.avg_us() as f64).max(0.0);
    let mut out = vec![Bar { model: top.stats.name.clone(), depth: 0, us }];
    composing(top, 1, &mut out);
    out
}

fn composing(f: &ServerFigures, depth: usize, out: &mut Vec<Bar>) {
    let mut children: Vec<&ServerFigures> = f.composing.iter().collect();
    children.sort_by(|a, b| (&a.stats.name, &a.stats.version).cmp(&(&b.stats.name, &b.stats.version)));
    for c in children {
        out.push(Bar { model: c.stats.name.clone(), depth, us: server_parts(c) });
        composing(c, depth + 1, out);
    }
}

/// The bars on one scale, with a legend of the parts above them.
pub fn svg(bars: &[Bar]) -> String {
    let widest = bars.iter().map(|b| b.us.iter().sum::<f64>()).fold(1e-9, f64::max);
    let scale = (W - LABEL - 90.0) / widest;
    let h = TOP + ROW * bars.len() as f64 + 8.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" role="img" aria-label="server breakdown">"#
    );
    let mut x = 8.0;
    for (class, what, colour) in PARTS {
        let _ = write!(
            s,
            r#"<g class="legend"><rect class="key {class}" x="{x:.1}" y="8" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="17" font-size="11">{what}</text></g>"#,
            x + 14.0
        );
        x += 24.0 + 6.0 * what.len() as f64;
    }
    for (row, bar) in bars.iter().enumerate() {
        let y = TOP + row as f64 * ROW;
        let name: String = bar.model.chars().take(22).collect();
        let _ = write!(
            s,
            r#"<g class="bar"><text x="{}" y="{:.1}" font-size="11">{}</text>"#,
            8.0 + 12.0 * bar.depth as f64,
            y + 14.0,
            escape(&name)
        );
        let mut x = LABEL;
        for (us, (class, what, colour)) in bar.us.iter().zip(PARTS) {
            if *us <= 0.0 {
                continue;
            }
            let _ = write!(
                s,
                r#"<rect class="part {class}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="18" fill="{colour}"><title>{}: {what} {us:.0} usec</title></rect>"#,
                us * scale,
                escape(&bar.model)
            );
            x += us * scale;
        }
        let total: f64 = bar.us.iter().sum();
        let _ = write!(s, r#"<text x="{:.1}" y="{:.1}" font-size="11">{total:.0} usec</text></g>"#, x + 6.0, y + 14.0);
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn a_plain_models_bar_adds_up_to_the_clients_latency() {
        let run = fixture::run();
        let bars = bars(&run.levels[0]);
        assert_eq!(bars.len(), 1, "no composing models, one bar");
        // Latency 12944.5, request 12661, queue 2133, compute 20 + 10403 + 102 (10526 in all).
        assert_eq!(bars[0].model, "slow");
        assert_eq!(bars[0].us, [283.5, 2.0, 2133.0, 20.0, 10403.0, 102.0]);
        assert_eq!(bars[0].us.iter().sum::<f64>(), 12943.5, "the parts' whole microseconds, short of 12944.5");
    }

    #[test]
    fn an_ensemble_has_a_bar_per_composing_model() {
        let rich = fixture::rich();
        let bars = bars(&rich.levels[0]);
        let names: Vec<(&str, usize)> = bars.iter().map(|b| (b.model.as_str(), b.depth)).collect();
        assert_eq!(names, [("ensemble", 0), ("preprocess", 1), ("slow", 1)]);
        // The ensemble's queue and compute are its models' summed: 100 + 2133 queue.
        assert_eq!(bars[0].us[2], 2233.0);
        assert_eq!(bars[1].us, [0.0, 70.0, 100.0, 10.0, 700.0, 20.0]);
        let page = svg(&bars);
        assert_eq!(page.matches(r#"<g class="bar">"#).count(), 3);
        assert!(page.contains(r#"<title>preprocess: queue 100 usec</title>"#), "{page}");
    }

    #[test]
    fn no_server_figures_no_bars() {
        let mut run = fixture::run();
        run.levels[0].server.clear();
        assert!(bars(&run.levels[0]).is_empty());
        run.levels[1].server[0].stats.success.count = 0;
        assert!(bars(&run.levels[1]).is_empty());
    }
}
