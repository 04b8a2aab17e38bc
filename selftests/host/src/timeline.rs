//! A per-CPU timeline of a trace window as SVG (docs/trace.md).
//!
//! One band per CPU: the task running (a bar per slice, coloured per task
//! and labelled where it fits), below it what waits on that CPU: lock waits
//! (red, hatched; open waits run to the freeze), runnable-but-preempted
//! time (orange outline), PI boosts (violet triangles, with the new
//! priority) and hrtimer expiries run by `ktimers` (ticks). The wait that
//! counts (the root cause's) is a shaded column with its length; the time
//! axis is in ms from the window's start. The root-cause line is the title.

use crate::ftrace::Window;
use crate::rootcause::{key_wait, key_wait_in, policy, Model};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const PALETTE: [&str; 10] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f",
    "#aec7e8", "#98df8a",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A task's colour: the hog red-brown, the producer green, the consumer
/// blue, ktimers violet; others from the palette by name.
fn color(name: &str) -> String {
    let base = name.split('/').next().unwrap_or(name);
    match base {
        "ept_cons" => "#1f77b4".into(),
        "ept_prod" => "#2ca02c".into(),
        "ept_hog" => "#d62728".into(),
        "ktimers" => "#9467bd".into(),
        "ept_tick" => "#17becf".into(),
        _ => {
            let h = base
                .bytes()
                .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
            PALETTE[(h % PALETTE.len() as u32) as usize].into()
        }
    }
}

fn nice_step(span_ms: f64) -> f64 {
    let raw = span_ms / 8.0;
    let mag = 10f64.powf(raw.max(1e-6).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span_ms / s <= 10.0)
        .unwrap_or(10.0 * mag)
}

/// Split a long title at "; " into lines of at most ~`width` characters.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for part in s.split("; ") {
        if !cur.is_empty() && cur.len() + 2 + part.len() > width {
            out.push(format!("{cur};"));
            cur = part.to_string();
        } else {
            if !cur.is_empty() {
                cur.push_str("; ");
            }
            cur.push_str(part);
        }
    }
    out.push(cur);
    out
}

/// Height of one row of a CPU's lower lane.
const ROW: f64 = 16.0;

/// One item of a CPU's lower lane.
#[derive(Clone, Copy)]
enum Lower {
    /// A lock wait: index into `Model::waits`.
    Wait(usize),
    /// A task runnable but preempted: (pid, from, to).
    Preempted(u32, f64, f64),
}

