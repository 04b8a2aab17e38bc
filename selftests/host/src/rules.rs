//! The judge's rules: each a short function from one run's events to
//! findings, notes and metrics. [`RULES`] lists them in the order they run
//! (the selftest rule says whether the exit-status rule excuses a non-zero
//! exit). A new rule is one function and one line in [`RULES`].

use crate::data::{Kind as SpecKind, Verdict};
use crate::events::{num, Event, HostEvent, Kind, Producer, TapLine, BUG_KINDS};
use crate::judge::{hist_percentile, Ctx, Out, SelftestResult, TapResult, ThroughputPoint};
use crate::log::HostNote;
use std::collections::BTreeMap;

pub(crate) type Rule = fn(&Ctx, &mut Out);

pub(crate) const RULES: &[Rule] = &[
    harness,
    producer_results,
    kernel_reports,
    rt_throttling,
    selftests,
    exit_status,
    required_results,
    host_deadline,
    heartbeats,
    latency,
    throughput,
    host_load,
    boot_metrics,
];

/// A run whose vCPUs waited longer than this share of their time for a host
/// CPU is flagged: its timings say more about the host than the kernel.
pub const VCPU_STARVED_LIMIT_PCT: f64 = 20.0;

/// vCPUs per guest when the guest did not say (run-vm.sh boots 2).
const DEFAULT_VCPUS: f64 = 2.0;

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn ended_word(c: &Ctx) -> &'static str {
    if c.run.marked {
        "run"
    } else {
        "steps"
    }
}

fn note_of<'a>(c: &'a Ctx, e: &Event) -> Option<&'a HostNote> {
    c.log.notes.iter().find(|n| n.no == e.no)
}

/// The harness: script missing; the run never reached its end.
fn harness(c: &Ctx, o: &mut Out) {
    for e in &c.run.events {
        if e.kind == Kind::MissingScript {
            o.add(
                Verdict::Error,
                "steps script missing in the guest",
                c.line(e),
            );
        }
    }
    if c.run.end.is_some() || c.run.takes_deadline {
        return;
    }
    let last = c
        .run
        .events
        .iter()
        .rev()
        .find_map(|e| c.line(e))
        .or(c.log.lines.last());
    let exit = c.boot.exit.and_then(|e| note_of(c, e));
    let what = if c.run.superseded {
        "no 'EPT: run end' for this run although a later run began".to_string()
    } else {
        match (c.boot.guest_up, exit) {
            (None, Some(n)) => format!("guest never booted ({})", n.text),
            (None, None) => "guest never booted (log ends before 'EPT: guest up')".into(),
            (Some(_), Some(n)) if c.run.marked => {
                format!("guest exited before the run ended ({})", n.text)
            }
            (Some(_), Some(n)) => format!("guest exited without finishing its steps ({})", n.text),
            (Some(_), None) if c.run.marked => {
                "log ends before 'EPT: run end' (truncated or still running)".into()
            }
            (Some(_), None) => {
                "log ends before 'EPT: steps end' (truncated or still running)".into()
            }
        }
    };
    o.add(Verdict::Error, what, last);
}

/// The bug kind of `bug detected: <kind>: detail`, when given.
pub fn bug_kind(directive: &str) -> Option<&str> {
    let rest = directive.strip_prefix("bug detected:")?.trim_start();
    Some(rest.split(':').next().unwrap_or(rest).trim())
}

/// A producer's result mapped through the kind table.
struct Mapped {
    verdict: Verdict,
    /// The finding's text.
    what: String,
    /// `<kind>` of `bug detected: <kind>: ...`.
    kind: Option<String>,
    /// A `not ok` whose kind is not in [`BUG_KINDS`]: the scenario's
    /// `not_ok` verdict stands in.
    unknown_kind: bool,
}

/// A producer's result as a verdict: `# error:` is ERROR, `ok` (also
/// `# SKIP`) PASS, `not ok` the verdict of its bug kind.
fn result_verdict(p: Producer, t: &TapLine, not_ok: Verdict) -> Mapped {
    let dir = t.directive.as_str();
    if dir
        .get(..6)
        .is_some_and(|d| d.eq_ignore_ascii_case("error:"))
    {
        return Mapped {
            verdict: Verdict::Error,
            what: format!(
                "{} could not measure {}: {}",
                p.name(),
                t.name,
                dir[6..].trim()
            ),
            kind: None,
            unknown_kind: false,
        };
    }
    if t.ok {
        return Mapped {
            verdict: Verdict::Pass,
            what: format!("{} ok: {}", p.name(), t.name),
            kind: None,
            unknown_kind: false,
        };
    }
    let kind = bug_kind(dir);
    let known = kind.and_then(|k| {
        BUG_KINDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|x| x.1)
    });
    let label = kind.unwrap_or(if dir.is_empty() { "no directive" } else { dir });
    Mapped {
        verdict: known.unwrap_or(not_ok),
        what: format!("{} not ok: {} ({label})", p.name(), t.name),
        kind: kind.map(str::to_string),
        unknown_kind: known.is_none(),
    }
}

