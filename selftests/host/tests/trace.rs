//! TRACE=1 (docs/trace.md) against real console logs captured from our
//! VMs with `ept run --trace --isolate` (selftests/host/fixtures/trace/,
//! never hand-written; fixtures/README.md says how each was made). Every
//! fixture has a row in `CASES` that asserts its verdict, every finding,
//! the trace windows and the root-cause line.

use ept_host::data::{Scenarios, Verdict};
use ept_host::ftrace::{self, Source};
use ept_host::judge::judge_runs;
use ept_host::log::ConsoleLog;
use ept_host::rootcause::root_cause;
use std::path::PathBuf;
use Verdict::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/trace")
}

/// A fixture as captured; the two stall captures (a hang's whole window,
/// 2.7 and 3.9 MB) are kept gzipped as `NAME.gz`.
fn load(name: &str) -> ConsoleLog {
    let p = dir().join(name);
    let t = if p.exists() {
        std::fs::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
    } else {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(dir().join(format!("{name}.gz")))
            .output()
            .unwrap_or_else(|e| panic!("{name}.gz: gzip: {e}"));
        assert!(out.status.success(), "{name}.gz: gzip -dc failed");
        out.stdout
    };
    ConsoleLog::parse(&String::from_utf8_lossy(&t))
}

struct Case {
    file: &'static str,
    scenario: &'static str,
    verdict: Verdict,
    /// Every finding: (verdict, what, count), highest verdict first.
    findings: &'static [(Verdict, &'static str, usize)],
    /// (reason, source, lines) of every trace window in the run.
    windows: &'static [(&'static str, Source, usize)],
    /// The root-cause line of the last window, exactly.
    cause: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "riscv64-rwlock-stall.log",
        scenario: "stall",
        verdict: Stall,
        findings: &[
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 1),
            (Stall, "RCU grace-period kthread starved", 1),
            (Fail, "run exited rc=1", 1),
        ],
        windows: &[("hang", Source::Guest, 23358)],
        cause: "hang: ept_cons/0 (FIFO 30) blocked 5007.1 ms on ep->lock (write side); ktimers/1 (FIFO 1) blocked 5006.8 ms on ep->lock (read side) queued behind ept_cons/0; ept_hog/0 (FIFO 20) ran 4919.1 ms of those 5007.1 ms on CPU0; ept_prod/0 (FIFO 10) preempted 5007.1 ms by ept_hog/0; no soft hrtimer expired for the last 5006.8 ms (last in ktimers/1); no contention_end before the freeze",
    },
    Case {
        file: "riscv64-rwlock-inversion.log",
        scenario: "inversion",
        verdict: Inversion,
        findings: &[
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 1),
            (Fail, "run exited rc=1", 1),
        ],
        windows: &[("worst", Source::Guest, 141)],
        cause: "ept_cons/0 (FIFO 30) waited 108.9 ms for ep->lock (write side): read-held by ept_prod/0 (FIFO 10), which was preempted by ept_hog/0 (FIFO 20) for 99.3 ms; no priority boost",
    },
    Case {
        file: "x86_64-rwlock-stall.log",
        scenario: "stall",
        verdict: Stall,
        findings: &[
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 1),
            (Stall, "RCU grace-period kthread starved", 1),
            (Fail, "run exited rc=1", 1),
        ],
        windows: &[("hang", Source::Guest, 15420)],
        cause: "hang: ept_cons/0 (FIFO 30) blocked 5004.0 ms on ep->lock (write side); ktimers/1 (FIFO 1) blocked 5004.0 ms on ep->lock (read side) queued behind ept_cons/0; ept_hog/0 (FIFO 20) ran 4910.5 ms of those 5004.0 ms on CPU0; ept_prod/0 (FIFO 10) preempted 5004.0 ms by ept_hog/0; no soft hrtimer expired for the last 5004.0 ms (last in ktimers/1); no contention_end before the freeze",
    },
    Case {
        file: "riscv64-spinlock-inversion.log",
        scenario: "inversion",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: inversion", 1),
            (Pass, "run exited rc=0", 1),
        ],
        windows: &[("worst", Source::Guest, 179)],
        cause: "ept_cons/0 (FIFO 30) waited 19.6 ms for ep->lock (spinlock_t, an rt_mutex on RT): held by ept_prod/0 (FIFO 10); boosted to FIFO 30 after 0.15 ms",
    },
    Case {
        file: "x86_64-rwlock-inversion.log",
        scenario: "inversion",
        verdict: Inversion,
        findings: &[
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 1),
            (Fail, "run exited rc=1", 1),
        ],
        windows: &[("worst", Source::Guest, 127)],
        cause: "ept_cons/0 (FIFO 30) waited 109.0 ms for ep->lock (write side): read-held by ept_prod/0 (FIFO 10), which was preempted by ept_hog/0 (FIFO 20) for 98.7 ms; no priority boost",
    },
    Case {
        file: "x86_64-spinlock-inversion.log",
        scenario: "inversion",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: inversion", 1),
            (Pass, "run exited rc=0", 1),
        ],
        windows: &[("worst", Source::Guest, 62)],
        cause: "ept_cons/0 (FIFO 30) waited 16.1 ms for ep->lock (spinlock_t, an rt_mutex on RT): held by ept_prod/0 (FIFO 10); boosted to FIFO 30 after 0.93 ms",
    },
];

