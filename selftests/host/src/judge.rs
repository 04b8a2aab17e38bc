//! Judging a console log: from typed events to one verdict per run.
//!
//! The pipeline: [`ConsoleLog::parse`] counts every kernel record once
//! (console copy and `kmsg:` echo folded), [`crate::events::events`] turns
//! each line and host note into one typed event (kernel badness from one
//! pattern table), the log is split into runs (`EPT: run begin/end`
//! markers; none: one run), and the small rules in [`crate::rules`] map each
//! run's events to findings. The highest finding wins:
//!
//! | verdict   | given when |
//! |-----------|------------|
//! | CRASH     | Oops, `BUG:`, kernel panic, `WARNING:`, lockdep splats, sleeping in atomic |
//! | HANG      | the host deadline (or idle limit) was hit and heartbeat progress had stopped for `hang_after_s` before it |
//! | STALL     | the kernel reported an RCU stall, a hung task, a soft/hard/workqueue lockup; or a producer's `not ok ... # bug detected: hang` |
//! | LOST_WAKEUP, FALSE_NEGATIVE, INVERSION | a producer's `not ok ... # bug detected: <kind>` (kind table in `events.rs`) |
//! | ERROR     | the harness failed: never booted, script missing, QEMU died, deadline too short for a progressing workload, a producer's `# error:`, no result; never blamed on the kernel |
//! | FAIL      | kselftest `not ok` (incl. timeout), `EPT-SELFTEST rc!=0`, the run or plan exited non-zero |
//! | PASS      | none of the above (a producer's `# SKIP` is a PASS with a note) |
//!
//! Raw latency maxima, heartbeat stalls that recovered, RT throttling and
//! host load are metrics and notes, never a verdict on their own: the
//! producer (module or guest program) is the authority on what it measured.

use crate::data::{ScenarioSpec, Scenarios, Verdict};
use crate::events::{events, Event, HostEvent, Kind};
use crate::log::{quote, ConsoleLog, LogLine};
use crate::rules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::events::{classify_kernel, parse_tap_result};

/// One reason for a verdict, with the log lines that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    pub what: String,
    pub lines: Vec<String>,
    /// How many lines of this kind the run had (only some are quoted).
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

/// The result a producer reported for one plan (the first one: a second
/// result for the same plan is a note).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapResult {
    /// `epoll_torture` or `ept-wakeup`.
    pub producer: String,
    /// Test name (`inversion`, `stall`, ...).
    pub name: String,
    pub ok: bool,
    /// After ` # `: `bug detected: <kind>: ...`, `error: ...`, `SKIP ...`.
    pub directive: String,
    /// `<kind>` of `bug detected: <kind>: ...`, when the producer gave one.
    pub kind: Option<String>,
    /// What the judge made of it.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Derived numbers (keys below); absent when the run had no such data.
    ///
    /// - latency (the module's histogram and metrics lines): `lat_p50_us`,
    ///   `lat_p99_us`, `lat_max_us`, `hist_total`, `calls`;
    /// - heartbeats: `heartbeats`, `stalls` (runs of heartbeats without
    ///   progress lasting >= stall_min_s that recovered), `stall_max_s`,
    ///   `stall_total_s`, `stall_open_s` (a stall still going at the end),
    ///   `hb_gap_max_s`, `progress_last`;
    /// - producers: `results` (results counted, one per plan), `plans`;
    /// - the boot: `boot_s`, `run_s` (and `steps_s`, the same), `rc`,
    ///   `rt_throttled`, `kmsg_merged`, `kmsg_only`;
    /// - selftests: `selftests_pass/fail/skip`,
    ///   `selftests_timeout_passed_on_rerun`, `selftests_known_emulation_failures`,
    ///   `selftest_<name>_long_s`;
    /// - host: `host_load1_start`, `host_load1_end`, `qemu_cpu_per_wall`,
    ///   `vcpu_starved_pct`.
    pub values: BTreeMap<String, f64>,
    /// Latency histogram: log2 bucket lower bound (us) -> count.
    pub hist_us: BTreeMap<u64, u64>,
    pub throughput: Vec<ThroughputPoint>,
    pub selftests: Vec<SelftestResult>,
    /// Every `# metrics` line as printed (key -> value).
    pub lines: Vec<BTreeMap<String, String>>,
    /// The producers' results, one per plan, in log order.
    #[serde(default)]
    pub results: Vec<TapResult>,
}

