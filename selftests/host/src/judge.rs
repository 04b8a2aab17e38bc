//! Judging one console log: from the lines to a verdict with evidence.
//!
//! Precedence when a log shows several things (highest wins):
//!
//! | verdict   | given when |
//! |-----------|------------|
//! | CRASH     | Oops, `BUG:`, kernel panic, `WARNING:`, lockdep splats, sleeping in atomic |
//! | HANG      | the host deadline (or idle limit) was hit and the workload had made no progress for `hang_after_s` before it (flat heartbeats, no heartbeat, no output) |
//! | STALL     | the kernel reported an RCU stall, a hung task or a soft/hard lockup |
//! | INVERSION | the module's KTAP said `not ok` (scenario's `not_ok` verdict), or latency max over the scenario threshold |
//! | ERROR     | the harness failed: guest never booted, steps script missing, QEMU died, deadline too short for a still-progressing workload, no KTAP result; never blamed on the kernel |
//! | FAIL      | a test failed without any of the above: kselftest `not ok` (incl. TIMEOUT), `EPT-SELFTEST rc!=0`, steps exited non-zero |
//! | PASS      | none of the above |
//!
//! `sched: RT throttling activated` is recorded as a note (and metric), not a verdict.
//! A workload that stalls and recovers is not a HANG: its stalls (runs of
//! heartbeats with no progress) are counted in the metrics.

use crate::data::{Kind, ScenarioSpec, Verdict};
use crate::log::{kv_pairs, quote, ConsoleLog, LogLine};
use crate::sysrq;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One reason for a verdict, with the log lines that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    pub what: String,
    pub lines: Vec<String>,
    /// How many lines of this kind the log had (only some are quoted).
    pub count: usize,
}

/// The finding's heading: `VERDICT: what (xN)`.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.verdict, self.what)?;
        if self.count > 1 {
            write!(f, " (x{})", self.count)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputPoint {
    pub threads: f64,
    pub events_per_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Derived numbers: lat_p50_us, lat_p99_us, lat_max_us, stalls,
    /// stall_max_s, stall_total_s, stall_open_s, heartbeats, hb_gap_max_s,
    /// boot_s, steps_s, rc, selftests_pass/fail/skip, rt_throttled, ...
    pub values: BTreeMap<String, f64>,
    /// Latency histogram: log2 bucket lower bound (us) -> count.
    pub hist_us: BTreeMap<u64, u64>,
    pub throughput: Vec<ThroughputPoint>,
    pub selftests: Vec<SelftestResult>,
    /// Every `# metrics` line as printed (key -> value).
    pub lines: Vec<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One line: why.
    pub reason: String,
    pub findings: Vec<Finding>,
    /// "Who waits on whom" from the task dumps.
    pub waits: Vec<String>,
    pub notes: Vec<String>,
    pub metrics: Metrics,
    /// `uname -r` as the guest printed it.
    pub guest_release: Option<String>,
}

/// Kernel badness: (verdict, label) for a kernel line, if it is a report.
pub fn classify_kernel(text: &str) -> Option<(Verdict, &'static str)> {
    let t = text;
    if t.contains("detected stalls on CPUs/tasks")
        || t.contains("detected expedited stalls")
        || t.contains("detected stalls on tasks")
        || t.contains("self-detected stall on CPU")
        || (t.contains("rcu_") && t.contains("kthread starved for"))
    {
        return Some((Verdict::Stall, "RCU stall"));
    }
    if t.contains("INFO: task ") && t.contains("blocked for more than") {
        return Some((Verdict::Stall, "hung task"));
    }
    if t.contains("soft lockup - CPU#") {
        return Some((Verdict::Stall, "soft lockup"));
    }
    if t.contains("hard LOCKUP") {
        return Some((Verdict::Stall, "hard lockup"));
    }
    if t.contains("BUG: workqueue lockup") {
        return Some((Verdict::Stall, "workqueue lockup"));
    }
    if t.contains("Kernel panic - not syncing") {
        return Some((Verdict::Crash, "kernel panic"));
    }
    if t.contains("possible circular locking dependency")
        || t.contains("inconsistent lock state")
        || t.contains("possible recursive locking detected")
        || t.contains("DEBUG_LOCKS_WARN_ON")
        || t.contains("suspicious RCU usage")
    {
        return Some((Verdict::Crash, "lockdep splat"));
    }
    if t.contains("BUG: sleeping function called from invalid context") {
        return Some((Verdict::Crash, "sleeping in atomic context"));
    }
    if t.contains("BUG: ") {
        return Some((Verdict::Crash, "kernel BUG"));
    }
    if t.starts_with("Oops") || t.contains("Oops: ") || t.contains("Oops - ") {
        return Some((Verdict::Crash, "Oops"));
    }
    if t.contains("general protection fault") || t.contains("Unable to handle kernel") {
        return Some((Verdict::Crash, "Oops"));
    }
    if t.starts_with("WARNING: ") || t.contains("] WARNING: ") {
        return Some((Verdict::Crash, "kernel WARNING"));
    }
    None
}

/// The body of a module line (`epoll_torture: ...`), trimmed of KTAP indentation.
fn module_body(text: &str) -> Option<&str> {
    let i = text.find("epoll_torture: ")?;
    Some(text[i + "epoll_torture: ".len()..].trim_start())
}

/// A TAP/KTAP result line: (ok, number, name, directive).
pub fn parse_tap_result(body: &str) -> Option<(bool, u64, String, String)> {
    let b = body.trim_start();
    let (ok, rest) = if let Some(r) = b.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = b.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let mut it = rest.splitn(2, ' ');
    let num: u64 = it.next()?.parse().ok()?;
    let rest = it.next().unwrap_or("").trim();
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n.trim(), d.trim()),
        None => match rest.strip_prefix("# ") {
            Some(d) => ("", d.trim()),
            None => (rest, ""),
        },
    };
    let name = name.strip_prefix("- ").unwrap_or(name);
    Some((ok, num, name.to_string(), directive.to_string()))
}

