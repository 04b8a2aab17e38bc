//! A one-line root cause from a trace window (docs/trace.md).
//!
//! Everything comes from the events: who waited (the longest
//! `contention_begin`..`contention_end` of a task, or a wait still open when
//! the buffer froze), on which kind of lock (the contention flags), who
//! released it (the task whose `sched_waking` woke the waiter at the end of
//! its wait), who kept that task off its CPU (`sched_switch` with the task
//! runnable, and what ran instead), and whether it was boosted
//! (`sched_pi_setprio`). Names and priorities are the trace's; the scenario's
//! name is never used. `ep_lock_type` (build-info's LOCK_TYPE) only names
//! the lock: an RT rwlock on a kernel whose `ep->lock` is an `rwlock_t` is
//! called `ep->lock`.

use crate::ftrace::{Record, Window};
use std::collections::BTreeMap;

/// A task as the trace shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub pid: u32,
    pub name: String,
    /// Kernel priority before any boost (0..99 RT: FIFO 99-prio; 100.. normal).
    pub prio: Option<i64>,
}

/// "FIFO 30" / "OTHER" from a kernel priority (sched_switch carries the
/// priority, not the policy: SCHED_RR reads as FIFO).
pub fn policy(prio: Option<i64>) -> String {
    match prio {
        Some(p) if p < 99 => format!("FIFO {}", 99 - p),
        Some(p) if p < 100 => "FIFO 0".into(),
        Some(_) => "OTHER".into(),
        None => "prio ?".into(),
    }
}

impl Task {
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, policy(self.prio))
    }
}

/// One lock wait: begin..end (end None: still waiting when the trace froze).
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub pid: u32,
    pub cpu: u32,
    pub lock: String,
    pub flags: String,
    pub begin: f64,
    pub end: Option<f64>,
}

/// An interval a task spent on a CPU (from sched_switch).
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub cpu: u32,
    pub pid: u32,
    pub begin: f64,
    pub end: f64,
    /// The state it left in (`R`, `R+`: preempted; `D`, `S`: blocked);
    /// None when still running at the window's end.
    pub left: Option<String>,
}

/// A priority change (`sched_pi_setprio`).
#[derive(Debug, Clone, PartialEq)]
pub struct Boost {
    pub pid: u32,
    pub ts: f64,
    pub old: i64,
    pub new: i64,
}

/// What the analysis extracts from a window; the timeline draws it too.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub tasks: BTreeMap<u32, Task>,
    pub waits: Vec<Wait>,
    pub slices: Vec<Slice>,
    pub boosts: Vec<Boost>,
    /// (woken pid, time) of every sched_waking.
    pub wakings: Vec<(u32, f64)>,
    pub cpus: Vec<u32>,
    pub start: f64,
    pub end: f64,
}

fn flags_of(r: &Record) -> String {
    r.text
        .split("flags=")
        .nth(1)
        .map(|f| f.trim_end_matches(')').to_string())
        .unwrap_or_default()
}

fn lock_of(r: &Record) -> String {
    r.text.split_whitespace().next().unwrap_or("").to_string()
}