/// One plan of a producer: its declared count and the tests that reported.
#[derive(Default)]
struct Plan {
    count: Option<u64>,
    seen: Vec<u64>,
    first_line: Option<usize>,
}

/// Results of the prefixed producers (module, ept-wakeup): exactly one per
/// plan and test number counts (the first; a second is a note); each maps
/// to a verdict through the kind table. In a scenario judged by its exit
/// status (kind rc) they are information only.
fn producer_results(c: &Ctx, o: &mut Out) {
    let mut plans: BTreeMap<Producer, Vec<Plan>> = BTreeMap::new();
    let mut info: BTreeMap<String, usize> = BTreeMap::new();
    let informative = c.spec.kind == SpecKind::Rc;
    for e in &c.run.events {
        match &e.kind {
            Kind::TapVersion { producer } if *producer != Producer::Kselftest => {
                plans.entry(*producer).or_default().push(Plan {
                    first_line: e.line,
                    ..Plan::default()
                });
            }
            Kind::TapPlan { producer, count } if *producer != Producer::Kselftest => {
                let ps = plans.entry(*producer).or_default();
                if ps
                    .last()
                    .is_none_or(|p| p.count.is_some() || !p.seen.is_empty())
                {
                    ps.push(Plan::default());
                }
                if let Some(p) = ps.last_mut() {
                    p.count = Some(*count);
                    p.first_line = p.first_line.or(e.line);
                }
            }
            Kind::TapResult { producer, tap } if *producer != Producer::Kselftest => {
                let ps = plans.entry(*producer).or_default();
                if ps.is_empty() {
                    ps.push(Plan::default());
                }
                let plan = ps.last_mut().expect("a plan");
                if plan.seen.contains(&tap.number) {
                    o.note(format!(
                        "second result for one plan ignored: {}",
                        c.line(e).map(crate::log::quote).unwrap_or_default()
                    ));
                    continue;
                }
                plan.seen.push(tap.number);
                let m = result_verdict(*producer, tap, c.spec.not_ok);
                o.metrics.results.push(TapResult {
                    producer: producer.name().to_string(),
                    name: tap.name.clone(),
                    ok: tap.ok,
                    directive: tap.directive.clone(),
                    kind: m.kind.clone(),
                    verdict: m.verdict,
                });
                if informative {
                    let d = match (&m.kind, tap.directive.is_empty()) {
                        (Some(k), _) => format!(" # {k}"),
                        (None, false) => format!(" # {}", tap.directive),
                        (None, true) => String::new(),
                    };
                    let ok = if tap.ok { "ok" } else { "not ok" };
                    *info.entry(format!("{ok} {}{d}", tap.name)).or_default() += 1;
                    continue;
                }
                if m.unknown_kind {
                    o.note(format!(
                        "{}: no bug kind of the kind table; the scenario's not_ok verdict ({}) applies",
                        m.what, m.verdict
                    ));
                }
                if tap.ok && tap.is_skip() {
                    o.note(format!(
                        "{} skipped {}: {}",
                        producer.name(),
                        tap.name,
                        tap.directive
                    ));
                }
                o.add(m.verdict, m.what, c.line(e));
            }
            _ => {}
        }
    }
    if !info.is_empty() {
        let list: Vec<String> = info
            .iter()
            .map(|(k, n)| {
                if *n > 1 {
                    format!("{k} (x{n})")
                } else {
                    k.clone()
                }
            })
            .collect();
        o.note(format!(
            "producer results, information only (this scenario is judged by its exit status): {}",
            list.join("; ")
        ));
    }
    let mut n_plans = 0;
    for (p, ps) in &plans {
        for plan in ps {
            n_plans += 1;
            let want = plan.count.unwrap_or(1) as usize;
            if plan.seen.len() < want && !informative {
                let line = plan.first_line.map(|i| &c.log.lines[i]);
                o.add(
                    Verdict::Error,
                    format!(
                        "{} plan without its result ({} of {want})",
                        p.name(),
                        plan.seen.len()
                    ),
                    line,
                );
            }
        }
    }
    if n_plans > 0 {
        o.set("plans", n_plans as f64);
        o.set("results", o.metrics.results.len() as f64);
    }
}