fn num(v: &str) -> Option<f64> {
    v.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%')
        .parse()
        .ok()
}

const MAX_KEYS: &[&str] = &[
    "lat_max_us",
    "max_us",
    "max_lat_us",
    "worst_us",
    "latency_max_us",
];
const P99_KEYS: &[&str] = &["lat_p99_us", "p99_us", "latency_p99_us"];
const P50_KEYS: &[&str] = &["lat_p50_us", "p50_us", "median_us", "latency_p50_us"];
const TPUT_KEYS: &[&str] = &["events_per_ms", "ev_per_ms", "events_ms", "evts_per_ms"];
const THREAD_KEYS: &[&str] = &["threads", "producers", "nthreads"];

fn first_num(m: &BTreeMap<String, String>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| m.get(*k).and_then(|v| num(v)))
}

/// Percentile from log2 buckets: the upper bound (2*lo) of the bucket that
/// reaches the quantile (conservative), or 1 for the [0,1) bucket.
pub fn hist_percentile(h: &BTreeMap<u64, u64>, q: f64) -> Option<f64> {
    let total: u64 = h.values().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (lo, c) in h {
        acc += c;
        if acc >= want {
            // Bucket [lo, 2*lo); the first bucket (lo 0) is [0, 2).
            return Some(((*lo * 2).max(2)) as f64);
        }
    }
    None
}

struct Heartbeat {
    host_s: Option<f64>,
    t_s: f64,
    progress: f64,
    key: String,
}

