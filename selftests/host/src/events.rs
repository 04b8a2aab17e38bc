//! One pass over a console log: typed events.
//!
//! Every line of a [`ConsoleLog`] (kernel records already counted once, see
//! [`ConsoleLog::parse`]) and every host note becomes at most one [`Event`].
//! The rules (`rules.rs`) only look at events; nothing else reads the text.
//!
//! Kernel badness is one table, [`KERNEL_BADNESS`]: (substrings that must
//! all occur, verdict, normalised title), first match wins, in the spirit of
//! rcutorture's console-badness.sh and syzkaller's report titles. Adding a
//! pattern is one line there. The producers' bug kinds are one table too,
//! [`BUG_KINDS`].

use crate::data::Verdict;
use crate::log::{kv_pairs, ConsoleLog, HostNote, LogLine};
use std::collections::BTreeMap;

/// A kernel report pattern: every needle must occur in the line; a needle
/// starting with `^` must start it.
#[derive(Debug, Clone, Copy)]
pub struct Badness {
    pub needles: &'static [&'static str],
    pub verdict: Verdict,
    pub title: &'static str,
}

const fn bad(needles: &'static [&'static str], verdict: Verdict, title: &'static str) -> Badness {
    Badness {
        needles,
        verdict,
        title,
    }
}

use Verdict::{Crash, Stall};

/// The kernel's own reports, first match wins (specific before generic:
/// `BUG: workqueue lockup` before `BUG: `, lockdep's `WARNING:` titles
/// before the plain `WARNING:`).
pub const KERNEL_BADNESS: &[Badness] = &[
    bad(&["detected stalls on CPUs/tasks"], Stall, "RCU stall"),
    bad(&["detected expedited stalls"], Stall, "RCU stall"),
    bad(&["detected stalls on tasks"], Stall, "RCU stall"),
    bad(&["self-detected stall on CPU"], Stall, "RCU stall"),
    bad(
        &["rcu_", "kthread starved for"],
        Stall,
        "RCU grace-period kthread starved",
    ),
    bad(
        &["INFO: task ", "blocked for more than"],
        Stall,
        "hung task",
    ),
    bad(&["soft lockup - CPU#"], Stall, "soft lockup"),
    bad(&["hard LOCKUP"], Stall, "hard lockup"),
    bad(&["BUG: workqueue lockup"], Stall, "workqueue lockup"),
    bad(&["Kernel panic - not syncing"], Crash, "kernel panic"),
    bad(
        &["possible circular locking dependency"],
        Crash,
        "lockdep splat",
    ),
    bad(&["inconsistent lock state"], Crash, "lockdep splat"),
    bad(
        &["possible recursive locking detected"],
        Crash,
        "lockdep splat",
    ),
    bad(&["bad unlock balance detected"], Crash, "lockdep splat"),
    bad(&["held lock freed"], Crash, "lockdep splat"),
    bad(&["DEBUG_LOCKS_WARN_ON"], Crash, "lockdep splat"),
    bad(&["suspicious RCU usage"], Crash, "lockdep splat"),
    bad(
        &["BUG: sleeping function called from invalid context"],
        Crash,
        "sleeping in atomic context",
    ),
    bad(
        &["BUG: scheduling while atomic"],
        Crash,
        "sleeping in atomic context",
    ),
    bad(&["BUG: KASAN: "], Crash, "KASAN report"),
    bad(&["UBSAN: "], Crash, "UBSAN report"),
    bad(&["list_add corruption"], Crash, "list corruption"),
    bad(&["list_del corruption"], Crash, "list corruption"),
    bad(&["kernel BUG at "], Crash, "kernel BUG"),
    bad(&["BUG: "], Crash, "kernel BUG"),
    bad(&["^Oops"], Crash, "Oops"),
    bad(&["Oops: "], Crash, "Oops"),
    bad(&["Oops - "], Crash, "Oops"),
    bad(&["general protection fault"], Crash, "Oops"),
    bad(&["Unable to handle kernel"], Crash, "Oops"),
    bad(&["refcount_t: "], Crash, "kernel WARNING"),
    bad(&["^WARNING: "], Crash, "kernel WARNING"),
    bad(&["] WARNING: "], Crash, "kernel WARNING"),
];

fn matches(text: &str, needles: &[&str]) -> bool {
    needles.iter().all(|n| match n.strip_prefix('^') {
        Some(p) => text.starts_with(p),
        None => text.contains(n),
    })
}