/// The verdict for one run, with its evidence.
///
/// `ept judge --json` and report.json carry these fields (stable names;
/// new fields are only ever added):
///
/// - `scenario`, `repeat`: which run (a log without run markers is one run,
///   repeat 1, of the scenario given or guessed from its name);
/// - `verdict`: `PASS`, `FAIL`, `ERROR`, `INVERSION`, `FALSE_NEGATIVE`,
///   `LOST_WAKEUP`, `STALL`, `HANG`, `CRASH` (highest finding wins);
/// - `reason`: one line, the `what` of the findings with the winning verdict;
/// - `findings`: `[{verdict, what, lines, count}]`, highest verdict first,
///   `lines` quoting up to three log lines as `[+host s] [kernel s] text`;
/// - `waits`: who waits on whom, from SysRq-w/-t dumps and hung-task reports;
/// - `notes`: everything reported but not a verdict (second results, SKIPs,
///   known emulation failures, FINDINGs of a variant, latency over the
///   threshold, host load);
/// - `metrics`: `values` (see [`Metrics::values`]), `hist_us`, `throughput`,
///   `selftests`, `lines` (every `# metrics` line), `results` (one per plan:
///   `{producer, name, ok, directive, kind, verdict}`);
/// - `guest_release`: `uname -r` as the guest printed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    #[serde(default)]
    pub scenario: String,
    #[serde(default = "one")]
    pub repeat: u32,
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

fn one() -> u32 {
    1
}

/// Percentile from log2 buckets: the upper bound (2*lo) of the bucket that
/// reaches the quantile (conservative), or 2 for the [0,2) bucket.
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

/// The kernel selftests a log shows failing: short test name (`epoll65`)
/// -> "timeout" (killed by the harness) or "fail". Used as the baseline
/// when judging the other variants against the unmodified kernel.
pub fn selftest_failures(log: &ConsoleLog) -> BTreeMap<String, String> {
    let mut timed_out = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    for e in events(log) {
        match e.kind {
            Kind::SelftestTimeout { test } => {
                timed_out.insert(test);
            }
            Kind::TapResult {
                producer: crate::events::Producer::Kselftest,
                tap,
            } if !tap.ok && !tap.is_skip() => {
                let short = tap.name.rsplit('.').next().unwrap_or(&tap.name).to_string();
                let kind = if timed_out.contains(&short) {
                    "timeout"
                } else {
                    "fail"
                };
                out.insert(short, kind.to_string());
            }
            _ => {}
        }
    }
    out
}

/// Which run: scenario and repeat index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId {
    pub scenario: String,
    pub repeat: u32,
}

/// What one boot printed outside its runs.
#[derive(Debug, Default)]
pub(crate) struct Boot<'a> {
    pub guest_up: Option<&'a Event>,
    pub release: Option<String>,
    pub cpus: Option<u32>,
    pub plan_begin: Option<&'a Event>,
    /// The runs the plan announced (`EPT: plan runs=...`), if it did.
    pub planned: Option<Vec<RunId>>,
    pub plan_end: Option<(&'a Event, i64)>,
    pub deadline: Option<&'a Event>,
    pub kill: Option<&'a Event>,
    pub exit: Option<&'a Event>,
    pub load_start: Option<&'a Event>,
    pub load_end: Option<&'a Event>,
}