impl Model {
    pub fn build(recs: &[Record]) -> Model {
        let mut m = Model {
            start: recs.iter().map(|r| r.ts).fold(f64::MAX, f64::min),
            end: recs.iter().map(|r| r.ts).fold(f64::MIN, f64::max),
            ..Model::default()
        };
        if recs.is_empty() {
            m.start = 0.0;
            m.end = 0.0;
            return m;
        }
        let mut prios: BTreeMap<u32, BTreeMap<i64, u32>> = BTreeMap::new();
        // The unboosted priority: the lowest (numerically largest) one a
        // task's PI changes went between.
        let mut first_boost_old: BTreeMap<u32, i64> = BTreeMap::new();
        let name = |m: &mut Model, pid: u32, n: &str| {
            m.tasks.entry(pid).or_insert_with(|| Task {
                pid,
                name: if pid == 0 {
                    "<idle>".into()
                } else {
                    n.to_string()
                },
                prio: None,
            });
        };
        // Per CPU: who runs since when.
        let mut running: BTreeMap<u32, (u32, f64)> = BTreeMap::new();
        // A CPU's data may start later than the window (its ring buffer
        // wrapped): its first slice starts at its first event.
        let mut cpu_first: BTreeMap<u32, f64> = BTreeMap::new();
        // One open wait per task: a nested wait (rwbase's inner rtmutex,
        // an rtmutex's wait_lock spin) belongs to the outer one.
        let mut open: BTreeMap<u32, Wait> = BTreeMap::new();
        for r in recs {
            if !m.cpus.contains(&r.cpu) {
                m.cpus.push(r.cpu);
            }
            cpu_first.entry(r.cpu).or_insert(r.ts);
            name(&mut m, r.pid, &r.task);
            match r.event.as_str() {
                "sched_switch" => {
                    let (Some(pp), Some(np)) = (r.num("prev_pid"), r.num("next_pid")) else {
                        continue;
                    };
                    let (pp, np) = (pp as u32, np as u32);
                    name(&mut m, pp, r.field("prev_comm").unwrap_or("?"));
                    name(&mut m, np, r.field("next_comm").unwrap_or("?"));
                    for (pid, k) in [(pp, "prev_prio"), (np, "next_prio")] {
                        if let Some(p) = r.num(k) {
                            *prios.entry(pid).or_default().entry(p).or_default() += 1;
                        }
                    }
                    let begin = match running.get(&r.cpu) {
                        Some((pid, t)) if *pid == pp => *t,
                        _ => cpu_first.get(&r.cpu).copied().unwrap_or(m.start),
                    };
                    if pp != 0 {
                        m.slices.push(Slice {
                            cpu: r.cpu,
                            pid: pp,
                            begin,
                            end: r.ts,
                            left: r.field("prev_state").map(str::to_string),
                        });
                    }
                    running.insert(r.cpu, (np, r.ts));
                }
                "sched_waking" => {
                    if let (Some(c), Some(p)) = (r.field("comm"), r.num("pid")) {
                        name(&mut m, p as u32, c);
                        m.wakings.push((p as u32, r.ts));
                        if let Some(pr) = r.num("prio") {
                            *prios.entry(p as u32).or_default().entry(pr).or_default() += 1;
                        }
                    }
                }
                "sched_pi_setprio" => {
                    if let (Some(c), Some(p), Some(o), Some(n)) = (
                        r.field("comm"),
                        r.num("pid"),
                        r.num("oldprio"),
                        r.num("newprio"),
                    ) {
                        name(&mut m, p as u32, c);
                        let base = first_boost_old.entry(p as u32).or_insert(o.max(n));
                        *base = (*base).max(o.max(n));
                        m.boosts.push(Boost {
                            pid: p as u32,
                            ts: r.ts,
                            old: o,
                            new: n,
                        });
                    }
                }
                "contention_begin" => {
                    let w = Wait {
                        pid: r.pid,
                        cpu: r.cpu,
                        lock: lock_of(r),
                        flags: flags_of(r),
                        begin: r.ts,
                        end: None,
                    };
                    open.entry(r.pid).or_insert(w);
                }
                "contention_end" if open.get(&r.pid).is_some_and(|w| w.lock == lock_of(r)) => {
                    if let Some(mut w) = open.remove(&r.pid) {
                        w.end = Some(r.ts);
                        m.waits.push(w);
                    }
                }
                _ => {}
            }
        }
        m.waits.extend(open.into_values());
        m.waits.sort_by(|a, b| {
            a.begin
                .partial_cmp(&b.begin)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for (cpu, (pid, t)) in running {
            if pid != 0 {
                m.slices.push(Slice {
                    cpu,
                    pid,
                    begin: t,
                    end: m.end,
                    left: None,
                });
            }
        }
        m.cpus.sort_unstable();
        // Base priority: before the first boost, else the most seen.
        for (pid, t) in m.tasks.iter_mut() {
            t.prio = first_boost_old.get(pid).copied().or_else(|| {
                prios
                    .get(pid)
                    .and_then(|h| h.iter().max_by_key(|(_, n)| **n).map(|(p, _)| *p))
            });
        }
        m
    }

    pub fn task(&self, pid: u32) -> Task {
        self.tasks.get(&pid).cloned().unwrap_or(Task {
            pid,
            name: format!("pid {pid}"),
            prio: None,
        })
    }

    /// Time `pid` was runnable but off its CPU within [a, b], and the task
    /// that ran longest on that CPU meanwhile.
    pub fn preempted(&self, pid: u32, a: f64, b: f64) -> (f64, Option<u32>) {
        let mut mine: Vec<&Slice> = self.slices.iter().filter(|s| s.pid == pid).collect();
        mine.sort_by(|x, y| {
            x.begin
                .partial_cmp(&y.begin)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut total = 0.0;
        let mut by: BTreeMap<u32, f64> = BTreeMap::new();
        let mut gaps: Vec<(u32, f64, f64)> = Vec::new();
        for (i, s) in mine.iter().enumerate() {
            if s.left.as_deref().is_some_and(|l| l.starts_with('R')) {
                let back = mine.get(i + 1).map_or(self.end, |n| n.begin);
                gaps.push((s.cpu, s.end, back));
            }
        }
        // Runnable before its first slice in the window: since its last
        // wake-up, or (none seen) since the window's start.
        if let Some(first) = mine.first() {
            if first.begin > a {
                let since = self
                    .wakings
                    .iter()
                    .filter(|(p, t)| *p == pid && *t <= first.begin)
                    .map(|(_, t)| *t)
                    .fold(self.start, f64::max);
                gaps.push((first.cpu, since, first.begin));
            }
        }
        for (cpu, g0, g1) in gaps {
            let (x0, x1) = (g0.max(a), g1.min(b));
            if x1 <= x0 {
                continue;
            }
            total += x1 - x0;
            for s in self.slices.iter().filter(|s| s.cpu == cpu && s.pid != pid) {
                let o = s.end.min(x1) - s.begin.max(x0);
                if o > 0.0 {
                    *by.entry(s.pid).or_default() += o;
                }
            }
        }
        let top = by
            .into_iter()
            .max_by(|x, y| x.1.partial_cmp(&y.1).unwrap_or(std::cmp::Ordering::Equal))
            .map(|(p, _)| p);
        (total, top)
    }
}

/// The lock's name from its contention flags (and ep->lock's type).
pub fn lock_name(flags: &str, ep_lock_type: Option<&str>) -> String {
    let has = |f: &str| flags.split('|').any(|x| x == f);
    let side = if has("WRITE") {
        " (write side)"
    } else if has("READ") {
        " (read side)"
    } else {
        ""
    };
    if (has("WRITE") || has("READ")) && ep_lock_type == Some("rwlock_t") {
        return format!("ep->lock{side}");
    }
    if has("RT") && !has("WRITE") && !has("READ") && ep_lock_type == Some("spinlock_t") {
        return "ep->lock (spinlock_t, an rt_mutex on RT)".into();
    }
    let kind = if has("WRITE") || has("READ") {
        "an rwlock"
    } else if has("MUTEX") {
        "a mutex"
    } else if has("RT") {
        "an rt_mutex"
    } else {
        "a lock"
    };
    format!("{kind}{side} [flags={flags}]")
}

fn ms(s: f64) -> String {
    let v = s * 1e3;
    if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// The wait that counts in a window frozen at a worst call of `lat_us`
/// (the call: the last `lat_us` before the freeze, +10% +2 ms for the drift
/// between the module's clock and the trace clock under TCG): among the
/// sleeping-lock waits (not raw spins, `flags=SPIN`) that cover at least a
/// quarter of the call, the highest-priority waiter's (the timed caller
/// outranks the tasks it waits for), the one that covers most; ties to the
/// task of the window's last event (the snapshot's caller). Without one:
/// the wait that covers the call most; then [`key_wait`].
pub fn key_wait_in(m: &Model, lat_us: Option<u64>, last_pid: Option<u32>) -> Option<&Wait> {
    let Some(lat) = lat_us else {
        return key_wait(m);
    };
    let call = lat as f64 / 1e6 * 1.1 + 0.002;
    let from = m.end - call;
    let overlap = |w: &Wait| w.end.unwrap_or(m.end).min(m.end) - w.begin.max(from);
    let cmp = |a: &&Wait, b: &&Wait| {
        overlap(a)
            .partial_cmp(&overlap(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let sleeping = || {
        m.waits
            .iter()
            .filter(|w| w.flags != "SPIN" && overlap(w) > 0.0)
    };
    let prio = |w: &Wait| m.task(w.pid).prio.unwrap_or(200);
    sleeping()
        .filter(|w| overlap(w) >= 0.25 * (lat as f64 / 1e6))
        .min_by(|a, b| {
            prio(a)
                .cmp(&prio(b))
                .then_with(|| cmp(b, a))
                .then_with(|| (Some(b.pid) == last_pid).cmp(&(Some(a.pid) == last_pid)))
        })
        .or_else(|| sleeping().max_by(cmp))
        .or_else(|| key_wait(m))
}

/// The longest wait (an open one lasts until the end), ties to the
/// higher-priority waiter; raw spins only when there is nothing else.
pub fn key_wait(m: &Model) -> Option<&Wait> {
    let sleeping = m.waits.iter().any(|w| w.flags != "SPIN");
    m.waits
        .iter()
        .filter(|w| !sleeping || w.flags != "SPIN")
        .max_by(|a, b| {
            let la = a.end.unwrap_or(m.end) - a.begin;
            let lb = b.end.unwrap_or(m.end) - b.begin;
            la.partial_cmp(&lb)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| {
                    let pa = m.task(a.pid).prio.unwrap_or(200);
                    let pb = m.task(b.pid).prio.unwrap_or(200);
                    pb.cmp(&pa)
                })
        })
}

/// Who ended a wait: the task whose sched_waking woke the waiter last
/// within the wait.
fn waker(recs: &[Record], w: &Wait) -> Option<u32> {
    let end = w.end?;
    recs.iter()
        .rev()
        .find(|r| {
            r.event == "sched_waking"
                && r.num("pid") == Some(w.pid as i64)
                && r.ts >= w.begin
                && r.ts <= end + 1e-6
                && r.pid != w.pid
        })
        .map(|r| r.pid)
}

/// The one-line root cause of a window, or None when it shows nothing to
/// explain (no events).
pub fn root_cause(win: &Window, ep_lock_type: Option<&str>) -> Option<String> {
    let recs = &win.records;
    if recs.is_empty() {
        return None;
    }
    let m = Model::build(recs);
    let key = if win.reason == "hang" {
        key_wait(&m)
    } else {
        key_wait_in(&m, win.lat_us, recs.last().map(|r| r.pid))
    };
    let Some(w) = key else {
        let boosts = boost_summary(&m, m.start, m.end);
        return Some(format!(
            "no lock contention in the {} window before the {}{}",
            ms(m.end - m.start),
            if win.reason == "hang" {
                "freeze"
            } else {
                "worst call"
            },
            if boosts.is_empty() {
                String::new()
            } else {
                format!("; {boosts}")
            }
        ));
    };
    let victim = m.task(w.pid);
    let lock = lock_name(&w.flags, ep_lock_type);
    let prefix = if win.reason == "hang" && w.end.is_some() {
        // The buffer no longer holds the moment the cycle closed.
        let span: Vec<String> = m
            .cpus
            .iter()
            .filter_map(|c| {
                let first = recs.iter().find(|r| r.cpu == *c)?.ts;
                Some(format!("CPU{c} {}", ms(m.end - first)))
            })
            .collect();
        format!(
            "hang, but no wait is open at the freeze in the trace (it holds the last {}); longest wait: ",
            span.join(", ")
        )
    } else {
        String::new()
    };
    match w.end {
        Some(end) => {
            let mut s = format!(
                "{prefix}{} waited {} for {}",
                victim.label(),
                ms(end - w.begin),
                lock
            );
            if let Some(h) = waker(recs, w) {
                let holder = m.task(h);
                let held = if w.flags.contains("WRITE") {
                    "read-held"
                } else {
                    "held"
                };
                s.push_str(&format!(": {held} by {}", holder.label()));
                let (pre, by) = m.preempted(h, w.begin, end);
                if pre > 0.0 {
                    let by = by.map(|p| m.task(p).label()).unwrap_or("?".into());
                    s.push_str(&format!(", which was preempted by {by} for {}", ms(pre)));
                }
                let boosted = m
                    .boosts
                    .iter()
                    .find(|b| b.pid == h && b.new < b.old && b.ts >= w.begin - 1e-6 && b.ts <= end);
                match boosted {
                    Some(b) => s.push_str(&format!(
                        "; boosted to {} after {}",
                        policy(Some(b.new)),
                        ms(b.ts - w.begin)
                    )),
                    None => s.push_str("; no priority boost"),
                }
            } else {
                s.push_str("; releaser not in the window");
            }
            Some(s)
        }
        None => Some(hang_cycle(&m, recs, ep_lock_type)),
    }
}

fn boost_summary(m: &Model, a: f64, b: f64) -> String {
    let v: Vec<String> = m
        .boosts
        .iter()
        .filter(|x| x.new < x.old && x.ts >= a && x.ts <= b)
        .map(|x| {
            format!(
                "{} boosted {} -> {}",
                m.task(x.pid).name,
                policy(Some(x.old)),
                policy(Some(x.new))
            )
        })
        .collect();
    if v.is_empty() {
        return String::new();
    }
    let n = v.len();
    let mut s = v[0].clone();
    if n > 1 {
        s.push_str(&format!(" (and {} more boosts)", n - 1));
    }
    s
}

/// A hang: every wait still open at the freeze, in the order it began, and
/// what each CPU ran at the end.
fn hang_cycle(m: &Model, recs: &[Record], ep_lock_type: Option<&str>) -> String {
    let mut parts = Vec::new();
    let open: Vec<&Wait> = m.waits.iter().filter(|w| w.end.is_none()).collect();
    let first = open.first().map(|w| w.begin).unwrap_or(m.start);
    for (i, w) in open.iter().enumerate() {
        let t = m.task(w.pid);
        let behind = if i > 0 && open[0].lock == w.lock {
            format!(" queued behind {}", m.task(open[0].pid).name)
        } else {
            String::new()
        };
        parts.push(format!(
            "{} blocked {} on {}{}",
            t.label(),
            ms(m.end - w.begin),
            lock_name(&w.flags, ep_lock_type),
            behind
        ));
    }
    // Who ran the CPUs since the first wait: a task with most of that time.
    let span = m.end - first;
    for cpu in &m.cpus {
        let mut on: BTreeMap<u32, f64> = BTreeMap::new();
        for s in m.slices.iter().filter(|s| s.cpu == *cpu) {
            let o = s.end.min(m.end) - s.begin.max(first);
            if o > 0.0 {
                *on.entry(s.pid).or_default() += o;
            }
        }
        if let Some((pid, t)) = on
            .into_iter()
            .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        {
            if span > 0.0 && t > 0.5 * span {
                parts.push(format!(
                    "{} ran {} of those {} on CPU{}",
                    m.task(pid).label(),
                    ms(t),
                    ms(span),
                    cpu
                ));
            }
        }
    }
    let waiting: Vec<u32> = open.iter().map(|w| w.pid).collect();
    for (pid, t) in &m.tasks {
        if *pid == 0 || waiting.contains(pid) {
            continue;
        }
        let (pre, by) = m.preempted(*pid, first, m.end);
        if pre > 0.5 * (m.end - first) && pre > 0.01 && t.prio.is_some_and(|p| p < 100) {
            parts.push(format!(
                "{} preempted {} by {}",
                t.label(),
                ms(pre),
                by.map(|p| m.task(p).name).unwrap_or("?".into())
            ));
        }
    }
    // Soft timers: the last expiry a ktimers thread ran.
    let last_soft = recs
        .iter()
        .rev()
        .find(|r| r.event == "hrtimer_expire_entry" && r.task.starts_with("ktimers"));
    if let Some(r) = last_soft {
        parts.push(format!(
            "no soft hrtimer expired for the last {} (last in {})",
            ms(m.end - r.ts),
            r.task
        ));
    }
    format!(
        "hang: {}; no contention_end before the freeze",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftrace::{parse_line, Source};

    fn win(lines: &[&str]) -> Window {
        Window {
            source: Source::Guest,
            reason: "worst".into(),
            lat_us: None,
            window_ms: None,
            raw: vec![],
            records: lines.iter().map(|l| parse_line(l).unwrap()).collect(),
        }
    }

    #[test]
    fn inversion_line() {
        let w = win(&[
            " ept_prod/0-50 [000] d..2. 1.000000: sched_switch: prev_comm=ept_prod/0 prev_pid=50 prev_prio=89 prev_state=R+ ==> next_comm=ept_hog/0 next_pid=52 next_prio=79",
            " ept_cons/0-51 [001] d..1. 1.001000: contention_begin: 0000000011 (flags=WRITE|RT)",
            " ept_cons/0-51 [001] d..2. 1.001010: sched_switch: prev_comm=ept_cons/0 prev_pid=51 prev_prio=69 prev_state=D ==> next_comm=swapper/1 next_pid=0 next_prio=120",
            " ept_hog/0-52 [000] d..2. 1.100000: sched_switch: prev_comm=ept_hog/0 prev_pid=52 prev_prio=79 prev_state=S ==> next_comm=ept_prod/0 next_pid=50 next_prio=89",
            " ept_prod/0-50 [000] d..2. 1.100100: sched_waking: comm=ept_cons/0 pid=51 prio=69 target_cpu=001",
            " ept_cons/0-51 [001] d..1. 1.100200: contention_end: 0000000011 (ret=0)",
        ]);
        let s = root_cause(&w, Some("rwlock_t")).unwrap();
        assert_eq!(s, "ept_cons/0 (FIFO 30) waited 99.2 ms for ep->lock (write side): read-held by ept_prod/0 (FIFO 10), which was preempted by ept_hog/0 (FIFO 20) for 99.0 ms; no priority boost");
    }

    #[test]
    fn boost_line() {
        let w = win(&[
            " ept_cons/0-51 [001] d..1. 1.000000: contention_begin: 0000000022 (flags=RT)",
            " ept_cons/0-51 [001] d..2. 1.000010: sched_pi_setprio: comm=ept_prod/0 pid=50 oldprio=89 newprio=69",
            " ept_prod/0-50 [000] d..2. 1.000040: sched_waking: comm=ept_cons/0 pid=51 prio=69 target_cpu=001",
            " ept_prod/0-50 [000] d..2. 1.000041: sched_pi_setprio: comm=ept_prod/0 pid=50 oldprio=69 newprio=89",
            " ept_cons/0-51 [001] d..1. 1.000050: contention_end: 0000000022 (ret=0)",
        ]);
        let s = root_cause(&w, Some("spinlock_t")).unwrap();
        assert!(
            s.starts_with("ept_cons/0 (FIFO 30) waited 0.05 ms for ep->lock (spinlock_t"),
            "{s}"
        );
        assert!(s.contains("held by ept_prod/0 (FIFO 10)"), "{s}");
        assert!(s.ends_with("boosted to FIFO 30 after 0.01 ms"), "{s}");
    }
}
