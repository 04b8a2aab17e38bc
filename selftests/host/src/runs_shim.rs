//! TEMP until the judge branch lands: `judge_runs()` splits a boot's log on
//! the run markers (`EPT: run begin scenario=S repeat=N` ..
//! `EPT: run end scenario=S repeat=N rc=R`, qemu/CONTRACT.md) and judges
//! each run's segment with today's `judge()`, which knows the old
//! `EPT: steps begin/end` markers only. The judge branch provides the real
//! `judge::judge_runs(log, &Scenarios, fallback) -> Vec<Judgement>` (with
//! scenario and repeat in the Judgement); at merge, delete this file and
//! point `runner::judge_log` at it.
//!
//! A segment is: the lines before the first run (boot, `EPT: guest up`),
//! then the run's own lines up to the next `run begin` (kernel lines after
//! `run end` belong to the run before: late reports such as an RCU stall
//! after the linger), the host notes that fall in it (a deadline note goes
//! to the run in progress), and the boot-wide notes (load, QEMU exit).

use crate::data::Scenarios;
use crate::judge::{judge, Judgement};
use crate::log::{kv_pairs, ConsoleLog, LogLine};
use std::collections::BTreeMap;

/// One judged run of a boot's log. TEMP until the judge branch lands.
#[derive(Debug, Clone)]
pub struct RunJudgement {
    pub scenario: String,
    pub repeat: u32,
    /// Host seconds from `run begin` to `run end` (or to the segment's last
    /// line when the run never ended).
    pub run_s: Option<f64>,
    pub judgement: Judgement,
}

fn marker(t: &str, what: &str) -> Option<(String, u32, Option<i64>)> {
    let i = t.find(what)?;
    let kv = kv_pairs(&t[i + what.len()..]);
    let s = kv.get("scenario")?.clone();
    let r = kv.get("repeat")?.parse().ok()?;
    Some((s, r, kv.get("rc").and_then(|x| x.parse().ok())))
}

fn renamed(l: &LogLine, text: String) -> LogLine {
    LogLine { text, ..l.clone() }
}

/// TEMP until the judge branch lands (see the module doc).
pub fn judge_runs(log: &ConsoleLog, scen: &Scenarios, fallback: &str) -> Vec<RunJudgement> {
    judge_runs_with(log, scen, fallback, None)
}

/// `judge_runs` with the unmodified kernel's selftest failures as the
/// baseline of every kselftest run (`ept judge --baseline`).
pub fn judge_runs_with(
    log: &ConsoleLog,
    scen: &Scenarios,
    fallback: &str,
    baseline: Option<&BTreeMap<String, String>>,
) -> Vec<RunJudgement> {
    let spec = |name: &str| {
        let mut s = scen.spec(name);
        s.baseline_failures = baseline.cloned();
        s
    };
    let begins: Vec<usize> = log
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| marker(&l.text, "EPT: run begin ").is_some())
        .map(|(i, _)| i)
        .collect();
    let plan_to_steps = |l: &LogLine| -> Option<LogLine> {
        let t = l.text.as_str();
        if t.contains("EPT: plan begin") {
            Some(renamed(l, t.replace("EPT: plan begin", "EPT: steps begin")))
        } else if t.contains("EPT: plan end rc=") {
            Some(renamed(
                l,
                t.replace("EPT: plan end rc=", "EPT: steps end rc="),
            ))
        } else {
            Some(l.clone())
        }
    };
    if begins.is_empty() {
        let mut one = log.clone();
        one.lines = log.lines.iter().filter_map(plan_to_steps).collect();
        let mut j = judge(&one, &spec(fallback));
        host_load(&one, &mut j);
        return vec![RunJudgement {
            scenario: fallback.to_string(),
            repeat: 1,
            run_s: j.metrics.values.get("steps_s").copied(),
            judgement: j,
        }];
    }
    let preamble: Vec<LogLine> = log.lines[..begins[0]]
        .iter()
        .filter(|l| !l.text.contains("EPT: plan begin"))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (k, &b) in begins.iter().enumerate() {
        let end = begins.get(k + 1).copied().unwrap_or(log.lines.len());
        let (scenario, repeat, _) = marker(&log.lines[b].text, "EPT: run begin ").unwrap();
        let mut seg = log.clone();
        seg.lines = preamble.clone();
        let mut t_end = None;
        for l in &log.lines[b..end] {
            let t = l.text.as_str();
            if marker(t, "EPT: run begin ").is_some() {
                seg.lines.push(renamed(l, "EPT: steps begin".into()));
            } else if let Some((_, _, Some(rc))) = marker(t, "EPT: run end ") {
                seg.lines
                    .push(renamed(l, format!("EPT: steps end rc={rc}")));
                t_end = l.host_s;
            } else if !t.contains("EPT: plan end") {
                seg.lines.push(l.clone());
            }
        }
        // Notes: boot-wide ones everywhere; a deadline/HANG note only in
        // the segment it falls in (the last one when after every line).
        let lo = log.lines[b].no;
        let hi = log.lines.get(end).map_or(usize::MAX, |l| l.no);
        seg.notes = log
            .notes
            .iter()
            .filter(|n| {
                let boot_wide = n.text.starts_with("load ") || n.text.starts_with("QEMU exited");
                boot_wide || (n.no > lo && n.no < hi)
            })
            .cloned()
            .collect();
        let t_begin = log.lines[b].host_s;
        let last = seg.lines.last().and_then(|l| l.host_s);
        let run_s = match (t_begin, t_end.or(last)) {
            (Some(a), Some(z)) => Some(((z - a) * 1000.0).round() / 1000.0),
            _ => None,
        };
        let mut j = judge(&seg, &spec(&scenario));
        host_load(&seg, &mut j);
        out.push(RunJudgement {
            scenario,
            repeat,
            run_s,
            judgement: j,
        });
    }
    out
}

