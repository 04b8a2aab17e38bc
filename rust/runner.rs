// SPDX-License-Identifier: GPL-2.0

//! The controller of a run: starts the workers, watches them (heartbeats,
//! hang detection, the verdict budget), ends the run and prints the one
//! KTAP result.
//!
//! The controller (`ept_ctl`, SCHED_FIFO `watchdog_prio` on `watchdog_cpu`,
//! never the hog's CPU) sleeps on hrtimers only, so it keeps running
//! through a stall. A run ends:
//! * `not ok ... # bug detected: priority inversion` as soon as
//!   `over_min` consumer calls carried the inversion signature
//!   (signature.rs) (inversion, soak);
//! * `not ok ... # bug detected: hang` when no consumer call completed for
//!   `stall_ms`: printed at once, since the run may never end; the
//!   threads' stacks follow and one `call_rcu()` probe is queued so that a
//!   grace period is in flight and the RCU stall detector reports the
//!   reader blocking it;
//! * `ok` after `budget_bursts` full hog bursts without a finding
//!   (inversion, stall), or at `duration_s`.

use crate::kthread::StopToken;
use crate::stats::KString;
use crate::stats::Lat;
use crate::workers::{self, Shared, Workers};
use kernel::{prelude::*, sync::atomic::ordering::Relaxed, sync::Arc};

extern "C" {
    fn ept_rcu_probe();
    fn ept_rcu_probe_state() -> i32;
}

/// How a run ended.
pub(crate) enum Outcome {
    /// Nothing found.
    Ok,
    /// The bug: `kind` is one of the words the judge maps to a verdict
    /// (`priority inversion`, `hang`).
    Bug(&'static str, KString),
    /// The harness could not measure.
    Error(KString),
    /// Removed before a result.
    Aborted,
    /// The result was already printed (a hang, reported as it happened).
    Reported,
}

impl Outcome {
    /// A formatted error outcome.
    pub(crate) fn error(args: core::fmt::Arguments<'_>) -> Self {
        Outcome::Error(KString::from_fmt(args))
    }
}

/// Prints the KTAP result line of a run (exactly one per run).
pub(crate) fn print_result(name: &str, out: &Outcome) {
    match out {
        Outcome::Ok => pr_info!("ok 1 {name}\n"),
        Outcome::Bug(kind, why) => {
            pr_info!("not ok 1 {name} # bug detected: {kind}: {}\n", &**why)
        }
        Outcome::Error(why) => pr_info!("not ok 1 {name} # error: {}\n", &**why),
        Outcome::Aborted => pr_info!("ok 1 {name} # SKIP aborted by rmmod before a result\n"),
        Outcome::Reported => {}
    }
}

/// What a timed scenario asks of the runner.
pub(crate) struct Timed {
    /// Hog bursts end by the soft timer (stall, soak).
    pub(crate) timer_driven: bool,
    /// The inversion signature decides `not ok` (inversion, soak).
    pub(crate) latency_verdict: bool,
    /// The run may end early on `budget_bursts` (inversion, stall).
    pub(crate) budget: bool,
}

/// Watches a run: heartbeats, hang detection.
struct Watch {
    start: i64,
    last_hb: i64,
    last_polls: u64,
    last_change: i64,
    longest_ms: i64,
    hang: bool,
}

impl Watch {
    fn new(now: i64) -> Self {
        Self {
            start: now,
            last_hb: now,
            last_polls: 0,
            last_change: now,
            longest_ms: 0,
            hang: false,
        }
    }

    fn heartbeat(&self, s: &Shared, phase: &str, now: i64) {
        pr_info!(
            "# heartbeat scenario={} t_ms={} phase={} progress={} events={} consumed={} bursts={} caught={} ticks={} signature={} lat_max_us={} blocked_ms={} stalled_ms={}\n",
            s.cfg.scenario.name,
            (now - self.start) / 1_000_000,
            phase,
            s.polls.load(Relaxed),
            s.events.load(Relaxed),
            s.consumed.load(Relaxed),
            s.bursts.load(Relaxed),
            s.caught.load(Relaxed),
            s.ticks.load(Relaxed),
            s.signature.load(Relaxed),
            s.lat_max_ns.load(Relaxed) / 1000,
            s.blocked_ns() / 1_000_000,
            (now - self.last_change) / 1_000_000
        );
    }