/// One run's share of the log.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    pub id: RunId,
    /// `run begin`, or the plan's begin for a log without run markers.
    pub begin: Option<&'a Event>,
    /// `run end` (or the plan's end) and its rc.
    pub end: Option<(&'a Event, i64)>,
    /// The run's events (boot-level ones excluded).
    pub events: Vec<&'a Event>,
    /// Bracketed by run markers (else: the whole plan is the run).
    pub marked: bool,
    /// The host's deadline note belongs to this run.
    pub takes_deadline: bool,
    /// A later run began, so this one was left (its end marker missing).
    pub superseded: bool,
    /// First and last line number of the run (for task dumps).
    pub span: (usize, usize),
}

fn is_boot_level(k: &Kind) -> bool {
    matches!(
        k,
        Kind::GuestUp { .. }
            | Kind::PlanBegin
            | Kind::PlanRuns { .. }
            | Kind::PlanEnd { .. }
            | Kind::Host(_)
    )
}

fn boot_of(evs: &[Event]) -> Boot<'_> {
    let mut b = Boot::default();
    for e in evs {
        match &e.kind {
            Kind::GuestUp { release, cpus } if b.guest_up.is_none() => {
                b.guest_up = Some(e);
                b.release = release.clone();
                b.cpus = *cpus;
            }
            Kind::PlanBegin if b.plan_begin.is_none() => b.plan_begin = Some(e),
            Kind::PlanRuns { runs } if b.planned.is_none() => {
                b.planned = Some(
                    runs.iter()
                        .map(|(s, n)| RunId {
                            scenario: s.clone(),
                            repeat: *n,
                        })
                        .collect(),
                )
            }
            Kind::PlanEnd { rc } => b.plan_end = Some((e, *rc)),
            Kind::Host(h) => {
                let slot = match h {
                    HostEvent::Deadline { .. } => &mut b.deadline,
                    HostEvent::Kill { .. } => &mut b.kill,
                    HostEvent::Exit { .. } => &mut b.exit,
                    HostEvent::LoadStart { .. } => &mut b.load_start,
                    HostEvent::LoadEnd { .. } => &mut b.load_end,
                    HostEvent::Other => continue,
                };
                slot.get_or_insert(e);
            }
            _ => {}
        }
    }
    // Old logs: a HANG kill without a deadline note is the deadline.
    if b.deadline.is_none() {
        b.deadline = b.kill;
    }
    b
}

/// Split the events into runs. Kernel lines after `run end` of run k and
/// before `run begin` of run k+1 belong to run k; anything before the first
/// run belongs to the first.
fn parts<'a>(evs: &'a [Event], boot: &Boot<'a>, fallback: &str) -> Vec<Part<'a>> {
    let last_no = evs.last().map_or(0, |e| e.no);
    let begins: Vec<usize> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, Kind::RunBegin { .. }))
        .map(|(i, _)| i)
        .collect();
    if begins.is_empty() {
        return vec![Part {
            id: RunId {
                scenario: fallback.to_string(),
                repeat: 1,
            },
            begin: boot.plan_begin,
            end: boot.plan_end,
            events: evs.iter().filter(|e| !is_boot_level(&e.kind)).collect(),
            marked: false,
            takes_deadline: boot.deadline.is_some(),
            superseded: false,
            span: (0, last_no),
        }];
    }
    let mut out: Vec<Part> = Vec::new();
    for (k, &b) in begins.iter().enumerate() {
        let from = if k == 0 { 0 } else { b };
        let to = begins.get(k + 1).copied().unwrap_or(evs.len());
        let Kind::RunBegin { scenario, repeat } = &evs[b].kind else {
            continue;
        };
        let id = RunId {
            scenario: scenario.clone(),
            repeat: *repeat,
        };
        let mut end = None;
        let mut events = Vec::new();
        for e in &evs[from..to] {
            match &e.kind {
                Kind::RunEnd {
                    scenario,
                    repeat,
                    rc,
                } if end.is_none() && *scenario == id.scenario && *repeat == id.repeat => {
                    end = Some((e, *rc));
                }
                k if is_boot_level(k) => {}
                _ => events.push(e),
            }
        }
        out.push(Part {
            id,
            begin: Some(&evs[b]),
            end,
            events,
            marked: true,
            takes_deadline: false,
            superseded: k + 1 < begins.len(),
            span: (
                if k == 0 { 0 } else { evs[b].no },
                evs.get(to).map_or(last_no, |e| e.no.saturating_sub(1)),
            ),
        });
    }
    if boot.deadline.is_some() {
        // The run that began but did not end takes the deadline; when
        // every run ended, the last one does.
        let i = out
            .iter()
            .position(|p| p.end.is_none() && !p.superseded)
            .unwrap_or(out.len() - 1);
        out[i].takes_deadline = true;
    }
    out
}