/// The kernel's own reports, from the pattern table.
fn kernel_reports(c: &Ctx, o: &mut Out) {
    for e in &c.run.events {
        if let Kind::Kernel { verdict, title } = e.kind {
            o.add(verdict, title, c.line(e));
        }
    }
}

/// RT throttling: a note and a metric, not a verdict.
fn rt_throttling(c: &Ctx, o: &mut Out) {
    let hits: Vec<&&Event> = c
        .run
        .events
        .iter()
        .filter(|e| e.kind == Kind::RtThrottling)
        .collect();
    if let Some(first) = hits.first() {
        o.note(format!(
            "RT throttling activated: {}",
            c.line(first).map(crate::log::quote).unwrap_or_default()
        ));
        o.set("rt_throttled", hits.len() as f64);
    }
}

/// A known failure of this test from the scenario data: keyed
/// `variant:test` (a finding about that variant, excused on its own),
/// `arch:test` or `test` (emulation costs, which need the baseline to fail
/// the same way when one is given). A variant's entry names a failure of
/// the test's own assertion, so a harness timeout never counts as one.
/// Returns (why, variant-specific).
fn known_failure(c: &Ctx, test: &str, timed_out: bool) -> Option<(String, bool)> {
    let f = &c.spec.emulation_failures;
    if let Some(w) = f
        .get(&format!("{}:{test}", c.variant))
        .filter(|_| !timed_out)
    {
        return Some((w.clone(), true));
    }
    f.get(&format!("{}:{test}", c.arch))
        .or_else(|| f.get(test))
        .map(|w| (w.clone(), false))
}

/// What a failed kselftest amounts to.
enum Failed<'a> {
    /// Rerun alone with a long timeout it passed: (test, seconds, note).
    PassedOnRerun(String, f64, String),
    /// A known emulation failure, or a variant's finding: the note.
    Known(String),
    /// A failure: (what, line).
    Fail(String, Option<&'a crate::log::LogLine>),
}

/// A kselftest `not ok`: its long-timeout rerun decides when there was one;
/// else a known failure from the scenario data excuses it (an emulation
/// failure only when the baseline, if given, failed it the same way).
fn failed_selftest<'a>(
    c: &'a Ctx,
    e: &Event,
    t: &TapLine,
    reruns: &BTreeMap<String, (f64, Option<f64>, &Event)>,
    timed_out: &BTreeMap<String, ()>,
) -> Failed<'a> {
    let name = &t.name;
    // kselftest names it `global.epoll65`; the rerun line `epoll65`.
    let short = name.rsplit('.').next().unwrap_or(name);
    if let Some((rc, secs, re)) = reruns.get(short) {
        let secs = secs.unwrap_or(0.0);
        return if *rc == 0.0 {
            Failed::PassedOnRerun(
                short.to_string(),
                secs,
                format!(
                    "selftest {name} exceeded the harness timeout under emulation; rerun alone with a long timeout it passed in {secs:.1} s ({})",
                    c.line(re).map_or("", |l| l.text.trim())
                ),
            )
        } else {
            Failed::Fail(
                format!(
                    "selftest not ok: {name}, and again with a long timeout (rc={rc}, {secs:.1} s)"
                ),
                c.line(re),
            )
        };
    }
    let Some((why, own)) = known_failure(c, short, timed_out.contains_key(short)) else {
        let what = if t.directive.is_empty() {
            format!("selftest not ok: {name}")
        } else {
            format!("selftest not ok: {name} # {}", t.directive)
        };
        return Failed::Fail(what, c.line(e));
    };
    let (how, k) = if timed_out.contains_key(short) {
        ("harness timeout", "timeout")
    } else {
        ("failure", "fail")
    };
    if own {
        return Failed::Known(format!(
            "FINDING: selftest {name} ({how}) on {}: {why}",
            c.variant
        ));
    }
    match &c.spec.baseline_failures {
        Some(b) if b.get(short).map(|x| x.as_str()) != Some(k) => {
            let base = match b.get(short) {
                Some(x) => format!("the unmodified kernel (baseline) failed it differently ({x})"),
                None => "it passed on the unmodified kernel (baseline)".to_string(),
            };
            Failed::Fail(
                format!("selftest not ok: {name} ({how}), but {base}"),
                c.line(e),
            )
        }
        b => {
            let also = if b.is_some() {
                "; the unmodified kernel (baseline) fails it too"
            } else {
                ""
            };
            Failed::Known(format!(
                "selftest {name}: {how}, a known emulation failure ({why}){also}"
            ))
        }
    }
}