    /// One watchdog step over the progress counter `progress`; returns
    /// true if a hang was just declared.
    fn step(&mut self, s: &Shared, phase: &str, progress: u64) -> bool {
        let now = s.now();
        if progress != self.last_polls {
            self.last_polls = progress;
            self.last_change = now;
        }
        let stalled_ms = (now - self.last_change) / 1_000_000;
        // While draining, the consumers leave on purpose: only a consumer
        // still blocked in vfs_poll() counts then.
        let counts = phase == "run" || s.blocked_ns() != 0;
        if counts {
            self.longest_ms = self.longest_ms.max(stalled_ms);
        }
        if now - self.last_hb >= s.cfg.heartbeat_ms * 1_000_000 {
            self.last_hb = now;
            self.heartbeat(s, phase, now);
        }
        if counts && !self.hang && stalled_ms >= s.cfg.stall_ms {
            self.hang = true;
            return true;
        }
        false
    }
}

/// Reports a hang as it happens: metrics, the result, the stacks, the
/// RCU probe, the trace freeze.
fn report_hang(s: &Shared, w: &Watch, workers: &Workers) {
    let c = &s.cfg;
    pr_info!(
        "# metrics scenario={} hang=1 t_ms={} calls={} events={} consumed={} bursts={} caught={} ticks={} lat_max_us={} stalled_ms={} stall_ms={}\n",
        c.scenario.name,
        (s.now() - w.start) / 1_000_000,
        s.polls.load(Relaxed),
        s.events.load(Relaxed),
        s.consumed.load(Relaxed),
        s.bursts.load(Relaxed),
        s.caught.load(Relaxed),
        s.ticks.load(Relaxed),
        s.lat_max_ns.load(Relaxed) / 1000,
        w.longest_ms,
        c.stall_ms
    );
    if c.trace {
        crate::trace::freeze_hang();
    }
    let why = KString::from_fmt(fmt!(
        "no consumer progress for {} ms (consumer blocked in vfs_poll for {} ms)",
        w.longest_ms,
        s.blocked_ns() / 1_000_000
    ));
    print_result(c.scenario.name, &Outcome::Bug("hang", why));
    // The blocked threads, for the record (like a hung-task report).
    workers.show();
    // Put a grace period in flight: with a reader preempted in its RCU
    // read-side section (an RT rwlock holder) it cannot end, and the RCU
    // stall detector reports it (nothing else may be asking for one).
    // SAFETY: Queues a static rcu_head once; flushed at module exit.
    unsafe { ept_rcu_probe() };
}

/// Runs a timed scenario: spawns consumers, producers, hogs and whatever
/// `extra` adds, watches them until the verdict is settled or the time is
/// up, prints the metrics and returns the outcome.
pub(crate) fn run_timed(
    s: &Arc<Shared>,
    t: &StopToken,
    how: &Timed,
    nev: usize,
    extra: impl FnOnce(&mut Workers) -> Result,
) -> Outcome {
    let c = s.cfg;
    let mut workers = Workers::new(s);
    let spawned = workers::spawn_timed(&mut workers, s, nev, how.timer_driven)
        .and_then(|()| extra(&mut workers));
    if let Err(e) = spawned {
        // Dropping `workers` opens the gate before it stops anyone.
        drop(workers);
        return Outcome::error(fmt!(
            "starting the worker threads failed (errno {})",
            e.to_errno()
        ));
    }
    s.open_gate(false);
    let mut w = Watch::new(s.now());
    let end = w.start + c.duration_ms * 1_000_000;
    let mut reported = false;
    let mut rcu_probe_at = 0i64;
    let mut early: Option<Outcome> = None;
    loop {
        // SAFETY: Reads an atomic in the C helper.
        if rcu_probe_at != 0 && unsafe { ept_rcu_probe_state() } == 2 {
            pr_info!(
                "# rcu_probe: grace period completed after {} ms\n",
                (s.now() - rcu_probe_at) / 1_000_000
            );
            rcu_probe_at = 0;
        }
        if t.should_stop() {
            drop(workers);
            return if reported {
                Outcome::Reported
            } else {
                Outcome::Aborted
            };
        }
        let now = s.now();
        if early.is_none() && !reported {
            early = settled(s, how);
        }
        let done = now >= end || early.is_some();
        let phase = if done { "drain" } else { "run" };
        if done {
            s.stop_work.store(true, Relaxed);
            if s.active.load(Relaxed) == 0 {
                break;
            }
        }
        if w.step(s, phase, s.polls.load(Relaxed)) && !reported {
            reported = true;
            report_hang(s, &w, &workers);
            rcu_probe_at = s.now().max(1);
            if c.stall_rescue {
                pr_info!("# stall_rescue: stopping the hogs\n");
                s.rescue.store(true, Relaxed);
            }
        }
        t.sleep_ns(10_000_000);
    }
    let elapsed_ms = (s.now() - w.start) / 1_000_000;
    drop(workers);
    let (lat, summary) = match merged(s) {
        Ok(x) => x,
        Err(e) => {
            return Outcome::error(fmt!(
                "merging the statistics failed (errno {})",
                e.to_errno()
            ))
        }
    };
    pr_info!(
        "# metrics scenario={} hang={} duration_ms={} ended={} events={} consumed={} bursts={} caught={} probes={} ticks={} hog_burst_ms={} hog_period_ms={} threshold_us={} signature={} rejected={} longest_stall_ms={} {}\n",
        c.scenario.name,
        u8::from(w.hang),
        elapsed_ms,
        if early.is_some() { "settled" } else { "duration" },
        s.events.load(Relaxed),
        s.consumed.load(Relaxed),
        s.bursts.load(Relaxed),
        s.caught.load(Relaxed),
        s.probes.load(Relaxed),
        s.ticks.load(Relaxed),
        c.hog_burst_ns / 1_000_000,
        c.hog_period_ns / 1_000_000,
        c.threshold_ns / 1000,
        s.signature.load(Relaxed),
        s.rejected.load(Relaxed),
        w.longest_ms,
        summary.to_str().unwrap_or("?")
    );
    print_tallies(s);
    if reported {
        return Outcome::Reported;
    }
    if let Some(o) = early {
        return o;
    }
    if lat.count == 0 {
        return Outcome::error(fmt!("no consumer call completed"));
    }
    latency_outcome(s, how).unwrap_or(Outcome::Ok)
}

/// The inversion finding, once `over_min` signature calls were seen.
fn latency_outcome(s: &Shared, how: &Timed) -> Option<Outcome> {
    let c = &s.cfg;
    let sig = s.signature.load(Relaxed);
    if !how.latency_verdict || sig < c.over_min {
        return None;
    }
    let why = KString::from_fmt(fmt!(
        "{} consumer calls over {} us started as a hog burst began and ended as it ended ({} other long calls rejected as noise), max {} us",
        sig,
        c.threshold_ns / 1000,
        s.rejected.load(Relaxed),
        s.lat_max_ns.load(Relaxed) / 1000
    ));
    Some(Outcome::Bug("priority inversion", why))
}

/// Whether the verdict is settled before `duration_s`: the finding, or
/// `budget_bursts` full bursts without one.
fn settled(s: &Shared, how: &Timed) -> Option<Outcome> {
    if let Some(o) = latency_outcome(s, how) {
        return Some(o);
    }
    let c = &s.cfg;
    let clean = !how.latency_verdict || s.signature.load(Relaxed) == 0;
    (how.budget && c.budget_bursts > 0 && clean && s.bursts.load(Relaxed) >= c.budget_bursts)
        .then_some(Outcome::Ok)
}

/// The consumers' statistics merged, and their summary line.
fn merged(s: &Shared) -> Result<(Lat, kernel::str::CString)> {
    let mut lat = Lat::new(0)?;
    for l in s.results.lock().lat.iter() {
        lat.merge(l);
    }
    let summary = lat.summary()?;
    Ok((lat, summary))
}

/// Prints one `# thread` line per worker (locktorture-style statistics).
pub(crate) fn print_tallies(s: &Shared) {
    for t in s.results.lock().tallies.iter() {
        let [(k1, v1), (k2, v2), (k3, v3)] = t.fields;
        pr_info!(
            "# thread scenario={} name={}/{} {k1}={v1} {k2}={v2} {k3}={v3}\n",
            s.cfg.scenario.name,
            t.name,
            t.index
        );
    }
}

/// The controller thread's body: runs the scenario, prints its one
/// result, then stays until rmmod.
pub(crate) fn controller(s: Arc<Shared>, t: &StopToken) {
    let out = (s.cfg.scenario.run)(&s, t);
    print_result(s.cfg.scenario.name, &out);
    while !t.should_stop() {
        t.sleep_ns(100_000_000);
    }
}