#[test]
fn every_trace_fixture_has_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .map(|n| n.strip_suffix(".gz").map(str::to_string).unwrap_or(n))
        .filter(|n| n.ends_with(".log"))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES
        .iter()
        .map(|c| c.file)
        .chain(FROZEN.iter().map(|f| f.0))
        .map(str::to_string)
        .collect();
    cases.sort();
    assert_eq!(files, cases);
}

#[test]
fn verdicts_findings_windows_and_root_causes() {
    let scen = Scenarios::builtin();
    for c in CASES {
        let log = load(c.file);
        let runs = judge_runs(&log, &scen, c.scenario);
        assert_eq!(runs.len(), 1, "{}: one run per boot (--isolate)", c.file);
        let j = &runs[0];
        assert_eq!(j.scenario, c.scenario, "{}", c.file);
        assert_eq!(j.verdict, c.verdict, "{}: {}", c.file, j.reason);
        let got: Vec<(Verdict, &str, usize)> = j
            .findings
            .iter()
            .map(|f| (f.verdict, f.what.as_str(), f.count))
            .collect();
        assert_eq!(got, c.findings, "{}", c.file);
        let wins = ftrace::log_windows(&log);
        let shape: Vec<(&str, Source, usize)> = wins
            .iter()
            .map(|w| (w.reason.as_str(), w.source, w.records.len()))
            .collect();
        assert_eq!(shape, c.windows, "{}", c.file);
        let lock = log.header.get("LOCK_TYPE").map(String::as_str);
        let cause = root_cause(wins.last().unwrap(), lock).unwrap();
        assert_eq!(cause, c.cause, "{}", c.file);
        // The judge's evidence carries it.
        let note = format!(
            "{} ({}): {}",
            ftrace::NOTE,
            wins.last().unwrap().reason,
            cause
        );
        assert!(j.notes.contains(&note), "{}: {:?}", c.file, j.notes);
    }
}