/// Kernel badness: (verdict, title) for a kernel line, if it is a report.
pub fn classify_kernel(text: &str) -> Option<(Verdict, &'static str)> {
    KERNEL_BADNESS
        .iter()
        .find(|b| matches(text, b.needles))
        .map(|b| (b.verdict, b.title))
}

/// What a producer's `not ok` says it found: `# bug detected: <kind>: ...`.
/// The producer decides the kind; this table maps it to the verdict.
pub const BUG_KINDS: &[(&str, Verdict)] = &[
    ("priority inversion", Verdict::Inversion),
    ("hang", Verdict::Stall),
    ("lost wake-up", Verdict::LostWakeup),
    ("false negative", Verdict::FalseNegative),
];

/// Who printed a KTAP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Producer {
    /// The epoll_torture module (`epoll_torture: ` on kernel records).
    Module,
    /// The wake-up guest program (`ept-wakeup: `).
    Wakeup,
    /// The kernel's kselftests (unprefixed TAP on the console).
    Kselftest,
}

/// Line prefixes of the prefixed producers.
pub const PRODUCER_PREFIXES: &[(&str, Producer)] = &[
    ("epoll_torture: ", Producer::Module),
    ("ept-wakeup: ", Producer::Wakeup),
];

impl Producer {
    pub fn name(self) -> &'static str {
        match self {
            Producer::Module => "epoll_torture",
            Producer::Wakeup => "ept-wakeup",
            Producer::Kselftest => "kselftest",
        }
    }
}

/// A TAP/KTAP result line.
#[derive(Debug, Clone, PartialEq)]
pub struct TapLine {
    pub ok: bool,
    pub number: u64,
    pub name: String,
    /// After ` # `: `bug detected: ...`, `error: ...`, `SKIP ...`, `TODO ...`.
    pub directive: String,
}

impl TapLine {
    pub fn is_skip(&self) -> bool {
        self.directive.to_ascii_uppercase().starts_with("SKIP")
    }
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

/// A number, with a unit suffix (`12ms`, `5%`) ignored.
pub fn num(v: &str) -> Option<f64> {
    v.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%')
        .parse()
        .ok()
}

/// What the host (run-vm.sh) noted.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    /// The deadline or the idle limit was hit; SysRq dumps follow.
    Deadline {
        after_s: Option<f64>,
    },
    /// The host killed QEMU after the dumps.
    Kill {
        after_s: Option<f64>,
    },
    /// QEMU exited by itself (the guest powered off or died).
    Exit {
        after_s: Option<f64>,
    },
    /// `load start loadavg=a,b,c ncpu=N`
    LoadStart {
        load1: Option<f64>,
        ncpu: Option<f64>,
    },
    /// `load end loadavg=a,b,c wall_s=.. qemu_cpu_s=.. vcpu_wait_s=..`
    LoadEnd {
        load1: Option<f64>,
        wall_s: Option<f64>,
        qemu_cpu_s: Option<f64>,
        vcpu_wait_s: Option<f64>,
    },
    Other,
}

