//! Hand-written SVG line charts (no plotting crate).

use crate::report::{arches, scenarios, select, throughput_by_threads, variants, Report};
use crate::stats::fmt_num;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// (x, y, optional (low, high) error bar)
pub type Point = (f64, f64, Option<(f64, f64)>);

pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<Point>,
}

pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub xlabel: String,
    pub ylabel: String,
    pub x_log2: bool,
    pub y_log10: bool,
    /// Category labels for x ticks (x values) when given; otherwise automatic.
    pub x_ticks: Vec<(f64, String)>,
    pub series: Vec<Series>,
    /// Vertical marks (x, label): the threshold, the hog's burst.
    pub marks: Vec<(f64, String)>,
}

pub fn color_for(variant: &str, i: usize) -> String {
    match variant {
        "spinlock" => "#1f77b4".into(),
        "rwlock" => "#d62728".into(),
        "lockless" => "#2ca02c".into(),
        _ => ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"][i % 5].into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// "Nice" linear ticks covering [lo, hi].
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).floor() * step;
    let mut out = Vec::new();
    while t <= hi + step * 0.5 {
        out.push(t);
        t += step;
    }
    out
}

pub fn render(c: &Chart) -> String {
    let (w, h) = (860.0, 520.0);
    let (ml, mr, mt, mb) = (90.0, 215.0, 70.0, 70.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let tx = |x: f64| if c.x_log2 { x.max(1e-9).log2() } else { x };
    let ty = |y: f64| if c.y_log10 { y.max(1e-12).log10() } else { y };
    let pts: Vec<(f64, f64)> = c
        .series
        .iter()
        .flat_map(|s| {
            s.points.iter().flat_map(|(x, y, e)| {
                let mut v = vec![(*x, *y)];
                if let Some((lo, hi)) = e {
                    v.push((*x, *lo));
                    v.push((*x, *hi));
                }
                v
            })
        })
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="17" font-weight="bold">{}</text>"#,
        ml,
        esc(&c.title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="48" fill="#555">{}</text>"##,
        ml,
        esc(&c.subtitle)
    );
    if pts.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">no data</text></svg>"#,
            ml + pw / 2.0,
            mt + ph / 2.0
        );
        return s;
    }
    let (mut x0, mut x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(tx(p.0)), b.max(tx(p.0)))
    });
    let (mut y0, mut y1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(ty(p.1)), b.max(ty(p.1)))
    });
    if c.y_log10 {
        y0 = y0.floor();
        y1 = y1.ceil().max(y0 + 1.0);
    } else {
        y0 = y0.min(0.0);
        y1 = if y1 <= y0 { y0 + 1.0 } else { y1 * 1.08 };
    }
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = (x1 - x0) * 0.04;
    x0 -= pad;
    x1 += pad;
    let px = |x: f64| ml + (tx(x) - x0) / (x1 - x0) * pw;
    let py = |y: f64| mt + ph - (ty(y) - y0) / (y1 - y0) * ph;
    // Axes and grid.
    let _ = writeln!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let yt: Vec<(f64, String)> = if c.y_log10 {
        (y0 as i64..=y1 as i64)
            .map(|e| {
                let v = 10f64.powi(e as i32);
                let l = if e >= 0 { fmt_num(v) } else { format!("1e{e}") };
                (v, l)
            })
            .collect()
    } else {
        nice_ticks(y0, y1 / 1.08)
            .into_iter()
            .filter(|v| *v <= y1)
            .map(|v| (v, fmt_num(v)))
            .collect()
    };
    for (v, l) in &yt {
        let y = py(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            ml + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml - 8.0,
            y + 4.0,
            esc(l)
        );
    }
    let xt: Vec<(f64, String)> = if !c.x_ticks.is_empty() {
        c.x_ticks.clone()
    } else {
        let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup();
        xs.into_iter().map(|x| (x, fmt_num(x))).collect()
    };
    for (v, l) in &xt {
        let x = px(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{}" stroke="#eee"/>"##,
            mt + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            mt + ph + 18.0,
            esc(l)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        h - 22.0,
        esc(&c.xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{}" text-anchor="middle" transform="rotate(-90 22 {})">{}</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0,
        esc(&c.ylabel)
    );
    // Marks: dashed verticals with their label at the bottom (the legend
    // has the top right).
    for (i, (v, l)) in c.marks.iter().enumerate() {
        let x = px(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{}" stroke="#555" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#333" font-size="12">{}</text>"##,
            mt + ph,
            x + 4.0,
            mt + ph - 6.0 - 16.0 * i as f64,
            esc(l)
        );
    }
    // Series.
    for (i, se) in c.series.iter().enumerate() {
        let mut pts = se.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y, _)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.2"/>"#,
            path.join(" "),
            se.color
        );
        for (x, y, e) in &pts {
            if let Some((lo, hi)) = e {
                let xx = px(*x);
                let _ = writeln!(
                    s,
                    r#"<line x1="{xx:.1}" x2="{xx:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="1.5"/>"#,
                    py(*lo),
                    py(*hi),
                    se.color
                );
                for yy in [py(*lo), py(*hi)] {
                    let _ = writeln!(
                        s,
                        r#"<line x1="{:.1}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="{}"/>"#,
                        xx - 4.0,
                        xx + 4.0,
                        se.color
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                px(*x),
                py(*y),
                se.color
            );
        }
        let ly = mt + 10.0 + i as f64 * 24.0;
        let lx = ml + pw + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"/>"#,
            lx + 24.0,
            se.color
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn us_label(lo: u64) -> String {
    if lo >= 1_000_000 {
        format!("{}s", lo / 1_000_000)
    } else if lo >= 1000 {
        format!("{}ms", lo / 1000)
    } else {
        format!("{lo}us")
    }
}

/// All plots of a report: (file name, svg text).
pub fn plots(rep: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in arches(rep) {
        // Latency distribution per scenario that has histograms.
        for sc in scenarios(rep) {
            let mut series = Vec::new();
            let mut ticks: BTreeMap<u64, ()> = BTreeMap::new();
            for (i, v) in variants(rep).iter().enumerate() {
                let mut h: BTreeMap<u64, u64> = BTreeMap::new();
                let runs = select(rep, &a, v, Some(&sc));
                for r in &runs {
                    for (k, n) in &r.metrics.hist_us {
                        *h.entry(*k).or_default() += n;
                    }
                }
                let total: u64 = h.values().sum();
                if total == 0 {
                    continue;
                }
                let pts = h
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(lo, n)| {
                        ticks.insert(*lo, ());
                        // The first bucket is [0, 2): drawn at 1.
                        ((*lo).max(1) as f64, *n as f64 / total as f64, None)
                    })
                    .collect();
                series.push(Series {
                    name: format!("{v} (n={total})"),
                    color: color_for(v, i),
                    points: pts,
                });
            }
            if series.is_empty() {
                continue;
            }
            let mut x_ticks: Vec<(f64, String)> = ticks
                .keys()
                .map(|lo| {
                    if *lo == 0 {
                        (1.0, "<2us".to_string())
                    } else {
                        (*lo as f64, us_label(*lo))
                    }
                })
                .collect();
            // Keep the axis readable: at most ~12 labels.
            let step = x_ticks.len().div_ceil(12).max(1);
            x_ticks = x_ticks
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0)
                .map(|(_, t)| t)
                .collect();
            out.push((
                format!("latency-{a}-{sc}.svg"),
                render(&Chart {
                    title: format!("{sc} latency distribution on {a}"),
                    subtitle: "fraction of samples per log2 bucket [lo, 2*lo), all repeats".into(),
                    xlabel: "latency bucket (lower bound)".into(),
                    ylabel: "fraction of samples (log)".into(),
                    x_log2: true,
                    y_log10: true,
                    x_ticks,
                    series,
                    marks: vec![],
                }),
            ));
            if let Some(t) = tail_plot(rep, &a, &sc) {
                out.push((format!("latency-tail-{a}-{sc}.svg"), t));
            }
        }
        // Throughput vs threads.
        let mut series = Vec::new();
        for (i, v) in variants(rep).iter().enumerate() {
            let runs = select(rep, &a, v, None);
            let m = throughput_by_threads(&runs);
            if m.is_empty() {
                continue;
            }
            series.push(Series {
                name: v.clone(),
                color: color_for(v, i),
                points: m
                    .iter()
                    .map(|(t, sp)| {
                        (
                            *t as f64,
                            sp.mean,
                            if sp.n > 1 {
                                Some((sp.min, sp.max))
                            } else {
                                None
                            },
                        )
                    })
                    .collect(),
            });
        }
        if !series.is_empty() {
            out.push((
                format!("throughput-{a}.svg"),
                render(&Chart {
                    title: format!("epoll throughput on {a}"),
                    subtitle:
                        "N producer threads -> one consumer; mean over repeats, bars = min..max"
                            .into(),
                    xlabel: "producer threads".into(),
                    ylabel: "events/ms".into(),
                    x_log2: true,
                    y_log10: false,
                    x_ticks: vec![],
                    series,
                    marks: vec![],
                }),
            ));
        }
    }
    out
}

/// The latency tail of one (arch, scenario) per variant: the fraction of
/// calls at or above x (from the log2 buckets: at or above each bucket's
/// lower bound), log axes, with the threshold and the hog's burst marked,
/// so that a step at the burst length shows.
pub fn tail_plot(rep: &Report, arch: &str, sc: &str) -> Option<String> {
    let mut series = Vec::new();
    let mut marks: Vec<(f64, String)> = Vec::new();
    for (i, v) in variants(rep).iter().enumerate() {
        let runs = select(rep, arch, v, Some(sc));
        let mut h: BTreeMap<u64, u64> = BTreeMap::new();
        for r in &runs {
            for (k, n) in &r.metrics.hist_us {
                *h.entry(*k).or_default() += n;
            }
            for (key, label) in [("threshold_us", "threshold"), ("hog_burst_ms", "hog burst")] {
                if let Some(x) = r.metrics.values.get(key) {
                    let us = if key.ends_with("_ms") { x * 1e3 } else { *x };
                    if !marks.iter().any(|(m, _)| (*m - us).abs() < 1e-9) {
                        marks.push((us, format!("{label} {}", us_label(us as u64))));
                    }
                }
            }
        }
        let total: u64 = h.values().sum();
        if total == 0 {
            continue;
        }
        let mut left = total;
        let mut pts = Vec::new();
        for (lo, n) in &h {
            if left > 0 {
                pts.push(((*lo).max(1) as f64, left as f64 / total as f64, None));
            }
            left -= n;
        }
        // The last bucket's upper bound: nothing at or above it.
        if let Some(lo) = h.keys().next_back() {
            pts.push(((lo * 2).max(2) as f64, 0.5 / total as f64, None));
        }
        series.push(Series {
            name: format!("{v} (n={total})"),
            color: color_for(v, i),
            points: pts,
        });
    }
    if series.is_empty() {
        return None;
    }
    let hi = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    marks.retain(|(x, _)| *x <= hi);
    Some(render(&Chart {
        title: format!("{sc} latency tail on {arch}"),
        subtitle:
            "fraction of calls >= x (log2 bucket lower bounds), all repeats; last point: below 1/n"
                .into(),
        xlabel: "latency x".into(),
        ylabel: "fraction of calls >= x (log)".into(),
        x_log2: true,
        y_log10: true,
        x_ticks: [1u64, 16, 256, 4096, 65536, 1 << 20]
            .iter()
            .filter(|v| (**v as f64) <= hi)
            .map(|v| (*v as f64, us_label(*v)))
            .collect(),
        series,
        marks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!(nice_ticks(0.0, 38174.0).len() <= 7);
    }

    #[test]
    fn empty_chart() {
        let c = Chart {
            title: "t".into(),
            subtitle: "s".into(),
            xlabel: "x".into(),
            ylabel: "y".into(),
            x_log2: false,
            y_log10: false,
            x_ticks: vec![],
            series: vec![],
            marks: vec![],
        };
        assert!(render(&c).contains("no data"));
    }
}