/// The host's load notes as metrics (TEMP: the judge branch computes these):
/// host_load1_start/end, qemu_cpu_per_wall, vcpu_starved_pct
/// (= vcpu_wait_s / (wall_s * 2) * 100, 2 vCPUs), and a note when the
/// vCPUs were starved beyond 20 %.
fn host_load(log: &ConsoleLog, j: &mut Judgement) {
    let num = |s: Option<&String>| s.and_then(|v| v.parse::<f64>().ok());
    let load1 = |s: Option<&String>| {
        s.and_then(|v| v.split(',').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let m = &mut j.metrics.values;
    for n in &log.notes {
        if let Some(rest) = n.text.strip_prefix("load start ") {
            if let Some(v) = load1(kv_pairs(rest).get("loadavg")) {
                m.insert("host_load1_start".into(), v);
            }
        } else if let Some(rest) = n.text.strip_prefix("load end ") {
            let kv = kv_pairs(rest);
            if let Some(v) = load1(kv.get("loadavg")) {
                m.insert("host_load1_end".into(), v);
            }
            let wall = num(kv.get("wall_s"));
            if let (Some(w), Some(c)) = (wall, num(kv.get("qemu_cpu_s"))) {
                if w > 0.0 {
                    m.insert("qemu_cpu_per_wall".into(), (c / w * 100.0).round() / 100.0);
                }
            }
            if let (Some(w), Some(v)) = (wall, num(kv.get("vcpu_wait_s"))) {
                if w > 0.0 {
                    let pct = (v / (w * 2.0) * 1000.0).round() / 10.0;
                    m.insert("vcpu_starved_pct".into(), pct);
                    if pct > 20.0 {
                        j.notes.push(format!(
                            "host starved the vCPUs: they waited {pct}% of the boot for a host CPU (limit 20%)"
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
# epoll-torture console log
# ARCH=x86_64
# VARIANT=rwlock
# deadline=900 idle=0 plan=x86_64-rwlock-r1.sh
# host: load start loadavg=0.50,0.40,0.30 ncpu=2
[+0001.000] [    0.500000] Linux version 7.3.4
[+0004.000] EPT: guest up release=7.3.4 version=#1 SMP PREEMPT_RT cpus=2
[+0004.100] EPT: plan begin
[+0004.200] EPT: run begin scenario=smoke repeat=1
[+0006.000] EPT-SMOKE result=ok
[+0006.100] EPT: run end scenario=smoke repeat=1 rc=0
[+0006.200] EPT: run begin scenario=stall repeat=1
[+0010.000] [    9.000000] epoll_torture: # heartbeat scenario=stall t_ms=1000 progress=5
[+0011.000] [   10.000000] epoll_torture: # heartbeat scenario=stall t_ms=2000 progress=5
[+0100.000] [   99.000000] epoll_torture: # heartbeat scenario=stall t_ms=90000 progress=5
# host: run deadline 240s of scenario=stall repeat=1 reached after 250s: asking for SysRq-w and SysRq-t
[+0251.000] sysrq: Show Blocked State
# host: load end loadavg=2.50,1.40,0.30 wall_s=272.0 qemu_cpu_s=400.0 vcpu_wait_s=130.5
# host: HANG: killing QEMU after 272s
";

    #[test]
    fn splits_on_run_markers() {
        let log = ConsoleLog::parse(LOG);
        let runs = judge_runs(&log, &Scenarios::builtin(), "unknown");
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].scenario.as_str(), runs[0].repeat), ("smoke", 1));
        assert_eq!(runs[0].judgement.verdict, crate::data::Verdict::Pass);
        assert_eq!(runs[0].run_s, Some(1.9));
        assert_eq!((runs[1].scenario.as_str(), runs[1].repeat), ("stall", 1));
        assert_eq!(
            runs[1].judgement.verdict,
            crate::data::Verdict::Hang,
            "{:?}",
            runs[1].judgement.findings
        );
        // The host's load, on every run of the boot.
        for r in &runs {
            let m = &r.judgement.metrics.values;
            assert_eq!(m.get("host_load1_start"), Some(&0.5));
            assert_eq!(m.get("host_load1_end"), Some(&2.5));
            assert_eq!(m.get("qemu_cpu_per_wall"), Some(&1.47));
            assert_eq!(m.get("vcpu_starved_pct"), Some(&24.0));
            assert!(r
                .judgement
                .notes
                .iter()
                .any(|n| n.starts_with("host starved the vCPUs")));
        }
    }

    #[test]
    fn a_log_without_markers_is_one_run() {
        let text = LOG
            .lines()
            .filter(|l| !l.contains("EPT: run "))
            .collect::<Vec<_>>()
            .join("\n");
        let runs = judge_runs(&ConsoleLog::parse(&text), &Scenarios::builtin(), "stall");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].scenario, "stall");
    }
}