/// What one line (or host note) says.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `EPT: guest up release=.. cpus=N`
    GuestUp {
        release: Option<String>,
        cpus: Option<u32>,
    },
    /// `EPT: plan begin` (old: `steps begin`).
    PlanBegin,
    /// `EPT: plan runs=S:N,S:N,...`: the runs the plan will make, in order
    /// (optional; lets the judge name the runs a hang kept from starting).
    PlanRuns {
        runs: Vec<(String, u32)>,
    },
    /// `EPT: plan end rc=N` (old: `steps end rc=N`).
    PlanEnd {
        rc: i64,
    },
    /// `EPT: run begin scenario=S repeat=N`
    RunBegin {
        scenario: String,
        repeat: u32,
    },
    /// `EPT: run end scenario=S repeat=N rc=R`
    RunEnd {
        scenario: String,
        repeat: u32,
        rc: i64,
    },
    /// `<p>: KTAP version 1` / `TAP version 13`: a new plan starts.
    TapVersion {
        producer: Producer,
    },
    /// `<p>: 1..N`
    TapPlan {
        producer: Producer,
        count: u64,
    },
    TapResult {
        producer: Producer,
        tap: TapLine,
    },
    /// `<p>: # config k=v ...`
    Config {
        producer: Producer,
        kv: BTreeMap<String, String>,
    },
    /// `<p>: # heartbeat scenario=S t_ms=.. progress=..`; ept-kiszka's
    /// per-second samples are heartbeats too (progress = reader iterations
    /// so far).
    Heartbeat {
        /// None: ept-kiszka's samples.
        producer: Option<Producer>,
        key: String,
        t_s: f64,
        progress: f64,
    },
    /// `<p>: # metrics k=v ...`
    Metrics {
        producer: Producer,
        kv: BTreeMap<String, String>,
    },
    /// A kernel report from [`KERNEL_BADNESS`].
    Kernel {
        verdict: Verdict,
        title: &'static str,
    },
    /// `sched: RT throttling activated`
    RtThrottling,
    /// `task:NAME state:S ...` from SysRq-w/-t or a hung-task report.
    TaskDump,
    Host(HostEvent),
    /// `EPT-SELFTEST name=.. rc=.. seconds=..` (a selftest binary's exit).
    Selftest {
        name: String,
        rc: f64,
        seconds: Option<f64>,
    },
    /// `EPT-SELFTEST-RERUN test=.. rc=.. seconds=..`
    SelftestRerun {
        test: String,
        rc: f64,
        seconds: Option<f64>,
    },
    /// `# epoll65: Test terminated by timeout` (kselftest harness).
    SelftestTimeout {
        test: String,
    },
    /// The shell could not open a scenario script.
    MissingScript,
    /// Any other line (user-space output is not workload progress).
    Other,
}

/// One event: what a line or host note says, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the file (line number of the earlier copy).
    pub no: usize,
    /// Index into `ConsoleLog::lines` (None for host notes).
    pub line: Option<usize>,
    pub host_s: Option<f64>,
    pub kind: Kind,
}

/// The body of a prefixed producer line, trimmed of KTAP indentation.
/// Kernel records may have the prefix after other text (a console line
/// glued to the previous one); user-space lines must start with it (so
/// `ept-run: epoll_torture: ok 1 stall`, ept-run quoting the module, is not
/// a result).
pub fn producer_body(text: &str, anywhere: bool) -> Option<(Producer, &str)> {
    PRODUCER_PREFIXES.iter().find_map(|(p, who)| {
        let i = if anywhere {
            text.find(p)?
        } else {
            text.trim_start()
                .starts_with(p)
                .then(|| text.len() - text.trim_start().len())?
        };
        Some((*who, text[i + p.len()..].trim_start()))
    })
}