/// The kernel's selftests: TAP results (one per test number and plan),
/// harness timeouts, long-timeout reruns, binaries' exit status; known
/// emulation failures and variant findings from the scenario data.
fn selftests(c: &Ctx, o: &mut Out) {
    let mut timed_out: BTreeMap<String, ()> = BTreeMap::new();
    let mut reruns: BTreeMap<String, (f64, Option<f64>, &Event)> = BTreeMap::new();
    let mut binaries: Vec<(String, &Event)> = Vec::new();
    let mut tap: Vec<(&Event, &TapLine)> = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    for e in &c.run.events {
        match &e.kind {
            Kind::SelftestTimeout { test } => {
                timed_out.insert(test.clone(), ());
            }
            Kind::SelftestRerun { test, rc, seconds } => {
                reruns.insert(test.clone(), (*rc, *seconds, e));
            }
            Kind::Selftest { name, rc, seconds } => {
                // 0 pass, 4 KSFT_SKIP, anything else a failure (>= 124: timeout).
                let ok = *rc == 0.0 || *rc == 4.0;
                if !ok {
                    let why = if *rc >= 124.0 { " (timeout)" } else { "" };
                    binaries.push((format!("epoll selftest {name} rc={rc}{why}"), e));
                }
                o.metrics.selftests.push(SelftestResult {
                    name: name.clone(),
                    ok,
                    detail: format!("rc={rc}"),
                    seconds: *seconds,
                });
            }
            Kind::TapVersion {
                producer: Producer::Kselftest,
            } => seen.clear(),
            Kind::TapResult {
                producer: Producer::Kselftest,
                tap: t,
            } => {
                if seen.contains(&t.number) {
                    o.note(format!(
                        "second result for one plan ignored: {}",
                        c.line(e).map(crate::log::quote).unwrap_or_default()
                    ));
                    continue;
                }
                seen.push(t.number);
                tap.push((e, t));
            }
            _ => {}
        }
    }
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    let (mut passed_on_rerun, mut known) = (0, 0);
    for (e, t) in &tap {
        let name = &t.name;
        if t.is_skip() {
            skip += 1;
        } else if t.ok {
            pass += 1;
        } else {
            match failed_selftest(c, e, t, &reruns, &timed_out) {
                Failed::PassedOnRerun(short, secs, note) => {
                    passed_on_rerun += 1;
                    o.set(&format!("selftest_{short}_long_s"), secs);
                    o.note(note);
                }
                Failed::Known(note) => {
                    known += 1;
                    o.note(note);
                }
                Failed::Fail(what, line) => {
                    fail += 1;
                    o.add(Verdict::Fail, what, line);
                }
            }
        }
        if !name.is_empty() && !o.metrics.selftests.iter().any(|s| &s.name == name) {
            o.metrics.selftests.push(SelftestResult {
                name: name.clone(),
                ok: t.ok,
                detail: t.directive.clone(),
                seconds: None,
            });
        }
    }
    // Where selftests only inform (the debug boot), their failures are notes.
    if !c.spec.selftests_gate {
        let (informational, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut o.findings)
            .into_iter()
            .partition(|f| f.verdict == Verdict::Fail && f.what.starts_with("selftest not ok"));
        o.findings = kept;
        for f in informational {
            o.note(format!("{} (informational here)", f.what));
        }
    }
    // Every failure of the binaries was excused above (known emulation
    // timeouts): their exit status, and the run's, then say nothing more.
    let excused = (fail == 0 && known + passed_on_rerun > 0 && c.spec.kind == SpecKind::Kselftest)
        || !c.spec.selftests_gate;
    let excuse = if c.spec.selftests_gate {
        "only known emulation failures"
    } else {
        "selftests inform only here"
    };
    for (what, e) in &binaries {
        if excused {
            o.note(format!("{what}: {excuse}"));
        } else {
            o.add(Verdict::Fail, what.clone(), c.line(e));
        }
    }
    if excused {
        o.exit_excused = Some(excuse);
    }
    if !tap.is_empty() {
        o.set("selftests_pass", pass as f64);
        o.set("selftests_fail", fail as f64);
        o.set("selftests_skip", skip as f64);
        o.set("selftests_timeout_passed_on_rerun", passed_on_rerun as f64);
        o.set("selftests_known_emulation_failures", known as f64);
    }
}