/// The parser on real dumps: every `ftrace: ` line between the markers is
/// one record (as many as EPT-TRACE-BEGIN's `lines=` says), on a CPU of
/// the guest, in time order, and `.trace.txt` parses back to the same
/// records.
#[test]
fn parser_on_real_dumps() {
    for c in CASES {
        let log = load(c.file);
        let begins: Vec<usize> = log
            .lines
            .iter()
            .filter_map(|l| l.text.strip_prefix("EPT-TRACE-BEGIN "))
            .map(|r| ept_host::log::kv_pairs(r)["lines"].parse().unwrap())
            .collect();
        let wins = ftrace::log_windows(&log);
        let guest: Vec<usize> = wins
            .iter()
            .filter(|w| w.source == Source::Guest)
            .map(|w| w.records.len())
            .collect();
        assert_eq!(guest, begins, "{}", c.file);
        for w in &wins {
            assert!(!w.records.is_empty(), "{}", c.file);
            assert!(w.records.iter().all(|r| r.cpu < 2), "{}", c.file);
            assert!(
                w.records.windows(2).all(|p| p[0].ts <= p[1].ts),
                "{}: time order",
                c.file
            );
            for ev in ["sched_switch", "sched_waking"] {
                assert!(w.records.iter().any(|r| r.event == ev), "{}: {ev}", c.file);
            }
            let text = ftrace::to_text(w);
            let back: Vec<_> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| ftrace::parse_line(l).unwrap())
                .collect();
            assert_eq!(back.len(), w.records.len(), "{}", c.file);
            for (a, b) in back.iter().zip(&w.records) {
                assert_eq!(
                    (a.pid, a.cpu, &a.event, &a.fields),
                    (b.pid, b.cpu, &b.event, &b.fields)
                );
                assert!((a.ts - b.ts).abs() < 1e-6);
            }
        }
    }
}

/// The timeline of every fixture names the real tasks with their policy
/// and marks the interval that counts.
#[test]
fn timelines_name_the_tasks() {
    for c in CASES {
        let log = load(c.file);
        let wins = ftrace::log_windows(&log);
        let w = wins.last().unwrap();
        let svg = ept_host::timeline::render(w, c.file, c.cause);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("ept_cons/0 (FIFO 30)"), "{}", c.file);
        assert!(svg.contains("CPU0") && svg.contains("CPU1"), "{}", c.file);
        assert!(
            svg.contains("the wait that counts") || svg.contains("open wait"),
            "{}",
            c.file
        );
    }
}

fn cause_of(file: &str) -> String {
    let log = load(file);
    let wins = ftrace::log_windows(&log);
    root_cause(
        wins.last().unwrap(),
        log.header.get("LOCK_TYPE").map(String::as_str),
    )
    .unwrap()
}

/// rwlock inversion: the consumer's wait on the write side, the reader
/// that holds it, its preemption by the hog for most of the wait, no boost.
#[test]
fn rwlock_inversion_root_cause() {
    let c = cause_of("x86_64-rwlock-inversion.log");
    assert!(c.starts_with("ept_cons/0 (FIFO 30) waited 109.0 ms for ep->lock (write side): read-held by ept_prod/0 (FIFO 10), which was preempted by ept_hog/0 (FIFO 20) for 98.7 ms"), "{c}");
    assert!(c.ends_with("; no priority boost"), "{c}");
    let c = cause_of("riscv64-rwlock-inversion.log");
    assert!(c.starts_with("ept_cons/0 (FIFO 30) waited 108.9 ms for ep->lock (write side): read-held by ept_prod/0 (FIFO 10), which was preempted by ept_hog/0 (FIFO 20) for 99.3 ms"), "{c}");
    assert!(c.ends_with("; no priority boost"), "{c}");
}

/// spinlock: the same load, the holder boosted to the waiter's priority
/// and the wait short (both arches).
#[test]
fn spinlock_root_cause_shows_the_boost() {
    for f in [
        "x86_64-spinlock-inversion.log",
        "riscv64-spinlock-inversion.log",
    ] {
        let c = cause_of(f);
        assert!(c.contains("held by ept_prod/0 (FIFO 10)"), "{f}: {c}");
        assert!(c.contains("boosted to FIFO 30 after"), "{f}: {c}");
        assert!(!c.contains("no priority boost"), "{f}: {c}");
    }
}