/// Stalls in heartbeat progress: (count, max_s, total_s, open_s).
/// A stall is a run of heartbeats with no progress lasting >= min_s;
/// `open_s` is the length of a stall still going at the last heartbeat.
fn stalls(hbs: &[&Heartbeat], min_s: f64, finished: bool) -> (usize, f64, f64, f64) {
    let (mut n, mut max, mut total, mut open) = (0, 0.0f64, 0.0, 0.0);
    let mut i = 0;
    while i + 1 < hbs.len() {
        if hbs[i + 1].progress <= hbs[i].progress {
            let start = hbs[i].t_s;
            let mut j = i + 1;
            while j < hbs.len() && hbs[j].progress <= hbs[i].progress {
                j += 1;
            }
            if j == hbs.len() && !finished {
                open = hbs[j - 1].t_s - start;
            } else {
                let end = if j < hbs.len() {
                    hbs[j].t_s
                } else {
                    hbs[j - 1].t_s
                };
                let len = end - start;
                if len >= min_s {
                    n += 1;
                    max = max.max(len);
                    total += len;
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    (n, max, total, open)
}

#[derive(Default)]
struct Collect {
    findings: Vec<Finding>,
}

impl Collect {
    fn add(&mut self, v: Verdict, what: impl Into<String>, line: Option<&LogLine>) {
        let what = what.into();
        if let Some(f) = self
            .findings
            .iter_mut()
            .find(|f| f.verdict == v && f.what == what)
        {
            f.count += 1;
            if let Some(l) = line {
                if f.lines.len() < 3 {
                    f.lines.push(quote(l));
                }
            }
            return;
        }
        self.findings.push(Finding {
            verdict: v,
            what,
            lines: line.map(quote).into_iter().collect(),
            count: 1,
        });
    }
}

/// Judge a parsed log for a scenario.
/// A known failure of this test from the scenario data: keyed
/// `variant:test` (a finding about that variant, excused on its own),
/// `arch:test` or `test` (emulation costs, which need the baseline to fail
/// the same way when one is given). Returns (why, variant-specific).
fn known_failure(
    spec: &ScenarioSpec,
    arch: &str,
    variant: &str,
    test: &str,
) -> Option<(String, bool)> {
    let f = &spec.emulation_failures;
    if let Some(w) = f.get(&format!("{variant}:{test}")) {
        return Some((w.clone(), true));
    }
    f.get(&format!("{arch}:{test}"))
        .or_else(|| f.get(test))
        .map(|w| (w.clone(), false))
}

/// The kernel selftests a log shows failing: short test name (`epoll65`)
/// -> "timeout" (killed by the harness) or "fail". Used as the baseline
/// when judging the other variants against the unmodified kernel.
pub fn selftest_failures(log: &ConsoleLog) -> BTreeMap<String, String> {
    let mut timed_out = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    for l in &log.lines {
        let t = l.text.as_str();
        if module_body(t).is_some() {
            continue;
        }
        let body = t.trim_start();
        if let Some(test) = body
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(": Test terminated by timeout"))
        {
            timed_out.insert(test.to_string());
        } else if let Some((false, _, name, dir)) = parse_tap_result(body) {
            if dir.to_ascii_uppercase().starts_with("SKIP") {
                continue;
            }
            let short = name.rsplit('.').next().unwrap_or(&name).to_string();
            let kind = if timed_out.contains(&short) {
                "timeout"
            } else {
                "fail"
            };
            out.insert(short, kind.to_string());
        }
    }
    out
}

pub fn judge(log: &ConsoleLog, spec: &ScenarioSpec) -> Judgement {
    let arch = log.header.get("ARCH").cloned().unwrap_or_default();
    let variant =
        crate::data::canon_variant(log.header.get("VARIANT").map_or("", |v| v)).to_string();
    let mut c = Collect::default();
    let mut m = Metrics::default();
    let mut notes = Vec::new();
    let hang = log.hang_note();
    // Lines the guest printed before the host started asking for dumps.
    let cut = hang.map(|n| n.no).unwrap_or(usize::MAX);

    let mut guest_up: Option<&LogLine> = None;
    let mut steps_begin: Option<&LogLine> = None;
    let mut steps_end: Option<(&LogLine, i64)> = None;
    let mut guest_release = None;
    let mut ktap: Vec<(&LogLine, bool, String, String)> = Vec::new();
    let mut tap_user: Vec<(&LogLine, bool, String, String)> = Vec::new();
    // Tests the harness timed out, rerun alone with a long timeout:
    // test name -> (rc, seconds, line).
    let mut reruns: BTreeMap<String, (f64, Option<f64>, &LogLine)> = BTreeMap::new();
    let mut binary_failures: Vec<(String, &LogLine)> = Vec::new();
    // Tests the kselftest harness killed for its timeout.
    let mut timed_out: BTreeMap<String, &LogLine> = BTreeMap::new();
    let mut hbs: Vec<Heartbeat> = Vec::new();
    let mut last_progress: Option<&LogLine> = None;
    let mut missing_script: Option<&LogLine> = None;
    let mut rt_throttled = 0;

    for l in &log.lines {
        let t = l.text.as_str();
        let before_cut = l.no < cut;
        if t.contains("EPT: guest up") {
            guest_up.get_or_insert(l);
            if let Some(r) = kv_pairs(t).get("release") {
                guest_release = Some(r.clone());
            }
        }
        if t.contains("EPT: steps begin") {
            steps_begin.get_or_insert(l);
        }
        if let Some(i) = t.find("EPT: steps end rc=") {
            let rc: i64 = t[i + 18..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect::<String>()
                .parse()
                .unwrap_or(-1);
            steps_end = Some((l, rc));
        }
        if t.contains("can't open '/ept/scenarios/")
            || t.contains("/ept/scenarios/") && t.contains("No such file")
        {
            missing_script.get_or_insert(l);
        }
        if t.contains("sched: RT throttling activated") {
            rt_throttled += 1;
            if rt_throttled == 1 {
                notes.push(format!("RT throttling activated: {}", quote(l)));
            }
        }
        if l.kernel_s.is_some() || t.contains("Kernel panic") {
            if let Some((v, what)) = classify_kernel(t) {
                c.add(v, what, Some(l));
            }
        }
        // Module (KTAP) lines and user-space lines in the same formats.
        let module = module_body(t);
        let body = module.unwrap_or(t).trim_start();
        if let Some(rest) = body.strip_prefix("# heartbeat ") {
            let kv = kv_pairs(rest);
            let t_s = kv
                .get("t_ms")
                .and_then(|v| num(v))
                .map(|v| v / 1000.0)
                .or(l.kernel_s)
                .or(l.host_s)
                .unwrap_or(0.0);
            let progress = kv.get("progress").and_then(|v| num(v)).unwrap_or(0.0);
            let key = kv.get("scenario").cloned().unwrap_or_default();
            let prev = hbs.iter().rev().find(|h| h.key == key);
            if before_cut && prev.is_none_or(|p| progress > p.progress) {
                last_progress = Some(l);
            }
            hbs.push(Heartbeat {
                host_s: l.host_s,
                t_s,
                progress,
                key,
            });
            continue;
        }
        // ept-kiszka (cfs-stall) samples once a second: "ept-kiszka: t=12s
        // reader_iters/s=N ...": a heartbeat whose progress is the reader's
        // iteration count, so its stalls are counted like the module's.
        if let Some(rest) = body.strip_prefix("ept-kiszka: t=") {
            let kv = kv_pairs(rest);
            let t_s = rest.split('s').next().and_then(num);
            if let (Some(t_s), Some(iters)) = (t_s, kv.get("reader_iters/s").and_then(|v| num(v))) {
                let key = "cfs-stall".to_string();
                let prev = hbs
                    .iter()
                    .rev()
                    .find(|h| h.key == key)
                    .map_or(0.0, |h| h.progress);
                if before_cut && iters > 0.0 {
                    last_progress = Some(l);
                }
                hbs.push(Heartbeat {
                    host_s: l.host_s,
                    t_s,
                    progress: prev + iters,
                    key,
                });
                continue;
            }
        }
        if let Some(rest) = body.strip_prefix("# metrics ") {
            let kv = kv_pairs(rest);
            // Histogram as `hist_us=lo:count,lo:count` (epoll_torture) or
            // one `hist_us_<lo>=count` key per bucket.
            if let Some(h) = kv.get("hist_us") {
                for item in h.split(',') {
                    if let Some((lo, n)) = item.split_once(':') {
                        if let (Ok(lo), Some(n)) = (lo.parse::<u64>(), num(n)) {
                            *m.hist_us.entry(lo).or_default() += n as u64;
                        }
                    }
                }
            }
            for (k, v) in &kv {
                if let Some(lo) = k.strip_prefix("hist_us_") {
                    if let (Ok(lo), Some(n)) = (lo.parse::<u64>(), num(v)) {
                        *m.hist_us.entry(lo).or_default() += n as u64;
                    }
                }
            }
            if let (Some(th), Some(ev)) = (first_num(&kv, THREAD_KEYS), first_num(&kv, TPUT_KEYS)) {
                m.throughput.push(ThroughputPoint {
                    threads: th,
                    events_per_ms: ev,
                });
            }
            m.lines.push(kv);
            if before_cut {
                last_progress = Some(l);
            }
            continue;
        }
        if let Some(test) = body
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(": Test terminated by timeout"))
        {
            timed_out.insert(test.to_string(), l);
        }
        if let Some(rest) = body
            .strip_prefix("EPT-SELFTEST-RERUN ")
            .or_else(|| t.find("EPT-SELFTEST-RERUN ").map(|i| &t[i + 19..]))
        {
            let kv = kv_pairs(rest);
            if let Some(test) = kv.get("test") {
                let rc = kv.get("rc").and_then(|v| num(v)).unwrap_or(-1.0);
                reruns.insert(
                    test.clone(),
                    (rc, kv.get("seconds").and_then(|v| num(v)), l),
                );
            }
            if before_cut {
                last_progress = Some(l);
            }
            continue;
        }
        if let Some(rest) = body
            .strip_prefix("EPT-SELFTEST ")
            .or_else(|| t.find("EPT-SELFTEST ").map(|i| &t[i + 13..]))
        {
            let kv = kv_pairs(rest);
            let name = kv.get("name").cloned().unwrap_or_else(|| "?".into());
            // The guest's tally after long-timeout reruns, when it has one.
            let rc = kv
                .get("rc_after_reruns")
                .or(kv.get("rc"))
                .and_then(|v| num(v))
                .unwrap_or(-1.0);
            let secs = kv.get("seconds").and_then(|v| num(v));
            // 0 pass, 4 KSFT_SKIP, anything else a failure (>= 124: killed by timeout).
            let ok = rc == 0.0 || rc == 4.0;
            if !ok {
                // Judged after the TAP lines: a binary whose only failures
                // are known emulation timeouts does not fail the run.
                let why = if rc >= 124.0 { " (timeout)" } else { "" };
                binary_failures.push((format!("epoll selftest {name} rc={rc}{why}"), l));
            }
            m.selftests.push(SelftestResult {
                name,
                ok,
                detail: format!("rc={rc}"),
                seconds: secs,
            });
            if before_cut {
                last_progress = Some(l);
            }
            continue;
        }
        if let Some((ok, _n, name, dir)) = parse_tap_result(body) {
            if module.is_some() {
                ktap.push((l, ok, name, dir));
            } else {
                tap_user.push((l, ok, name, dir));
            }
            if before_cut {
                last_progress = Some(l);
            }
            continue;
        }
        // Any other user-space output is activity too (not kernel messages,
        // which keep coming from a stalled kernel).
        if before_cut && l.kernel_s.is_none() && l.host_s.is_some() && !t.trim().is_empty() {
            last_progress = Some(l);
        }
    }
    if rt_throttled > 0 {
        m.values.insert("rt_throttled".into(), rt_throttled as f64);
    }

    // --- module KTAP ---
    let finished = steps_end.is_some() || !ktap.is_empty();
    for (l, ok, name, dir) in &ktap {
        let skip = dir.to_ascii_uppercase().starts_with("SKIP");
        if !*ok && dir.contains("hang") {
            // The module's watchdog saw no consumer progress for stall_ms:
            // the lock cycle closed and only the harness (rmmod) breaks it.
            c.add(
                Verdict::Hang,
                format!("KTAP not ok: {name} # {dir}"),
                Some(l),
            );
        } else if !*ok {
            c.add(spec.not_ok, format!("KTAP not ok: {name} # {dir}"), Some(l));
        } else if skip {
            c.add(
                Verdict::Error,
                format!("module skipped {name}: {dir}"),
                Some(l),
            );
        } else {
            c.add(Verdict::Pass, format!("KTAP ok: {name}"), Some(l));
        }
    }

    // --- user-space TAP (kernel epoll selftests) ---
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    let (mut timeouts_passed, mut timeouts_known) = (0, 0);
    for (l, ok, name, dir) in &tap_user {
        let is_skip = dir.to_ascii_uppercase().starts_with("SKIP");
        if is_skip {
            skip += 1;
        } else if *ok {
            pass += 1;
        } else {
            // kselftest names it `global.epoll65`; the rerun line `epoll65`.
            let short = name.rsplit('.').next().unwrap_or(name);
            match reruns.get(short) {
                Some((rc, secs, rl)) if *rc == 0.0 => {
                    timeouts_passed += 1;
                    let secs = secs.unwrap_or(0.0);
                    m.values.insert(format!("selftest_{short}_long_s"), secs);
                    notes.push(format!(
                        "selftest {name} exceeded the harness timeout under emulation; rerun alone with a long timeout it passed in {secs:.1} s ({})",
                        rl.text.trim()
                    ));
                }
                Some((rc, secs, rl)) => {
                    fail += 1;
                    c.add(
                        Verdict::Fail,
                        format!(
                            "selftest not ok: {name}, and again with a long timeout (rc={rc}, {:.1} s)",
                            secs.unwrap_or(0.0)
                        ),
                        Some(rl),
                    );
                }
                None if known_failure(spec, &arch, &variant, short).is_some() => {
                    let (why, own) =
                        known_failure(spec, &arch, &variant, short).unwrap_or_default();
                    let (kind, k) = if timed_out.contains_key(short) {
                        ("harness timeout", "timeout")
                    } else {
                        ("failure", "fail")
                    };
                    match &spec.baseline_failures {
                        Some(b) if !own && b.get(short).map(|x| x.as_str()) != Some(k) => {
                            fail += 1;
                            let base = match b.get(short) {
                                Some(x) => format!(
                                    "the unmodified kernel (baseline) failed it differently ({x})"
                                ),
                                None => "it passed on the unmodified kernel (baseline)".to_string(),
                            };
                            c.add(
                                Verdict::Fail,
                                format!("selftest not ok: {name} ({kind}), but {base}"),
                                Some(l),
                            );
                        }
                        _ if own => {
                            timeouts_known += 1;
                            notes.push(format!(
                                "FINDING: selftest {name} ({kind}) on {variant}: {why}"
                            ));
                        }
                        b => {
                            timeouts_known += 1;
                            let also = if b.is_some() {
                                "; the unmodified kernel (baseline) fails it too"
                            } else {
                                ""
                            };
                            notes.push(format!(
                                "selftest {name}: {kind}, a known emulation failure ({why}){also}"
                            ));
                        }
                    }
                }
                None => {
                    fail += 1;
                    let what = if dir.is_empty() {
                        format!("selftest not ok: {name}")
                    } else {
                        format!("selftest not ok: {name} # {dir}")
                    };
                    c.add(Verdict::Fail, what, Some(l));
                }
            }
        }
        if !m.selftests.iter().any(|s| &s.name == name) && !name.is_empty() {
            m.selftests.push(SelftestResult {
                name: name.clone(),
                ok: *ok,
                detail: dir.clone(),
                seconds: None,
            });
        }
    }
    // Where selftests only inform (the debug boot), their failures are notes.
    if !spec.selftests_gate {
        let (informational, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut c.findings)
            .into_iter()
            .partition(|f| f.verdict == Verdict::Fail && f.what.starts_with("selftest not ok"));
        c.findings = kept;
        for f in informational {
            notes.push(format!("{} (informational here)", f.what));
        }
    }
    // Every failure of the binaries was excused above (known emulation
    // timeouts): their exit status, and the steps', then says nothing more.
    let selftest_failures_excused =
        (fail == 0 && timeouts_known + timeouts_passed > 0 && spec.kind == Kind::Kselftest)
            || !spec.selftests_gate;
    let excuse = if spec.selftests_gate {
        "only known emulation failures"
    } else {
        "selftests inform only here"
    };
    for (what, l) in &binary_failures {
        if selftest_failures_excused {
            notes.push(format!("{what}: {excuse}"));
        } else {
            c.add(Verdict::Fail, what.clone(), Some(l));
        }
    }
    if !tap_user.is_empty() {
        m.values.insert("selftests_pass".into(), pass as f64);
        m.values.insert("selftests_fail".into(), fail as f64);
        m.values.insert("selftests_skip".into(), skip as f64);
        m.values.insert(
            "selftests_timeout_passed_on_rerun".into(),
            timeouts_passed as f64,
        );
        m.values.insert(
            "selftests_known_emulation_failures".into(),
            timeouts_known as f64,
        );
    }

    // --- latency ---
    let mut max_us = None::<f64>;
    let (mut p99, mut p50) = (None::<f64>, None::<f64>);
    for kv in &m.lines {
        if let Some(v) = first_num(kv, MAX_KEYS) {
            max_us = Some(max_us.map_or(v, |x| x.max(v)));
        }
        if let Some(v) = first_num(kv, P99_KEYS) {
            p99 = Some(p99.map_or(v, |x| x.max(v)));
        }
        if let Some(v) = first_num(kv, P50_KEYS) {
            p50 = Some(p50.map_or(v, |x| x.max(v)));
        }
    }
    p50 = p50.or_else(|| hist_percentile(&m.hist_us, 0.50));
    p99 = p99.or_else(|| hist_percentile(&m.hist_us, 0.99));
    if max_us.is_none() {
        max_us = m
            .hist_us
            .keys()
            .next_back()
            .map(|lo| (lo * 2).max(2) as f64);
    }
    for (k, v) in [
        ("lat_p50_us", p50),
        ("lat_p99_us", p99),
        ("lat_max_us", max_us),
    ] {
        if let Some(v) = v {
            m.values.insert(k.into(), v);
        }
    }
    let th_line = m
        .lines
        .iter()
        .find_map(|kv| kv.get("threshold_us").and_then(|v| num(v)))
        .filter(|v| *v > 0.0);
    if let (Some(th), Some(mx)) = (th_line.or(spec.latency_threshold_us), max_us) {
        if mx > th {
            let l = m
                .lines
                .iter()
                .position(|kv| first_num(kv, MAX_KEYS).is_some_and(|v| v > th));
            let line = l.and_then(|_| {
                log.lines.iter().find(|x| {
                    x.text.contains("# metrics ")
                        && first_num(&kv_pairs(&x.text), MAX_KEYS).is_some_and(|v| v > th)
                })
            });
            c.add(
                Verdict::Inversion,
                format!("latency max {mx:.0} us over the threshold {th:.0} us"),
                line,
            );
        }
    }

    // --- heartbeats and stalls ---
    let mut keys: Vec<&str> = hbs.iter().map(|h| h.key.as_str()).collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    let (mut n, mut smax, mut stot, mut sopen) = (0usize, 0.0f64, 0.0f64, 0.0f64);
    let mut gap_max = 0.0f64;
    for k in &keys {
        let seq: Vec<&Heartbeat> = hbs.iter().filter(|h| h.key == *k).collect();
        let (a, b, cc, d) = stalls(&seq, spec.stall_min_s, finished && hang.is_none());
        n += a;
        smax = smax.max(b);
        stot += cc;
        sopen = sopen.max(d);
        for w in seq.windows(2) {
            if let (Some(x), Some(y)) = (w[0].host_s, w[1].host_s) {
                gap_max = gap_max.max(y - x);
            }
        }
    }
    if !hbs.is_empty() {
        m.values.insert("heartbeats".into(), hbs.len() as f64);
        m.values.insert("stalls".into(), n as f64);
        m.values.insert("stall_max_s".into(), round3(smax));
        m.values.insert("stall_total_s".into(), round3(stot));
        m.values.insert("hb_gap_max_s".into(), round3(gap_max));
        if sopen > 0.0 {
            m.values.insert("stall_open_s".into(), round3(sopen));
        }
        if let Some(last) = hbs.last() {
            m.values.insert("progress_last".into(), last.progress);
        }
    }
    if let Some(u) = guest_up.and_then(|l| l.host_s) {
        m.values.insert("boot_s".into(), u);
    }
    if let (Some(b), Some((e, rc))) = (steps_begin, steps_end) {
        if let (Some(x), Some(y)) = (b.host_s, e.host_s) {
            m.values.insert("steps_s".into(), round3(y - x));
        }
        m.values.insert("rc".into(), rc as f64);
    }

    // --- harness and host outcome ---
    if let Some(l) = missing_script {
        c.add(Verdict::Error, "steps script missing in the guest", Some(l));
    }
    if let Some(note) = hang {
        let end = note.after_s.or(log.last_host_s()).unwrap_or(0.0);
        let started = steps_begin.or(guest_up).filter(|l| l.no < cut);
        match started {
            None => c.add(
                Verdict::Error,
                format!(
                    "guest never booted (no 'EPT: guest up' before the host gave up: {})",
                    note.text
                ),
                None,
            ),
            Some(s) => {
                let p = last_progress.unwrap_or(s);
                let p_s = p.host_s.unwrap_or(0.0);
                let idle = end - p_s;
                if idle >= spec.hang_after_s {
                    let hb_after: Vec<&Heartbeat> = hbs
                        .iter()
                        .filter(|h| h.host_s.is_some_and(|x| x > p_s))
                        .collect();
                    let how = if hbs.is_empty() {
                        "no heartbeat; no output after the last progress".to_string()
                    } else if hb_after.is_empty() {
                        format!("no heartbeat for {idle:.0} s")
                    } else {
                        format!(
                            "{} heartbeat(s) with progress stuck at {}",
                            hb_after.len(),
                            hb_after[0].progress
                        )
                    };
                    c.add(
                        Verdict::Hang,
                        format!("no workload progress for {idle:.0} s before the host gave up ({how}); last progress:"),
                        Some(p),
                    );
                    if let Some(f) = c.findings.last_mut() {
                        f.lines.push(format!("# host: {}", note.text));
                    }
                } else {
                    c.add(
                        Verdict::Error,
                        format!("host deadline reached while the workload still progressed ({idle:.0} s before it): deadline too short; {}", note.text),
                        Some(p),
                    );
                }
            }
        }
    } else if steps_end.is_none() {
        let what = match (guest_up, log.exit_note()) {
            (None, Some(n)) => format!("guest never booted ({})", n.text),
            (None, None) => "guest never booted (log ends before 'EPT: guest up')".into(),
            (Some(_), Some(n)) => format!("guest exited without finishing its steps ({})", n.text),
            (Some(_), None) => {
                "log ends before 'EPT: steps end' (truncated or still running)".into()
            }
        };
        c.add(Verdict::Error, what, log.lines.last());
    }
    if let Some((l, rc)) = steps_end {
        if rc != 0 && selftest_failures_excused {
            notes.push(format!("steps exited rc={rc}: {excuse}"));
        } else if rc != 0 {
            c.add(Verdict::Fail, format!("steps exited rc={rc}"), Some(l));
        } else {
            c.add(Verdict::Pass, "steps exited rc=0", Some(l));
        }
        if spec.kind == Kind::Module && ktap.is_empty() {
            c.add(
                Verdict::Error,
                "no KTAP result from epoll_torture (module not loaded or scenario unknown?)",
                Some(l),
            );
        }
        if spec.kind == Kind::Kselftest && tap_user.is_empty() && m.selftests.is_empty() {
            c.add(
                Verdict::Error,
                "no selftest results (TAP or EPT-SELFTEST)",
                Some(l),
            );
        }
    }

    // --- who waits on whom ---
    let tasks = sysrq::parse_tasks(&log.lines);
    let waits = sysrq::summarize(&tasks);

    let mut findings = c.findings;
    findings.sort_by_key(|f| std::cmp::Reverse(f.verdict.rank()));
    let verdict = findings.first().map(|f| f.verdict).unwrap_or(Verdict::Pass);
    let reason = findings
        .iter()
        .filter(|f| f.verdict == verdict)
        .map(|f| {
            if f.count > 1 {
                format!("{} (x{})", f.what, f.count)
            } else {
                f.what.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reason = if reason.is_empty() {
        "nothing wrong found".into()
    } else {
        reason
    };
    Judgement {
        verdict,
        reason,
        findings,
        waits,
        notes,
        metrics: m,
        guest_release,
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Guess the scenario from a log: the header's `steps=` (e.g.
/// `x86_64-rwlock-stall-r1.sh`) or the file name `<arch>-<variant>-<scenario>...`.
pub fn guess_scenario(log: &ConsoleLog, path: &str, known: &[String]) -> Option<String> {
    let mut cands = Vec::new();
    if let Some(s) = log.header.get("steps") {
        cands.push(s.clone());
    }
    cands.push(
        std::path::Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default(),
    );
    for c in cands {
        let stem = c.trim_end_matches(".sh").trim_end_matches(".log");
        // Longest known name that appears as a dash-separated part.
        let mut best: Option<&String> = None;
        for k in known {
            let hit = stem == k
                || stem.starts_with(&format!("{k}-"))
                || stem.ends_with(&format!("-{k}"))
                || stem.contains(&format!("-{k}-"));
            if hit && best.is_none_or(|b| k.len() > b.len()) {
                best = Some(k);
            }
        }
        if let Some(b) = best {
            return Some(b.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_results() {
        assert_eq!(
            parse_tap_result("not ok 1 inversion # bug detected: max 20100 us"),
            Some((
                false,
                1,
                "inversion".into(),
                "bug detected: max 20100 us".into()
            ))
        );
        assert_eq!(
            parse_tap_result("ok 65 epoll.epoll65"),
            Some((true, 65, "epoll.epoll65".into(), "".into()))
        );
        assert_eq!(
            parse_tap_result("ok 3 # SKIP no RT"),
            Some((true, 3, "".into(), "SKIP no RT".into()))
        );
        assert_eq!(parse_tap_result("okay 1 x"), None);
        assert_eq!(parse_tap_result("ok x"), None);
    }

    #[test]
    fn kernel_classes() {
        let c = |s| classify_kernel(s).map(|x| x.0);
        assert_eq!(
            c("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
            Some(Verdict::Stall)
        );
        assert_eq!(
            c("rcu: INFO: rcu_preempt self-detected stall on CPU"),
            Some(Verdict::Stall)
        );
        assert_eq!(
            c("rcu: rcu_preempt kthread starved for 10502 jiffies! g1 f0x0"),
            Some(Verdict::Stall)
        );
        assert_eq!(
            c("INFO: task cat:77 blocked for more than 15 seconds."),
            Some(Verdict::Stall)
        );
        assert_eq!(
            c("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]"),
            Some(Verdict::Stall)
        );
        assert_eq!(
            c("BUG: kernel NULL pointer dereference, address: 0000000000000000"),
            Some(Verdict::Crash)
        );
        assert_eq!(
            c("Oops: 0002 [#1] PREEMPT_RT SMP NOPTI"),
            Some(Verdict::Crash)
        );
        assert_eq!(
            c("WARNING: possible circular locking dependency detected"),
            Some(Verdict::Crash)
        );
        assert_eq!(
            c("WARNING: CPU: 1 PID: 9 at fs/eventpoll.c:1 ep_poll+0x1/0x2"),
            Some(Verdict::Crash)
        );
        assert_eq!(
            c("Kernel panic - not syncing: hung_task: blocked tasks"),
            Some(Verdict::Crash)
        );
        assert_eq!(c("sched: RT throttling activated"), None);
        assert_eq!(c("epoll_torture: # metrics scenario=x"), None);
    }

    #[test]
    fn percentiles() {
        let h: BTreeMap<u64, u64> = [(0, 10), (1, 80), (16, 9), (16384, 1)]
            .into_iter()
            .collect();
        assert_eq!(hist_percentile(&h, 0.5), Some(2.0));
        assert_eq!(hist_percentile(&h, 0.05), Some(2.0));
        assert_eq!(hist_percentile(&h, 0.99), Some(32.0));
        assert_eq!(hist_percentile(&h, 1.0), Some(32768.0));
        assert_eq!(hist_percentile(&BTreeMap::new(), 0.5), None);
    }

    #[test]
    fn stall_runs() {
        let mk = |v: &[(f64, f64)]| -> Vec<Heartbeat> {
            v.iter()
                .map(|(t, p)| Heartbeat {
                    host_s: Some(*t),
                    t_s: *t,
                    progress: *p,
                    key: String::new(),
                })
                .collect()
        };
        let hb = mk(&[
            (1.0, 10.0),
            (2.0, 20.0),
            (3.0, 20.0),
            (4.0, 20.0),
            (5.0, 30.0),
            (6.0, 30.0),
        ]);
        let r: Vec<&Heartbeat> = hb.iter().collect();
        // 2..5 recovered (3 s); 5..6 still flat at the end: open when unfinished.
        assert_eq!(stalls(&r, 1.0, false), (1, 3.0, 3.0, 1.0));
        assert_eq!(stalls(&r, 1.0, true), (2, 3.0, 4.0, 0.0));
        assert_eq!(stalls(&r, 5.0, true), (0, 0.0, 0.0, 0.0));
    }
}