/// The run's (or the plan's) exit status.
fn exit_status(c: &Ctx, o: &mut Out) {
    let Some((e, rc)) = c.run.end else {
        return;
    };
    let word = ended_word(c);
    match (rc, o.exit_excused) {
        (0, _) => o.add(Verdict::Pass, format!("{word} exited rc=0"), c.line(e)),
        (rc, Some(excuse)) => o.note(format!("{word} exited rc={rc}: {excuse}")),
        (rc, None) => o.add(Verdict::Fail, format!("{word} exited rc={rc}"), c.line(e)),
    }
    // With run markers, the plan's own status is a note on its last run.
    if let (true, false, Some((_, prc))) = (c.run.marked, c.run.superseded, c.boot.plan_end) {
        if prc != 0 {
            o.note(format!("the plan exited rc={prc}"));
        }
    }
}

/// A run that ended without the results its kind requires.
fn required_results(c: &Ctx, o: &mut Out) {
    let Some((e, _)) = c.run.end else {
        return;
    };
    let has = |p: fn(&Kind) -> bool| c.run.events.iter().any(|e| p(&e.kind));
    match c.spec.kind {
        SpecKind::Module
            if !has(
                |k| matches!(k, Kind::TapResult { producer, .. } if *producer != Producer::Kselftest),
            ) =>
        {
            o.add(
                Verdict::Error,
                "no KTAP result from epoll_torture (module not loaded or scenario unknown?)",
                c.line(e),
            )
        }
        SpecKind::Kselftest
            if !has(|k| {
                matches!(
                    k,
                    Kind::TapResult {
                        producer: Producer::Kselftest,
                        ..
                    } | Kind::Selftest { .. }
                )
            }) =>
        {
            o.add(
                Verdict::Error,
                "no selftest results (TAP or EPT-SELFTEST)",
                c.line(e),
            )
        }
        _ => {}
    }
}

/// Heartbeats as sequences: (event, sequence key, t_s, progress). A new
/// plan of the same producer (the module loaded again) starts a new
/// sequence, since its progress starts over.
fn heartbeat_seqs<'a>(c: &'a Ctx) -> Vec<(&'a Event, String, f64, f64)> {
    let mut plan: BTreeMap<Producer, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for e in &c.run.events {
        match &e.kind {
            Kind::TapVersion { producer } => *plan.entry(*producer).or_default() += 1,
            Kind::Heartbeat {
                producer,
                key,
                t_s,
                progress,
            } => {
                let n = producer.map_or(0, |p| plan.get(&p).copied().unwrap_or(0));
                out.push((*e, format!("{key}#{n}"), *t_s, *progress));
            }
            _ => {}
        }
    }
    out
}

/// Workload progress: heartbeat progress that changed (the module's and
/// ept-wakeup's `# heartbeat`, ept-kiszka's samples), and each result a
/// producer reports (a KTAP/TAP result, a `# metrics` line, a selftest
/// binary's exit). Other output (ept-run's `alive`, a lingering shell, the
/// kernel's own messages) is not progress.
fn progress_events<'a>(c: &'a Ctx, before_no: usize) -> Vec<&'a Event> {
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut out: Vec<&Event> = Vec::new();
    for (e, key, _, progress) in heartbeat_seqs(c) {
        if e.no < before_no && last.get(&key).is_none_or(|x| progress != *x) {
            out.push(e);
        }
        last.insert(key, progress);
    }
    for e in c.run.events.iter().filter(|e| e.no < before_no) {
        if matches!(
            e.kind,
            Kind::TapResult { .. }
                | Kind::Metrics { .. }
                | Kind::Selftest { .. }
                | Kind::SelftestRerun { .. }
        ) {
            out.push(*e);
        }
    }
    out.sort_by_key(|e| e.no);
    out
}

/// The host deadline: HANG when heartbeat progress had stopped for
/// `hang_after_s` before it, else the deadline was too short (ERROR);
/// before the guest came up: never booted (ERROR).
fn host_deadline(c: &Ctx, o: &mut Out) {
    if !c.run.takes_deadline {
        return;
    }
    let Some(d) = c.boot.deadline else {
        return;
    };
    let text = note_of(c, d).map_or("", |n| n.text.as_str());
    let end = d.host_s.or(c.log.last_host_s()).unwrap_or(0.0);
    let start = if c.run.marked {
        c.run.begin
    } else {
        c.run.begin.or(c.boot.guest_up)
    }
    .filter(|s| s.no < d.no);
    let Some(start) = start.filter(|_| c.boot.guest_up.is_some_and(|g| g.no < d.no)) else {
        o.add(
            Verdict::Error,
            format!("guest never booted (no 'EPT: guest up' before the host gave up: {text})"),
            None,
        );
        return;
    };
    let progress = progress_events(c, d.no);
    let p = progress.last().copied().unwrap_or(start);
    let p_s = p.host_s.unwrap_or(0.0);
    let idle = end - p_s;
    let pline = c.line(p);
    if idle < c.spec.hang_after_s {
        o.add(
            Verdict::Error,
            format!("host deadline reached while the workload still progressed ({idle:.0} s before it): deadline too short; {text}"),
            pline,
        );
        return;
    }
    let hbs: Vec<(&Event, f64)> = c
        .run
        .events
        .iter()
        .filter(|e| e.no < d.no)
        .filter_map(|e| match e.kind {
            Kind::Heartbeat { progress, .. } => Some((*e, progress)),
            _ => None,
        })
        .collect();
    let after: Vec<&(&Event, f64)> = hbs.iter().filter(|(e, _)| e.no > p.no).collect();
    let how = if hbs.is_empty() {
        "no heartbeat".to_string()
    } else if after.is_empty() {
        format!("no heartbeat for {idle:.0} s")
    } else {
        format!(
            "{} heartbeat(s) with progress stuck at {}",
            after.len(),
            after[0].1
        )
    };
    o.add(
        Verdict::Hang,
        format!(
            "no workload progress for {idle:.0} s before the host gave up ({how}); last progress:"
        ),
        pline,
    );
    if let Some(f) = o.findings.last_mut() {
        f.lines.push(format!("# host: {text}"));
    }
}