/// The lower lane of `cpu`: its lock waits, then its preempted spans
/// (longer than two pixels), each with the first row where it overlaps
/// nothing already placed.
fn lower_lane(m: &Model, cpu: u32, px: f64) -> Vec<(usize, Lower)> {
    let mut items: Vec<(f64, f64, Lower)> = m
        .waits
        .iter()
        .enumerate()
        .filter(|(_, w)| w.cpu == cpu)
        .map(|(i, w)| (w.begin, w.end.unwrap_or(m.end), Lower::Wait(i)))
        .collect();
    let mut mine: Vec<_> = m.slices.iter().filter(|x| x.cpu == cpu).collect();
    mine.sort_by(|a, b| {
        a.begin
            .partial_cmp(&b.begin)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (i, sl) in mine.iter().enumerate() {
        if sl.left.as_deref().is_some_and(|l| l.starts_with('R')) {
            let back = mine[i + 1..]
                .iter()
                .find(|n| n.pid == sl.pid)
                .map_or(m.end, |n| n.begin);
            if back - sl.end > 2.0 * px {
                items.push((sl.end, back, Lower::Preempted(sl.pid, sl.end, back)));
            }
        }
    }
    // First fit in order of begin, long items first: a row is free for an
    // item where none of its long items overlaps it. Items narrower than
    // three pixels (a burst of short waits) only avoid the long ones, or
    // each would open a row of its own.
    items.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let long = |a: f64, b: f64| b - a >= 3.0 * px;
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut out = Vec::new();
    for pass_long in [true, false] {
        for (a, b, it) in items.iter().filter(|(a, b, _)| long(*a, *b) == pass_long) {
            let free = |r: &Vec<(f64, f64)>| r.iter().all(|(x, y)| *b + px <= *x || *y + px <= *a);
            let row = match rows.iter().position(free) {
                Some(r) => r,
                None => {
                    rows.push(Vec::new());
                    rows.len() - 1
                }
            };
            if pass_long {
                rows[row].push((*a, *b));
            }
            out.push((row, *it));
        }
    }
    out
}

/// The SVG of one window. `title`: what the run is (cell, reason);
/// `cause`: the root-cause line.
pub fn render(win: &Window, title: &str, cause: &str) -> String {
    let m = Model::build(&win.records);
    let (w, ml, mr) = (1200.0, 150.0, 30.0);
    let pw = w - ml - mr;
    let cause_lines = wrap(cause, 125);
    let top = 56.0 + 16.0 * cause_lines.len() as f64;
    let span = (m.end - m.start).max(1e-6);
    let x = |t: f64| ml + (t - m.start) / span * pw;
    let px = span / pw;
    // The lower lane of each CPU: lock waits and runnable-but-preempted
    // spans, packed into as many rows as overlap (a hang has several waits
    // open at once on one CPU, and each must stay visible).
    let lanes: Vec<Vec<(usize, Lower)>> = m.cpus.iter().map(|c| lower_lane(&m, *c, px)).collect();
    let band = |ci: usize| {
        let rows = lanes[ci].iter().map(|(r, _)| r + 1).max().unwrap_or(1);
        58.0 + ROW * rows as f64
    };
    let ys: Vec<f64> = (0..m.cpus.len())
        .scan(top, |y, ci| {
            let y0 = *y;
            *y += band(ci);
            Some(y0)
        })
        .collect();
    let h_plot = (0..m.cpus.len()).map(band).sum::<f64>().max(74.0);
    let legend_rows = m.tasks.len().div_ceil(3) as f64;
    let h = top + h_plot + 50.0 + 18.0 * legend_rows + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbe3e3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#d62728" stroke-width="2"/></pattern></defs>"##
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="20" y="26" font-size="16" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, l) in cause_lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="20" y="{}" font-size="13" fill="#222">{}{}</text>"##,
            48.0 + 16.0 * i as f64,
            if i == 0 { "root cause: " } else { "    " },
            esc(l)
        );
    }
    // The interval that counts.
    let key = if win.reason == "hang" {
        key_wait(&m)
    } else {
        key_wait_in(&m, win.lat_us, win.records.last().map(|r| r.pid))
    };
    if let Some(kw) = key {
        let (a, b) = (kw.begin, kw.end.unwrap_or(m.end));
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{h_plot}" fill="#ffd54f" fill-opacity="0.25" stroke="#f9a825" stroke-dasharray="4 3"/>"##,
            x(a),
            (x(b) - x(a)).max(1.0)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#8a6d00" font-weight="bold">{} {:.2} ms{}</text>"##,
            x(a) + 3.0,
            top + h_plot + 14.0,
            if kw.end.is_some() {
                "the wait that counts:"
            } else {
                "open wait (until the freeze):"
            },
            (b - a) * 1e3,
            format_args!(" ({})", m.task(kw.pid).name)
        );
    }
    for (ci, cpu) in m.cpus.iter().enumerate() {
        let y0 = ys[ci];
        let _ = writeln!(
            s,
            r##"<text x="20" y="{:.1}" font-weight="bold">CPU{cpu}</text><text x="20" y="{:.1}" fill="#666" font-size="11">running</text><text x="20" y="{:.1}" fill="#666" font-size="11">waiting / runnable</text>"##,
            y0 + 14.0,
            y0 + 30.0,
            y0 + 52.0
        );
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            ml + pw,
            y0 + band(ci) - 4.0,
            y0 + band(ci) - 4.0
        );
        // Running slices, coalesced below half a pixel.
        let mut sl: Vec<(u32, f64, f64)> = m
            .slices
            .iter()
            .filter(|x| x.cpu == *cpu)
            .map(|x| (x.pid, x.begin, x.end))
            .collect();
        sl.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
        let mut merged: Vec<(u32, f64, f64)> = Vec::new();
        for (p, a, b) in sl {
            if let Some(last) = merged.last_mut() {
                if last.0 == p && a - last.2 < 0.5 * px {
                    last.2 = b;
                    continue;
                }
            }
            merged.push((p, a, b));
        }
        for (p, a, b) in merged {
            let t = m.task(p);
            let (xa, xb) = (x(a), x(b).max(x(a) + 0.6));
            let _ = writeln!(
                s,
                r#"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="22" fill="{}"><title>{} {:.3}..{:.3} ms</title></rect>"#,
                y0 + 18.0,
                xb - xa,
                color(&t.name),
                esc(&t.label()),
                (a - m.start) * 1e3,
                (b - m.start) * 1e3
            );
            let label = t.label();
            if xb - xa > 7.0 * label.len() as f64 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" fill="white" font-size="11">{}</text>"#,
                    xa + 4.0,
                    y0 + 33.0,
                    esc(&label)
                );
            }
        }
        for (row, item) in &lanes[ci] {
            let yr = y0 + 44.0 + ROW * *row as f64;
            match *item {
                Lower::Wait(wi) => {
                    let wt = &m.waits[wi];
                    let (a, b) = (wt.begin, wt.end.unwrap_or(m.end));
                    let (xa, xb) = (x(a), x(b).max(x(a) + 1.0));
                    let t = m.task(wt.pid);
                    let _ = writeln!(
                        s,
                        r##"<rect x="{xa:.1}" y="{yr:.1}" width="{:.1}" height="14" fill="url(#hatch)" stroke="#d62728"><title>{} waits for lock {} [{}] {:.3} ms</title></rect>"##,
                        xb - xa,
                        esc(&t.label()),
                        esc(&wt.lock),
                        esc(&wt.flags),
                        (b - a) * 1e3
                    );
                    let label = format!("{} waits [{}] {:.1} ms", t.name, wt.flags, (b - a) * 1e3);
                    if xb - xa > 6.5 * label.len() as f64 {
                        let _ = writeln!(
                            s,
                            r##"<text x="{:.1}" y="{:.1}" fill="#7f0000" font-size="11">{}</text>"##,
                            xa + 3.0,
                            yr + 11.0,
                            esc(&label)
                        );
                    }
                }
                Lower::Preempted(p, a, b) => {
                    let t = m.task(p);
                    let (xa, xb) = (x(a), x(b));
                    let _ = writeln!(
                        s,
                        r##"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="12" fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="5 2"><title>{} runnable, preempted {:.3} ms</title></rect>"##,
                        yr + 1.0,
                        xb - xa,
                        esc(&t.label()),
                        (b - a) * 1e3
                    );
                    let label = format!("{} preempted {:.1} ms", t.label(), (b - a) * 1e3);
                    if xb - xa > 6.5 * label.len() as f64 {
                        let _ = writeln!(
                            s,
                            r##"<text x="{:.1}" y="{:.1}" fill="#b35900" font-size="11">{}</text>"##,
                            xa + 3.0,
                            yr + 11.0,
                            esc(&label)
                        );
                    }
                }
            }
        }
    }
    // PI boosts: on the CPU the boosted task last ran on; a label only
    // where it does not overlap the previous one on that CPU.
    let mut last_label: BTreeMap<usize, f64> = BTreeMap::new();
    for b in &m.boosts {
        let cpu = m
            .slices
            .iter()
            .rev()
            .find(|s| s.pid == b.pid && s.begin <= b.ts)
            .map(|s| s.cpu)
            .or_else(|| m.slices.iter().find(|s| s.pid == b.pid).map(|s| s.cpu))
            .unwrap_or(m.cpus.first().copied().unwrap_or(0));
        let ci = m.cpus.iter().position(|c| *c == cpu).unwrap_or(0);
        let y0 = ys.get(ci).copied().unwrap_or(top) + 18.0;
        let xx = x(b.ts);
        let up = b.new < b.old;
        let _ = writeln!(
            s,
            r##"<path d="M{:.1} {:.1} l-5 {} l10 0 z" fill="{}"><title>{} {} -> {} (PI)</title></path>"##,
            xx,
            if up { y0 - 8.0 } else { y0 },
            if up { 8 } else { -8 },
            if up { "#6a1b9a" } else { "#ce93d8" },
            esc(&m.task(b.pid).name),
            policy(Some(b.old)),
            policy(Some(b.new))
        );
        if up && last_label.get(&ci).is_none_or(|l| xx - l > 190.0) && xx < ml + pw - 150.0 {
            last_label.insert(ci, xx);
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#6a1b9a" font-size="10">boost {} -> {}</text>"##,
                xx + 6.0,
                y0 - 2.0,
                esc(&m.task(b.pid).name),
                policy(Some(b.new))
            );
        }
    }
    // hrtimer expiries in ktimers threads (soft timers) as ticks.
    for r in win
        .records
        .iter()
        .filter(|r| r.event == "hrtimer_expire_entry" && r.task.starts_with("ktimers"))
    {
        let ci = m.cpus.iter().position(|c| *c == r.cpu).unwrap_or(0);
        let y0 = ys.get(ci).copied().unwrap_or(top);
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#9467bd" stroke-width="1.5"/>"##,
            x(r.ts),
            x(r.ts),
            y0 + 40.0,
            y0 + 44.0
        );
    }
    // Time axis (ms from the window's start).
    let ya = top + h_plot;
    let _ = writeln!(
        s,
        r##"<line x1="{ml}" x2="{}" y1="{ya}" y2="{ya}" stroke="#333"/>"##,
        ml + pw
    );
    let span_ms = span * 1e3;
    let step = nice_step(span_ms);
    let mut t = 0.0;
    while t <= span_ms + 1e-9 {
        let xx = ml + t / span_ms * pw;
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{ya}" y2="{:.1}" stroke="#333"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            ya + 5.0,
            ya + 28.0,
            crate::stats::fmt_num(t)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#444">ms from {:.6} s (trace clock); window {:.1} ms, {} events, frozen at the {}</text>"##,
        ml + pw,
        ya + 44.0,
        m.start,
        span_ms,
        win.records.len(),
        if win.reason == "hang" {
            "hang"
        } else {
            "worst call"
        }
    );
    // Legend: tasks.
    let ly = ya + 66.0;
    for (i, t) in m.tasks.values().filter(|t| t.pid != 0).enumerate() {
        let (cx, cy) = (20.0 + 390.0 * (i % 3) as f64, ly + 18.0 * (i / 3) as f64);
        let _ = writeln!(
            s,
            r#"<rect x="{cx}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="11">{} pid {}</text>"#,
            cy - 10.0,
            color(&t.name),
            cx + 18.0,
            cy,
            esc(&t.label()),
            t.pid
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="20" y="{:.1}" font-size="11" fill="#444">hatched red: lock wait (contention_begin..end); orange outline: runnable, preempted; violet triangle: PI boost; violet tick: soft hrtimer run by ktimers</text>"##,
        ly + 18.0 * legend_rows + 8.0
    );
    s.push_str("</svg>\n");
    s
}

