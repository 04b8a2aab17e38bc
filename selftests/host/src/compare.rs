//! `ept compare`: two variants of one report, or two reports, on one screen.

use crate::report::{throughput_by_threads, verdict_label, Report, Run};
use crate::stats::{fmt_num, ratio_spread};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Groups to compare: label -> (runs of A, runs of B).
type Groups<'a> = BTreeMap<String, (Vec<&'a Run>, Vec<&'a Run>)>;

/// Compare variant `a` with variant `b` inside one report.
pub fn variants<'a>(rep: &'a Report, a: &str, b: &str) -> Groups<'a> {
    let mut g: Groups = BTreeMap::new();
    for r in &rep.runs {
        let key = format!("{} {}", r.arch, r.scenario);
        if r.variant == a {
            g.entry(key).or_default().0.push(r);
        } else if r.variant == b {
            g.entry(key).or_default().1.push(r);
        }
    }
    g
}

/// Compare the same cells in two reports.
pub fn reports<'a>(ra: &'a Report, rb: &'a Report) -> Groups<'a> {
    let mut g: Groups = BTreeMap::new();
    for r in &ra.runs {
        g.entry(format!("{} {} {}", r.arch, r.variant, r.scenario))
            .or_default()
            .0
            .push(r);
    }
    for r in &rb.runs {
        g.entry(format!("{} {} {}", r.arch, r.variant, r.scenario))
            .or_default()
            .1
            .push(r);
    }
    g
}

fn vals(runs: &[&Run], key: &str) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.metrics.values.get(key).copied())
        .collect()
}

fn med(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    fmt_num(crate::stats::Spread::of(v).median)
}

/// The one-screen text.
pub fn render(title: &str, g: &Groups) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let _ = writeln!(s, "\nverdicts (A -> B):");
    let mut flips = 0;
    for (k, (a, b)) in g {
        let la = if a.is_empty() {
            "-".into()
        } else {
            verdict_label(a)
        };
        let lb = if b.is_empty() {
            "-".into()
        } else {
            verdict_label(b)
        };
        let va: BTreeSet<_> = a.iter().map(|r| r.verdict).collect();
        let vb: BTreeSet<_> = b.iter().map(|r| r.verdict).collect();
        let flip = !a.is_empty() && !b.is_empty() && va != vb;
        if flip {
            flips += 1;
        }
        let _ = writeln!(
            s,
            "  {}{k:<32} {la:<18} -> {lb}",
            if flip { "* " } else { "  " }
        );
    }
    let _ = writeln!(s, "  ({flips} flipped, marked *)");
    let mut lat = String::new();
    for (k, (a, b)) in g {
        for key in ["lat_p50_us", "lat_p99_us", "lat_max_us"] {
            let (x, y) = (vals(a, key), vals(b, key));
            if let Some(r) = ratio_spread(&x, &y) {
                let _ = writeln!(
                    lat,
                    "  {k:<32} {:<4} {:>9} -> {:<9} x{} [{}..{}]",
                    &key[4..7],
                    med(&x),
                    med(&y),
                    fmt_num(r.median),
                    fmt_num(r.min),
                    fmt_num(r.max)
                );
            }
        }
    }
    if !lat.is_empty() {
        let _ = writeln!(s, "\nlatency, us (median A -> median B, ratio B/A median [min..max] over run pairs):\n{lat}");
    }
    let mut tp = String::new();
    let mut seen = BTreeSet::new();
    for (k, (a, b)) in g {
        let arch = k.split_whitespace().next().unwrap_or("");
        let (ta, tb) = (throughput_by_threads(a), throughput_by_threads(b));
        for (t, sa) in &ta {
            if let Some(sb) = tb.get(t) {
                if !seen.insert((arch.to_string(), *t, k.clone())) {
                    continue;
                }
                let (xa, xb) = (events_per_ms(a, *t), events_per_ms(b, *t));
                let r = ratio_spread(&xa, &xb);
                let _ = writeln!(
                    tp,
                    "  {k:<32} threads={t:<4} {:>9} -> {:<9} {} (sd {} / {})",
                    fmt_num(sa.mean),
                    fmt_num(sb.mean),
                    r.map(|r| format!(
                        "{:+.0}% [{:+.0}..{:+.0}%]",
                        (r.median - 1.0) * 100.0,
                        (r.min - 1.0) * 100.0,
                        (r.max - 1.0) * 100.0
                    ))
                    .unwrap_or_default(),
                    fmt_num(sa.stddev),
                    fmt_num(sb.stddev)
                );
            }
        }
    }
    if !tp.is_empty() {
        let _ = writeln!(s, "\nthroughput, events/ms (mean A -> mean B, change median [min..max] over run pairs):\n{tp}");
    }
    let mut st = String::new();
    for (k, (a, b)) in g {
        let (x, y) = (vals(a, "stalls"), vals(b, "stalls"));
        if x.is_empty() && y.is_empty() {
            continue;
        }
        let (mx, my) = (vals(a, "stall_max_s"), vals(b, "stall_max_s"));
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let mxx = |v: &[f64]| v.iter().copied().fold(0.0f64, f64::max);
        let _ = writeln!(
            st,
            "  {k:<32} stalls {} -> {}   longest {} s -> {} s",
            sum(&x),
            sum(&y),
            fmt_num(mxx(&mx)),
            fmt_num(mxx(&my))
        );
    }
    if !st.is_empty() {
        let _ = writeln!(s, "\nworkload stalls (sum over repeats; longest):\n{st}");
    }
    s
}

/// Every events/ms value measured with `threads` producers in these runs.
fn events_per_ms(runs: &[&Run], threads: u64) -> Vec<f64> {
    runs.iter()
        .flat_map(|r| r.metrics.throughput.iter())
        .filter(|p| p.threads as u64 == threads)
        .map(|p| p.events_per_ms)
        .collect()
}