/// rwlock stall: the cycle, with ktimers/1 queued behind the writer.
#[test]
fn rwlock_stall_root_cause_is_the_cycle() {
    for f in ["x86_64-rwlock-stall.log", "riscv64-rwlock-stall.log"] {
        let c = cause_of(f);
        for part in [
            "hang: ept_cons/0 (FIFO 30) blocked",
            "on ep->lock (write side)",
            "ktimers/1 (FIFO 1) blocked",
            "on ep->lock (read side) queued behind ept_cons/0",
            "ept_hog/0 (FIFO 20) ran",
            "ept_prod/0 (FIFO 10) preempted",
        ] {
            assert!(c.contains(part), "{f}: {part}: {c}");
        }
    }
}

/// Really frozen guests (docs/trace.md, "Frozen guest"): the stall's cycle
/// with the module's watchdog out of the way (`stall_ms=3600000`), so the
/// run never ends; the host's deadline sends SysRq-w, -t and -z. The first
/// capture is from before `log_buf_len=16M`: the /dev/kmsg reader was
/// overrun and only the dump's tail, without its header, arrived. The
/// second has the whole dump, with `CPU:N [LOST M EVENTS]` notes.
const FROZEN: &[(&str, bool, &str)] = &[
    (
        "x86_64-rwlock-stall-frozen-kmsg-overrun.log",
        false,
        "hang, but no wait is open at the freeze in the trace (it holds the last CPU0 113.0 ms, CPU1 109.0 ms); longest wait: ept-run (FIFO 50) waited 0.09 ms for an rt_mutex [flags=RT]: held by irq_work/1 (FIFO 1), which was preempted by ept-run (FIFO 50) for 0.04 ms; boosted to FIFO 50 after 0.01 ms",
    ),
    (
        "x86_64-rwlock-stall-frozen-sysrq-z.log",
        true,
        "hang, but no wait is open at the freeze in the trace (it holds the last CPU0 4317.5 ms, CPU1 21111.9 ms); longest wait: ept-run (FIFO 50) waited 0.43 ms for an rt_mutex [flags=RT]: held by irq_work/1 (FIFO 1), which was preempted by ept-run (FIFO 50) for 0.21 ms; boosted to FIFO 50 after 0.18 ms",
    ),
];

#[test]
fn frozen_guest_sysrq_z_dump_is_one_window_and_its_cause_says_what_it_cannot_show() {
    let scen = Scenarios::builtin();
    for (file, lost_notes, cause) in FROZEN {
        let log = load(file);
        let runs = judge_runs(&log, &scen, "stall");
        assert_eq!(runs.len(), 1, "{file}");
        let j = &runs[0];
        // The host's deadline decided: HANG, the module never printed its
        // result (its watchdog was told to wait an hour).
        assert_eq!(j.verdict, Verdict::Hang, "{file}: {}", j.reason);
        assert!(
            j.reason
                .starts_with("no workload progress for 147 s before the host gave up"),
            "{file}: {}",
            j.reason
        );
        // The guest never ran its own dump: the one window is SysRq-z's.
        let wins = ftrace::log_windows(&log);
        assert_eq!(wins.len(), 1, "{file}");
        let w = &wins[0];
        assert_eq!((w.reason.as_str(), w.source), ("hang", Source::SysrqZ));
        assert!(w.records.len() > 500, "{file}: {}", w.records.len());
        assert!(w.records.iter().all(|r| r.cpu < 2), "{file}");
        // No overrun note became a record (nor a task name).
        assert!(
            w.records
                .iter()
                .all(|r| !r.task.contains("LOST") && !r.task.contains('\n')),
            "{file}"
        );
        let lost: usize = log
            .lines
            .iter()
            .filter(|l| l.text.contains("[LOST ") && l.text.starts_with("CPU:"))
            .count();
        assert_eq!(lost > 0, *lost_notes, "{file}");
        let lock = log.header.get("LOCK_TYPE").map(String::as_str);
        assert_eq!(root_cause(w, lock).unwrap(), cause.to_string(), "{file}");
        assert!(
            j.notes
                .contains(&format!("{} (hang): {cause}", ftrace::NOTE)),
            "{file}: {:?}",
            j.notes
        );
    }
}