/// Stalls in heartbeat progress: (count, max_s, total_s, open_s).
/// A stall is a run of heartbeats with unchanged progress lasting >= min_s
/// (progress that falls is a workload starting a new step, e.g. the next
/// thread count of throughput: not a stall); `open_s` is the length of a
/// stall still going at the last heartbeat.
pub(crate) fn stalls(hbs: &[(f64, f64)], min_s: f64, finished: bool) -> (usize, f64, f64, f64) {
    let (mut n, mut max, mut total, mut open) = (0, 0.0f64, 0.0, 0.0);
    let mut i = 0;
    while i + 1 < hbs.len() {
        if hbs[i + 1].1 == hbs[i].1 {
            let start = hbs[i].0;
            let mut j = i + 1;
            while j < hbs.len() && hbs[j].1 == hbs[i].1 {
                j += 1;
            }
            if j == hbs.len() && !finished {
                open = hbs[j - 1].0 - start;
            } else {
                let end = if j < hbs.len() {
                    hbs[j].0
                } else {
                    hbs[j - 1].0
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

/// Heartbeats: stalls that recovered (metrics), one still open at the end.
fn heartbeats(c: &Ctx, o: &mut Out) {
    let mut by_key: BTreeMap<String, Vec<(f64, f64, Option<f64>)>> = BTreeMap::new();
    let seqs = heartbeat_seqs(c);
    let n_hb = seqs.len();
    let last = seqs.last().map(|x| x.3);
    for (e, key, t_s, progress) in seqs {
        by_key
            .entry(key)
            .or_default()
            .push((t_s, progress, e.host_s));
    }
    if n_hb == 0 {
        return;
    }
    let finished = c.run.end.is_some() && !c.run.takes_deadline;
    let (mut n, mut smax, mut stot, mut sopen, mut gap) = (0, 0.0f64, 0.0, 0.0f64, 0.0f64);
    for seq in by_key.values() {
        let tp: Vec<(f64, f64)> = seq.iter().map(|x| (x.0, x.1)).collect();
        let (a, b, cc, d) = stalls(&tp, c.spec.stall_min_s, finished);
        n += a;
        smax = smax.max(b);
        stot += cc;
        sopen = sopen.max(d);
        for w in seq.windows(2) {
            if let (Some(x), Some(y)) = (w[0].2, w[1].2) {
                gap = gap.max(y - x);
            }
        }
    }
    o.set("heartbeats", n_hb as f64);
    o.set("stalls", n as f64);
    o.set("stall_max_s", round3(smax));
    o.set("stall_total_s", round3(stot));
    o.set("hb_gap_max_s", round3(gap));
    if sopen > 0.0 {
        o.set("stall_open_s", round3(sopen));
    }
    if let Some(p) = last {
        o.set("progress_last", p);
    }
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

fn metrics_lines<'a>(
    c: &'a Ctx,
) -> impl Iterator<Item = (&'a Event, &'a BTreeMap<String, String>)> {
    c.run.events.iter().filter_map(|e| match &e.kind {
        Kind::Metrics { kv, .. } => Some((*e, kv)),
        _ => None,
    })
}

/// Latency from the producers' metrics lines: histogram, percentiles,
/// maximum. Over the threshold is a note: the producer decided the verdict.
fn latency(c: &Ctx, o: &mut Out) {
    let (mut max_us, mut p99, mut p50) = (None::<f64>, None::<f64>, None::<f64>);
    let mut calls = 0.0;
    let mut over: Option<(f64, &Event)> = None;
    let mut threshold = None;
    for (e, kv) in metrics_lines(c) {
        o.metrics.lines.push(kv.clone());
        // `hist_us=lo:count,lo:count` (epoll_torture) or `hist_us_<lo>=count`.
        let mut had_hist = false;
        if let Some(h) = kv.get("hist_us") {
            for item in h.split(',') {
                if let Some((lo, n)) = item.split_once(':') {
                    if let (Ok(lo), Some(n)) = (lo.parse::<u64>(), num(n)) {
                        *o.metrics.hist_us.entry(lo).or_default() += n as u64;
                        had_hist = true;
                    }
                }
            }
        }
        for (k, v) in kv {
            if let Some(lo) = k.strip_prefix("hist_us_") {
                if let (Ok(lo), Some(n)) = (lo.parse::<u64>(), num(v)) {
                    *o.metrics.hist_us.entry(lo).or_default() += n as u64;
                    had_hist = true;
                }
            }
        }
        if had_hist {
            calls += kv.get("calls").and_then(|v| num(v)).unwrap_or(0.0);
        }
        let th = kv
            .get("threshold_us")
            .and_then(|v| num(v))
            .filter(|v| *v > 0.0)
            .or(c.spec.latency_threshold_us);
        threshold = threshold.or(th);
        if let Some(v) = first_num(kv, MAX_KEYS) {
            max_us = Some(max_us.map_or(v, |x| x.max(v)));
            if th.is_some_and(|t| v > t) && over.is_none_or(|(x, _)| v > x) {
                over = Some((v, e));
            }
        }
        if let Some(v) = first_num(kv, P99_KEYS) {
            p99 = Some(p99.map_or(v, |x| x.max(v)));
        }
        if let Some(v) = first_num(kv, P50_KEYS) {
            p50 = Some(p50.map_or(v, |x| x.max(v)));
        }
    }
    let h = &o.metrics.hist_us;
    p50 = p50.or_else(|| hist_percentile(h, 0.50));
    p99 = p99.or_else(|| hist_percentile(h, 0.99));
    max_us = max_us.or_else(|| h.keys().next_back().map(|lo| (lo * 2).max(2) as f64));
    let total: u64 = h.values().sum();
    for (k, v) in [
        ("lat_p50_us", p50),
        ("lat_p99_us", p99),
        ("lat_max_us", max_us),
    ] {
        if let Some(v) = v {
            o.set(k, v);
        }
    }
    if total > 0 {
        o.set("hist_total", total as f64);
        o.set("calls", calls);
        // For the tail plot's marks (svg.rs): the threshold and the hog's
        // burst length (the module's `# config` line).
        if let Some(t) = threshold {
            o.set("threshold_us", t);
        }
        let burst = c.run.events.iter().find_map(|e| match &e.kind {
            Kind::Config { kv, .. } => kv
                .get("hog_burst_ms")
                .or_else(|| kv.get("burst_ms"))
                .and_then(|v| num(v)),
            _ => None,
        });
        if let Some(b) = burst {
            o.set("hog_burst_ms", b);
        }
    }
    if let (Some((mx, e)), Some(th)) = (over, threshold) {
        o.note(format!(
            "latency max {mx:.0} us over the threshold {th:.0} us: a metric; the producer's result decides ({})",
            c.line(e).map(crate::log::quote).unwrap_or_default().chars().take(160).collect::<String>()
        ));
    }
}

/// Throughput points (events/ms per thread count).
fn throughput(c: &Ctx, o: &mut Out) {
    for (_, kv) in metrics_lines(c) {
        if let (Some(th), Some(ev)) = (first_num(kv, THREAD_KEYS), first_num(kv, TPUT_KEYS)) {
            o.metrics.throughput.push(ThroughputPoint {
                threads: th,
                events_per_ms: ev,
            });
        }
    }
}

/// The host's load notes: loadavg at start and end, QEMU's CPU time per
/// wall second, and the share of time the vCPUs waited for a host CPU.
fn host_load(c: &Ctx, o: &mut Out) {
    let host = |e: Option<&Event>| match e.map(|e| &e.kind) {
        Some(Kind::Host(h)) => Some(h.clone()),
        _ => None,
    };
    if let Some(HostEvent::LoadStart { load1: Some(l), .. }) = host(c.boot.load_start) {
        o.set("host_load1_start", l);
    }
    let Some(HostEvent::LoadEnd {
        load1,
        wall_s,
        qemu_cpu_s,
        vcpu_wait_s,
    }) = host(c.boot.load_end)
    else {
        return;
    };
    if let Some(l) = load1 {
        o.set("host_load1_end", l);
    }
    let Some(wall) = wall_s.filter(|w| *w > 0.0) else {
        return;
    };
    if let Some(cpu) = qemu_cpu_s {
        o.set("qemu_cpu_per_wall", round3(cpu / wall));
    }
    if let Some(wait) = vcpu_wait_s {
        let vcpus = c.boot.cpus.map_or(DEFAULT_VCPUS, f64::from);
        let pct = round3(wait / (wall * vcpus) * 100.0);
        o.set("vcpu_starved_pct", pct);
        if pct > VCPU_STARVED_LIMIT_PCT {
            o.note(format!(
                "host starved the vCPUs: {pct:.1}% run-queue delay (limit {VCPU_STARVED_LIMIT_PCT:.0}%); timings of this run say more about the host than the kernel"
            ));
        }
    }
}

/// Boot and run times, the exit status, how kernel records were counted.
fn boot_metrics(c: &Ctx, o: &mut Out) {
    if let Some(u) = c.boot.guest_up.and_then(|e| e.host_s) {
        o.set("boot_s", u);
    }
    if let (Some(b), Some((e, rc))) = (c.run.begin, c.run.end) {
        if let (Some(x), Some(y)) = (b.host_s, e.host_s) {
            o.set("run_s", round3(y - x));
            o.set("steps_s", round3(y - x));
        }
        o.set("rc", rc as f64);
    }
    if c.log.echo.merged > 0 {
        o.set("kmsg_merged", c.log.echo.merged as f64);
    }
    if c.log.echo.kmsg_only > 0 {
        o.set("kmsg_only", c.log.echo.kmsg_only as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_runs() {
        let hb = [
            (1.0, 10.0),
            (2.0, 20.0),
            (3.0, 20.0),
            (4.0, 20.0),
            (5.0, 30.0),
            (6.0, 30.0),
        ];
        // 2..5 recovered (3 s); 5..6 still flat at the end: open when unfinished.
        assert_eq!(stalls(&hb, 1.0, false), (1, 3.0, 3.0, 1.0));
        assert_eq!(stalls(&hb, 1.0, true), (2, 3.0, 4.0, 0.0));
        assert_eq!(stalls(&hb, 5.0, true), (0, 0.0, 0.0, 0.0));
        // Progress that falls starts a new step (throughput's next thread
        // count): not a stall; flat after it is.
        let hb = [
            (1.0, 5806.0),
            (2.0, 5808.0),
            (3.0, 1635.0),
            (4.0, 1636.0),
            (6.0, 1636.0),
        ];
        assert_eq!(stalls(&hb, 1.0, true), (1, 2.0, 2.0, 0.0));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            bug_kind("bug detected: priority inversion: 4 of 10 calls"),
            Some("priority inversion")
        );
        assert_eq!(bug_kind("bug detected: hang"), Some("hang"));
        assert_eq!(bug_kind("SKIP aborted by rmmod"), None);
        let t = |ok: bool, d: &str| TapLine {
            ok,
            number: 1,
            name: "x".into(),
            directive: d.into(),
        };
        let v = |ok, d| result_verdict(Producer::Module, &t(ok, d), Verdict::Fail).verdict;
        assert_eq!(
            v(false, "bug detected: priority inversion: 3 of 9"),
            Verdict::Inversion
        );
        assert_eq!(v(false, "bug detected: hang: no progress"), Verdict::Stall);
        assert_eq!(
            v(false, "bug detected: lost wake-up: waiter 2"),
            Verdict::LostWakeup
        );
        assert_eq!(
            v(false, "bug detected: false negative: 0 events"),
            Verdict::FalseNegative
        );
        assert_eq!(v(false, "error: no eventfd"), Verdict::Error);
        assert_eq!(v(true, "error: no eventfd"), Verdict::Error);
        assert_eq!(v(true, "SKIP aborted by rmmod"), Verdict::Pass);
        // Unknown kind: the scenario's not_ok verdict.
        assert_eq!(v(false, "bug detected: something new"), Verdict::Fail);
        assert_eq!(v(false, ""), Verdict::Fail);
        let m = result_verdict(
            Producer::Wakeup,
            &t(false, "bug detected: odd: x"),
            Verdict::Fail,
        );
        assert!(m.unknown_kind && m.kind.as_deref() == Some("odd"));
        assert_eq!(m.what, "ept-wakeup not ok: x (odd)");
        assert!(
            !result_verdict(
                Producer::Module,
                &t(false, "bug detected: hang"),
                Verdict::Fail
            )
            .unknown_kind
        );
    }
}