/// The trace files of a report (TRACE=1): for each run whose log holds
/// trace windows, `<cell>.timeline.svg` (the last window; a hang's SysRq-z
/// dump when there is one) and `<cell>.trace.txt` (that window as ftrace
/// text). `<cell>-N.*` for a run's earlier windows.
pub fn outputs(rep: &crate::report::Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logs: BTreeMap<String, crate::log::ConsoleLog> = BTreeMap::new();
    for r in &rep.runs {
        if !r.notes.iter().any(|n| n.starts_with(crate::ftrace::NOTE)) {
            continue;
        }
        let Some(path) = r.log.as_deref() else {
            continue;
        };
        if !logs.contains_key(path) {
            let Ok(text) = std::fs::read(path) else {
                continue;
            };
            logs.insert(
                path.to_string(),
                crate::log::ConsoleLog::parse(&String::from_utf8_lossy(&text)),
            );
        }
        let log = &logs[path];
        let lines = crate::judge::run_lines(log, &r.scenario, r.repeat);
        let wins = crate::ftrace::windows(&lines);
        let lock_type = r.build.get("LOCK_TYPE").map(String::as_str);
        let n = wins.len();
        for (i, w) in wins.iter().enumerate() {
            let stem = if i + 1 == n {
                r.cell.clone()
            } else {
                format!("{}-{}", r.cell, i + 1)
            };
            let cause = crate::rootcause::root_cause(w, lock_type).unwrap_or_default();
            let title = format!(
                "{}: {} {}/{} {} (trace frozen at the {}{})",
                r.cell,
                r.scenario,
                r.arch,
                r.variant,
                r.verdict,
                if w.reason == "hang" {
                    "hang"
                } else {
                    "worst call"
                },
                w.lat_us
                    .map(|l| format!(", {:.1} ms", l as f64 / 1e3))
                    .unwrap_or_default()
            );
            out.push((format!("{stem}.timeline.svg"), render(w, &title, &cause)));
            out.push((format!("{stem}.trace.txt"), crate::ftrace::to_text(w)));
        }
    }
    out
}