/// Everything a rule sees about one run.
pub(crate) struct Ctx<'a> {
    pub log: &'a ConsoleLog,
    pub spec: &'a ScenarioSpec,
    pub arch: String,
    pub variant: String,
    pub boot: &'a Boot<'a>,
    pub run: &'a Part<'a>,
}

impl Ctx<'_> {
    pub fn line(&self, e: &Event) -> Option<&LogLine> {
        e.line.map(|i| &self.log.lines[i])
    }
}

/// What the rules produce for one run.
#[derive(Default)]
pub(crate) struct Out {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    pub metrics: Metrics,
    /// Set by the selftest rule: the run's non-zero exit is excused (why).
    pub exit_excused: Option<&'static str>,
}

impl Out {
    /// Add a finding; the same (verdict, what) is counted, quoting up to 3 lines.
    pub fn add(&mut self, v: Verdict, what: impl Into<String>, line: Option<&LogLine>) {
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

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    pub fn set(&mut self, k: &str, v: f64) {
        self.metrics.values.insert(k.to_string(), v);
    }
}

fn finish(c: &Ctx, mut o: Out) -> Judgement {
    let lines: Vec<LogLine> = c
        .log
        .lines
        .iter()
        .filter(|l| l.no >= c.run.span.0 && l.no <= c.run.span.1)
        .cloned()
        .collect();
    let waits = crate::sysrq::summarize(&crate::sysrq::parse_tasks(&lines));
    // TRACE=1: the root cause of each dumped trace window (docs/trace.md).
    let lock_type = c.log.header.get("LOCK_TYPE").map(String::as_str);
    for w in crate::ftrace::windows(&lines) {
        if let Some(rc) = crate::rootcause::root_cause(&w, lock_type) {
            o.note(format!("{} ({}): {rc}", crate::ftrace::NOTE, w.reason));
        }
    }
    let mut findings = std::mem::take(&mut o.findings);
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
    Judgement {
        scenario: c.run.id.scenario.clone(),
        repeat: c.run.id.repeat,
        verdict,
        reason: if reason.is_empty() {
            "nothing wrong found".into()
        } else {
            reason
        },
        findings,
        waits,
        notes: o.notes,
        metrics: o.metrics,
        guest_release: c.boot.release.clone(),
    }
}

fn not_run(id: &RunId, why: &str, release: Option<String>) -> Judgement {
    Judgement {
        scenario: id.scenario.clone(),
        repeat: id.repeat,
        verdict: Verdict::Error,
        reason: why.to_string(),
        findings: vec![Finding {
            verdict: Verdict::Error,
            what: why.to_string(),
            lines: vec![],
            count: 1,
        }],
        waits: vec![],
        notes: vec![],
        metrics: Metrics::default(),
        guest_release: release,
    }
}

/// The lines of one run of a boot's log (its span as the judge sees it:
/// after a run's `run end`, kernel lines up to the next `run begin`
/// belong to it, so a SysRq-z dump after a hang does).
pub fn run_lines(log: &ConsoleLog, scenario: &str, repeat: u32) -> Vec<LogLine> {
    let evs = events(log);
    let boot = boot_of(&evs);
    let runs = parts(&evs, &boot, scenario);
    let Some(p) = runs
        .iter()
        .find(|p| p.id.scenario == scenario && p.id.repeat == repeat)
        .or_else(|| runs.iter().find(|p| !p.marked))
    else {
        return vec![];
    };
    log.lines
        .iter()
        .filter(|l| l.no >= p.span.0 && l.no <= p.span.1)
        .cloned()
        .collect()
}

/// Judge every run of one boot.
///
/// `spec_of` gives the scenario's spec (the caller may set a baseline on
/// it); `fallback` is the scenario of a log without run markers; `planned`
/// (the plan's run list; by default the log's `EPT: plan runs=...` line,
/// when it has one) adds an ERROR for each planned run the log never began: "not run: an earlier run in this boot did not finish"
/// after a run that began and never ended, "not run: the boot ended before
/// it" otherwise. Runs are returned in log order, then the ones not run.
pub fn judge_plan(
    log: &ConsoleLog,
    spec_of: &dyn Fn(&str) -> ScenarioSpec,
    fallback: &str,
    planned: Option<&[RunId]>,
) -> Vec<Judgement> {
    let evs = events(log);
    let boot = boot_of(&evs);
    let arch = log.header.get("ARCH").cloned().unwrap_or_default();
    let variant =
        crate::data::canon_variant(log.header.get("VARIANT").map_or("", |v| v)).to_string();
    let runs = parts(&evs, &boot, fallback);
    let mut out = Vec::new();
    for run in &runs {
        let spec = spec_of(&run.id.scenario);
        let c = Ctx {
            log,
            spec: &spec,
            arch: arch.clone(),
            variant: variant.clone(),
            boot: &boot,
            run,
        };
        let mut o = Out::default();
        for rule in rules::RULES {
            rule(&c, &mut o);
        }
        out.push(finish(&c, o));
    }
    let planned = planned.map(<[RunId]>::to_vec).or(boot.planned.clone());
    if let Some(planned) = planned {
        let unfinished = runs.iter().any(|p| p.marked && p.end.is_none());
        for id in &planned {
            if runs.iter().any(|p| p.marked && p.id == *id) {
                continue;
            }
            let why = if unfinished {
                "not run: an earlier run in this boot did not finish"
            } else {
                "not run: the boot ended before it"
            };
            out.push(not_run(id, why, boot.release.clone()));
        }
    }
    out
}

/// Judge every run in a log (see [`judge_plan`]); a log without run
/// markers is one run of `fallback_scenario`.
pub fn judge_runs(
    log: &ConsoleLog,
    scenarios: &Scenarios,
    fallback_scenario: &str,
) -> Vec<Judgement> {
    judge_plan(log, &|s| scenarios.spec(s), fallback_scenario, None)
}

/// Judge a log as one run of `spec` (all run markers ignored but the
/// first run's: for single-run logs).
pub fn judge(log: &ConsoleLog, spec: &ScenarioSpec) -> Judgement {
    let spec_of = |_: &str| spec.clone();
    let mut all = judge_plan(log, &spec_of, &spec.name, None);
    let mut j = all.swap_remove(0);
    j.scenario = spec.name.clone();
    j
}

/// Guess the scenario from a log: the header's `plan=`/`steps=` (e.g.
/// `x86_64-rwlock-stall-r1.sh`) or the file name `<arch>-<variant>-<scenario>...`.
pub fn guess_scenario(log: &ConsoleLog, path: &str, known: &[String]) -> Option<String> {
    let mut cands = Vec::new();
    for k in ["plan", "steps"] {
        if let Some(s) = log.header.get(k) {
            cands.push(s.clone());
        }
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
}