fn rc_after(text: &str, key: &str) -> Option<i64> {
    let i = text.find(key)?;
    text[i + key.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect::<String>()
        .parse()
        .ok()
}

fn leading_u32(v: &str) -> Option<u32> {
    v.chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// The EPT markers printed by /init and the plan.
fn ept_marker(t: &str) -> Option<Kind> {
    let i = t.find("EPT: ")?;
    let m = &t[i + 5..];
    if m.starts_with("guest up") {
        let kv = kv_pairs(m);
        return Some(Kind::GuestUp {
            release: kv.get("release").cloned(),
            cpus: kv.get("cpus").and_then(|v| leading_u32(v)),
        });
    }
    if m.starts_with("plan begin") || m.starts_with("steps begin") {
        return Some(Kind::PlanBegin);
    }
    if let Some(list) = m.strip_prefix("plan runs=") {
        let runs = list
            .split_whitespace()
            .next()
            .unwrap_or("")
            .split(',')
            .filter_map(|r| {
                let (s, n) = r.rsplit_once(':').unwrap_or((r, "1"));
                Some((s.to_string(), leading_u32(n)?)).filter(|x| !x.0.is_empty())
            })
            .collect();
        return Some(Kind::PlanRuns { runs });
    }
    if m.starts_with("plan end") || m.starts_with("steps end") {
        return Some(Kind::PlanEnd {
            rc: rc_after(m, "rc=").unwrap_or(-1),
        });
    }
    if let Some(r) = m.strip_prefix("run begin ") {
        let kv = kv_pairs(r);
        return Some(Kind::RunBegin {
            scenario: kv.get("scenario").cloned().unwrap_or_default(),
            repeat: kv.get("repeat").and_then(|v| leading_u32(v)).unwrap_or(1),
        });
    }
    if let Some(r) = m.strip_prefix("run end ") {
        let kv = kv_pairs(r);
        return Some(Kind::RunEnd {
            scenario: kv.get("scenario").cloned().unwrap_or_default(),
            repeat: kv.get("repeat").and_then(|v| leading_u32(v)).unwrap_or(1),
            rc: kv.get("rc").and_then(|v| v.parse().ok()).unwrap_or(-1),
        });
    }
    None
}

/// KTAP lines of one producer (`body` is after the prefix).
fn ktap(producer: Producer, body: &str, l: &LogLine) -> Option<Kind> {
    if body.starts_with("KTAP version") || body.starts_with("TAP version") {
        return Some(Kind::TapVersion { producer });
    }
    if let Some(n) = body.strip_prefix("1..") {
        if let Ok(count) = n.trim().parse() {
            return Some(Kind::TapPlan { producer, count });
        }
    }
    if let Some(rest) = body.strip_prefix("# heartbeat ") {
        let kv = kv_pairs(rest);
        let t_s = kv
            .get("t_ms")
            .and_then(|v| num(v))
            .map(|v| v / 1000.0)
            .or(l.kernel_s)
            .or(l.host_s)
            .unwrap_or(0.0);
        return Some(Kind::Heartbeat {
            producer: Some(producer),
            key: format!(
                "{}:{}",
                producer.name(),
                kv.get("scenario").map_or("", |s| s.as_str())
            ),
            t_s,
            progress: kv.get("progress").and_then(|v| num(v)).unwrap_or(0.0),
        });
    }
    if let Some(rest) = body.strip_prefix("# metrics ") {
        return Some(Kind::Metrics {
            producer,
            kv: kv_pairs(rest),
        });
    }
    if let Some(rest) = body.strip_prefix("# config ") {
        return Some(Kind::Config {
            producer,
            kv: kv_pairs(rest),
        });
    }
    let (ok, number, name, directive) = parse_tap_result(body)?;
    Some(Kind::TapResult {
        producer,
        tap: TapLine {
            ok,
            number,
            name,
            directive,
        },
    })
}

/// User-space lines of the selftest steps and the cfs-stall reproducer.
/// `kiszka` carries the reader's iterations so far (its heartbeat progress).
fn user_space(l: &LogLine, kiszka: &mut f64) -> Option<Kind> {
    let t = l.text.as_str();
    let body = t.trim_start();
    if let Some(rest) = body.strip_prefix("ept-kiszka: t=") {
        let kv = kv_pairs(rest);
        let t_s = rest.split('s').next().and_then(num);
        if let (Some(t_s), Some(iters)) = (t_s, kv.get("reader_iters/s").and_then(|v| num(v))) {
            *kiszka += iters;
            return Some(Kind::Heartbeat {
                producer: None,
                key: "ept-kiszka".into(),
                t_s,
                progress: *kiszka,
            });
        }
    }
    if let Some(test) = body
        .strip_prefix("# ")
        .and_then(|r| r.strip_suffix(": Test terminated by timeout"))
    {
        return Some(Kind::SelftestTimeout {
            test: test.to_string(),
        });
    }
    if let Some(i) = t.find("EPT-SELFTEST-RERUN ") {
        let kv = kv_pairs(&t[i + 19..]);
        return Some(Kind::SelftestRerun {
            test: kv.get("test")?.clone(),
            rc: kv.get("rc").and_then(|v| num(v)).unwrap_or(-1.0),
            seconds: kv.get("seconds").and_then(|v| num(v)),
        });
    }
    if let Some(i) = t.find("EPT-SELFTEST ") {
        let kv = kv_pairs(&t[i + 13..]);
        // The guest's tally after long-timeout reruns, when it has one.
        let rc = kv
            .get("rc_after_reruns")
            .or(kv.get("rc"))
            .and_then(|v| num(v))
            .unwrap_or(-1.0);
        return Some(Kind::Selftest {
            name: kv.get("name").cloned().unwrap_or_else(|| "?".into()),
            rc,
            seconds: kv.get("seconds").and_then(|v| num(v)),
        });
    }
    if t.contains("can't open '/ept/scenarios/")
        || (t.contains("/ept/scenarios/") && t.contains("No such file"))
    {
        return Some(Kind::MissingScript);
    }
    ktap(Producer::Kselftest, body, l).filter(|k| {
        matches!(
            k,
            Kind::TapVersion { .. } | Kind::TapPlan { .. } | Kind::TapResult { .. }
        )
    })
}

fn host_event(n: &HostNote) -> HostEvent {
    let t = n.text.as_str();
    let kv = || kv_pairs(t);
    let load1 = |kv: &BTreeMap<String, String>| {
        kv.get("loadavg")
            .and_then(|v| v.split(',').next())
            .and_then(num)
    };
    let f = |kv: &BTreeMap<String, String>, k: &str| kv.get(k).and_then(|v| num(v));
    if t.starts_with("HANG") {
        HostEvent::Kill { after_s: n.after_s }
    } else if t.contains("reached after") {
        HostEvent::Deadline { after_s: n.after_s }
    } else if t.starts_with("QEMU exited") {
        HostEvent::Exit { after_s: n.after_s }
    } else if t.starts_with("load start") {
        let kv = kv();
        HostEvent::LoadStart {
            load1: load1(&kv),
            ncpu: f(&kv, "ncpu"),
        }
    } else if t.starts_with("load end") {
        let kv = kv();
        HostEvent::LoadEnd {
            load1: load1(&kv),
            wall_s: f(&kv, "wall_s"),
            qemu_cpu_s: f(&kv, "qemu_cpu_s"),
            vcpu_wait_s: f(&kv, "vcpu_wait_s"),
        }
    } else {
        HostEvent::Other
    }
}

/// What one log line says.
fn line_kind(l: &LogLine, kiszka: &mut f64) -> Kind {
    let t = l.text.as_str();
    if l.is_kernel() {
        if let Some((p, body)) = producer_body(t, true) {
            if let Some(k) = ktap(p, body, l) {
                return k;
            }
        }
        if let Some((verdict, title)) = classify_kernel(t) {
            return Kind::Kernel { verdict, title };
        }
        if t.contains("sched: RT throttling activated") {
            return Kind::RtThrottling;
        }
        if t.contains("task:") && t.contains(" state:") {
            return Kind::TaskDump;
        }
        return Kind::Other;
    }
    // A panic can reach the console without a usable kernel stamp.
    if let Some((verdict, title)) = classify_kernel(t).filter(|x| x.1 == "kernel panic") {
        return Kind::Kernel { verdict, title };
    }
    if let Some(k) = ept_marker(t) {
        return k;
    }
    if let Some((p, body)) = producer_body(t, false) {
        if p != Producer::Module {
            if let Some(k) = ktap(p, body, l) {
                return k;
            }
        }
    }
    user_space(l, kiszka).unwrap_or(Kind::Other)
}

/// The events of a log, in log order (lines and host notes interleaved).
pub fn events(log: &ConsoleLog) -> Vec<Event> {
    let mut out = Vec::with_capacity(log.lines.len() + log.notes.len());
    let mut kiszka = 0.0;
    for (i, l) in log.lines.iter().enumerate() {
        out.push(Event {
            no: l.no,
            line: Some(i),
            host_s: l.host_s,
            kind: line_kind(l, &mut kiszka),
        });
    }
    for n in &log.notes {
        out.push(Event {
            no: n.no,
            line: None,
            host_s: n.after_s,
            kind: Kind::Host(host_event(n)),
        });
    }
    out.sort_by_key(|e| e.no);
    out
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
    fn titles_are_normalised_and_specific_first() {
        let t = |s| classify_kernel(s).map(|x| x.1);
        assert_eq!(
            t("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!"),
            Some("workqueue lockup")
        );
        assert_eq!(
            t("BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48"),
            Some("sleeping in atomic context")
        );
        assert_eq!(
            t("WARNING: possible recursive locking detected"),
            Some("lockdep splat")
        );
        assert_eq!(t("kernel BUG at fs/eventpoll.c:123!"), Some("kernel BUG"));
        assert_eq!(
            t("watchdog: Watchdog detected hard LOCKUP on cpu 1"),
            Some("hard lockup")
        );
        // Not anchored: a user-space echo of the word is not a report.
        assert_eq!(t("grep WARNING: in dmesg"), None);
        // Every pattern is reachable: no earlier entry swallows it.
        for (i, b) in KERNEL_BADNESS.iter().enumerate() {
            let sample: String = b
                .needles
                .iter()
                .map(|n| n.trim_start_matches('^'))
                .collect::<Vec<_>>()
                .join(" x ");
            let first = KERNEL_BADNESS
                .iter()
                .position(|x| matches(&sample, x.needles))
                .unwrap();
            assert!(
                KERNEL_BADNESS[first].title == b.title,
                "pattern {i} {:?} is shadowed by {first}",
                b.needles
            );
        }
    }

    #[test]
    fn markers_old_and_new() {
        assert_eq!(ept_marker("EPT: steps begin"), Some(Kind::PlanBegin));
        assert_eq!(ept_marker("EPT: plan begin"), Some(Kind::PlanBegin));
        assert_eq!(
            ept_marker("EPT: steps end rc=2"),
            Some(Kind::PlanEnd { rc: 2 })
        );
        assert_eq!(
            ept_marker("EPT: run begin scenario=stall repeat=3"),
            Some(Kind::RunBegin {
                scenario: "stall".into(),
                repeat: 3
            })
        );
        assert_eq!(
            ept_marker("EPT: run end scenario=stall repeat=3 rc=1"),
            Some(Kind::RunEnd {
                scenario: "stall".into(),
                repeat: 3,
                rc: 1
            })
        );
        // A kernel record glued to the marker line by the console.
        assert_eq!(
            ept_marker(
                "EPT: guest up release=7.3.4 version=#1 SMP cpus=2[    1.726133] clocksource: x"
            ),
            Some(Kind::GuestUp {
                release: Some("7.3.4".into()),
                cpus: Some(2)
            })
        );
        assert_eq!(ept_marker("EPT: stall rc=0"), None);
        assert_eq!(
            ept_marker("EPT: plan runs=inversion:1,inversion:2,stall:1"),
            Some(Kind::PlanRuns {
                runs: vec![
                    ("inversion".into(), 1),
                    ("inversion".into(), 2),
                    ("stall".into(), 1)
                ]
            })
        );
    }

    #[test]
    fn producers_by_prefix() {
        let kind = |text: &str, kernel_s: Option<f64>| {
            let l = LogLine {
                no: 1,
                host_s: Some(1.0),
                kernel_s,
                text: text.into(),
                source: crate::log::Source::Console,
            };
            line_kind(&l, &mut 0.0)
        };
        // The wake-up program prints to the console (user space) ...
        assert_eq!(
            kind(
                "ept-wakeup: not ok 1 wakeup # bug detected: lost wake-up: waiter 2 slept",
                None
            ),
            Kind::TapResult {
                producer: Producer::Wakeup,
                tap: TapLine {
                    ok: false,
                    number: 1,
                    name: "wakeup".into(),
                    directive: "bug detected: lost wake-up: waiter 2 slept".into()
                }
            }
        );
        assert_eq!(
            kind(
                "ept-wakeup: # heartbeat scenario=wakeup t_ms=2000 progress=17",
                None
            ),
            Kind::Heartbeat {
                producer: Some(Producer::Wakeup),
                key: "ept-wakeup:wakeup".into(),
                t_s: 2.0,
                progress: 17.0
            }
        );
        // ... or through /dev/kmsg (a kernel record): the same events.
        assert_eq!(
            kind("ept-wakeup: 1..1", Some(3.0)),
            Kind::TapPlan {
                producer: Producer::Wakeup,
                count: 1
            }
        );
        // The module only speaks through the kernel: a user-space line
        // quoting it (ept-run's own copy of the result) is not a result.
        assert_eq!(
            kind("ept-run: epoll_torture: ok 1 stall", None),
            Kind::Other
        );
        assert_eq!(
            kind("epoll_torture: KTAP version 1", Some(2.0)),
            Kind::TapVersion {
                producer: Producer::Module
            }
        );
        // Unprefixed TAP on the console is the kselftest harness's.
        assert!(matches!(
            kind("not ok 65 global.epoll65", None),
            Kind::TapResult {
                producer: Producer::Kselftest,
                ..
            }
        ));
        // ... but not as a kernel record.
        assert_eq!(kind("ok 1 something", Some(1.0)), Kind::Other);
    }

    #[test]
    fn host_load_notes() {
        let n = |t: &str| HostNote {
            no: 1,
            text: t.into(),
            after_s: None,
        };
        assert_eq!(
            host_event(&n("load start loadavg=1.50,0.90,0.40 ncpu=2")),
            HostEvent::LoadStart {
                load1: Some(1.5),
                ncpu: Some(2.0)
            }
        );
        assert_eq!(
            host_event(&n(
                "load end loadavg=2.10,1.00,0.50 wall_s=40 qemu_cpu_s=70.5 vcpu_wait_s=20"
            )),
            HostEvent::LoadEnd {
                load1: Some(2.1),
                wall_s: Some(40.0),
                qemu_cpu_s: Some(70.5),
                vcpu_wait_s: Some(20.0)
            }
        );
    }
}
