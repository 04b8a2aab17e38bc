//! The judge against real console logs captured from our VMs
//! (selftests/host/fixtures/, never hand-written). Every fixture has a row
//! in `CASES` that asserts its verdict, every finding and its key metrics;
//! the other tests look closer at one capture each. See fixtures/README.md
//! for how each was made.

use ept_host::data::{meets, Expectations, Scenarios, Verdict};
use ept_host::judge::{guess_scenario, judge, judge_plan, judge_runs, Judgement, RunId};
use ept_host::log::{ConsoleLog, Source};
use ept_host::sysrq;
use std::path::PathBuf;
use Verdict::*;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn text(name: &str) -> String {
    let t = std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    String::from_utf8_lossy(&t).into_owned()
}

fn load(name: &str) -> ConsoleLog {
    ConsoleLog::parse(&text(name))
}

fn judged(name: &str, scenario: &str) -> Judgement {
    judge(&load(name), &Scenarios::builtin().spec(scenario))
}

fn evidence(j: &Judgement) -> String {
    j.findings
        .iter()
        .map(|f| {
            format!(
                "{}: {} (x{})\n{}\n",
                f.verdict,
                f.what,
                f.count,
                f.lines.join("\n")
            )
        })
        .collect()
}

/// One fixture as `ept judge` sees it (scenario guessed from the header or
/// the file name, "unknown" when neither names one).
struct Case {
    file: &'static str,
    scenario: &'static str,
    verdict: Verdict,
    /// Every finding: (verdict, what, count), highest verdict first.
    findings: &'static [(Verdict, &'static str, usize)],
    /// Heartbeat stalls that recovered (None: no heartbeats).
    stalls: Option<f64>,
    /// Producer results counted (one per plan).
    results: usize,
    /// None: the verdict meets its cell's expectation (expectations.json).
    /// Some(why): a deliberate negative example that does not.
    negative: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        file: "host-x86_64-rwlock-inversion.log",
        scenario: "inversion",
        verdict: Inversion,
        findings: &[
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "host-x86_64-rwlock-stall.log",
        scenario: "stall",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: stall", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: Some(
            "a stall that did not reproduce: an early 10 s run of the stall scenario completed on rwlock (the module said ok); kept as the honest record of it",
        ),
    },
    Case {
        file: "host-x86_64-spinlock-inversion.log",
        scenario: "inversion",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: inversion", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "host-x86_64-spinlock-smoke.log",
        scenario: "smoke",
        verdict: Fail,
        findings: &[
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "an old-format log: the smoke steps of that time loaded the module with scenario=smoke, which it refuses (-EINVAL), so the steps exited rc=1",
        ),
    },
    Case {
        file: "host-x86_64-spinlock-stall.log",
        scenario: "stall",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: stall", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "host-x86_64-spinlock-throughput.log",
        scenario: "throughput",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(1.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-epoll-selftests.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-hung-task.log",
        scenario: "hung-task",
        verdict: Stall,
        findings: &[
            (Stall, "hung task", 10),
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-inversion.log",
        scenario: "inversion",
        verdict: Inversion,
        findings: &[
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 3),
            (Fail, "steps exited rc=1", 1),
            (Pass, "epoll_torture ok: inversion", 2),
        ],
        stalls: Some(0.0),
        results: 5,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-stall-hang.log",
        scenario: "stall",
        verdict: Hang,
        findings: &[
            (Hang, "no workload progress for 72 s before the host gave up (35 heartbeat(s) with progress stuck at 9420); last progress:", 1),
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 3),
            (Stall, "RCU grace-period kthread starved", 3),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-stall.log",
        scenario: "stall",
        verdict: Stall,
        findings: &[
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 1),
            (Stall, "RCU grace-period kthread starved", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(1.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-rwlock-throughput.log",
        scenario: "throughput",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-cfs-stall.log",
        scenario: "cfs-stall",
        verdict: Pass,
        findings: &[
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 0,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-epoll-selftests.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-hello.log",
        scenario: "unknown",
        verdict: Pass,
        findings: &[
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-inversion.log",
        scenario: "inversion",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: inversion", 5),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 5,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-stall.log",
        scenario: "stall",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: stall", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "riscv64-spinlock-throughput.log",
        scenario: "throughput",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(1.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-6.12-rwlock-cfs-stall.log",
        scenario: "cfs-stall",
        verdict: Hang,
        findings: &[
            (Hang, "no workload progress for 296 s before the host gave up (59 heartbeat(s) with progress stuck at 749); last progress:", 1),
            (Stall, "RCU stall", 9),
            (Stall, "RCU grace-period kthread starved", 9),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(0.0),
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-6.12-spinlock-cfs-stall-unpinned.log",
        scenario: "cfs-stall",
        verdict: Fail,
        findings: &[
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(1.0),
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-6.12-spinlock-cfs-stall.log",
        scenario: "cfs-stall",
        verdict: Fail,
        findings: &[
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(1.0),
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-6.12-spinlock-epoll-selftests.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-debug-load.log",
        scenario: "debug-load",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 11),
        ],
        stalls: Some(1.0),
        results: 11,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-debug-load-interleaved.log",
        scenario: "debug-load",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 24),
        ],
        stalls: None,
        results: 24,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-debug-load-kunit-warning.log",
        scenario: "debug-load",
        verdict: Crash,
        findings: &[
            (Crash, "kernel WARNING", 1),
            (Pass, "epoll_torture ok: throughput", 22),
        ],
        stalls: None,
        results: 22,
        negative: Some(
            "the kernel crate's own KUnit suite rust_spinlock_irq_condvar warned at boot under lockdep on PREEMPT_RT; since then run-vm.sh runs only our suite (kunit.filter_glob)",
        ),
    },
    Case {
        file: "x86_64-rwlock-epoll-selftests-epoll16.log",
        scenario: "epoll-selftests",
        verdict: Fail,
        findings: &[
            (Fail, "selftest not ok: global.epoll16", 1),
            (Fail, "epoll selftest epoll_wakeup_test rc=1", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "epoll16 failed once on rwlock x86_64 while the boot shared the host with kernel builds; not a finding in the data",
        ),
    },
    Case {
        file: "x86_64-rwlock-epoll-selftests.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-hung-task.log",
        scenario: "hung-task",
        verdict: Stall,
        findings: &[
            (Stall, "hung task", 4),
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-inversion.log",
        scenario: "inversion",
        verdict: Inversion,
        findings: &[
            (Inversion, "epoll_torture not ok: inversion (priority inversion)", 5),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(0.0),
        results: 5,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-stall-hang.log",
        scenario: "stall",
        verdict: Hang,
        findings: &[
            (Hang, "no workload progress for 68 s before the host gave up (34 heartbeat(s) with progress stuck at 23977); last progress:", 1),
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 3),
            (Stall, "RCU grace-period kthread starved", 3),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-stall.log",
        scenario: "stall",
        verdict: Stall,
        findings: &[
            (Stall, "epoll_torture not ok: stall (hang)", 1),
            (Stall, "RCU stall", 1),
            (Stall, "RCU grace-period kthread starved", 1),
            (Fail, "steps exited rc=1", 1),
        ],
        stalls: Some(1.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-rwlock-throughput.log",
        scenario: "throughput",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-cycles.log",
        scenario: "cycles",
        verdict: Pass,
        findings: &[
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 104,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-deadline-before-boot.log",
        scenario: "unknown",
        verdict: Error,
        findings: &[
            (Error, "guest never booted (no 'EPT: guest up' before the host gave up: deadline 1s reached after 1s: asking for SysRq-w and SysRq-t)", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "a deadline before boot (--deadline 1): the host gave up before 'EPT: guest up'",
        ),
    },
    Case {
        file: "x86_64-spinlock-debug-load-watchdog.log",
        scenario: "debug-load",
        verdict: Stall,
        findings: &[
            (Stall, "epoll_torture not ok: throughput (hang)", 3),
        ],
        stalls: Some(10.0),
        results: 3,
        negative: Some(
            "the module's own watchdog (stall_ms=5000, before the default became 60000) declared a hang of its throughput load under lockdep and a loaded host: the module's result, a STALL",
        ),
    },
    Case {
        file: "x86_64-spinlock-echo-hi.log",
        scenario: "unknown",
        verdict: Pass,
        findings: &[
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-epoll-selftests-check.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-epoll-selftests.log",
        scenario: "epoll-selftests",
        verdict: Pass,
        findings: &[
        ],
        stalls: None,
        results: 0,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-inversion.log",
        scenario: "inversion",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: inversion", 5),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 5,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-missing-script.log",
        scenario: "unknown",
        verdict: Error,
        findings: &[
            (Error, "steps script missing in the guest", 1),
            (Fail, "steps exited rc=2", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "a missing script: the steps ran /ept/scenarios/nosuch.sh",
        ),
    },
    Case {
        file: "x86_64-spinlock-sleep-deadline.log",
        scenario: "unknown",
        verdict: Hang,
        findings: &[
            (Hang, "no workload progress for 33 s before the host gave up (no heartbeat); last progress:", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "a deadline on purpose: the steps slept 1000 s against a 40 s deadline (no heartbeat)",
        ),
    },
    Case {
        file: "x86_64-spinlock-spawn-failure.log",
        scenario: "inversion",
        verdict: Error,
        findings: &[
            (Error, "epoll_torture could not measure inversion: starting the worker threads failed (errno -12)", 1),
            (Fail, "run exited rc=1", 1),
        ],
        stalls: None,
        results: 1,
        negative: Some(
            "fault injection (fail_spawn=2): the second worker spawn fails; the module reports one error result and rmmod unloads it at once",
        ),
    },
    Case {
        file: "x86_64-spinlock-stall.log",
        scenario: "stall",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: stall", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
    Case {
        file: "x86_64-spinlock-sysrq-crash.log",
        scenario: "unknown",
        verdict: Crash,
        findings: &[
            (Crash, "kernel panic", 1),
            (Error, "guest exited without finishing its steps (QEMU exited after 4s)", 1),
        ],
        stalls: None,
        results: 0,
        negative: Some(
            "a crash on purpose: the steps wrote c to /proc/sysrq-trigger",
        ),
    },
    Case {
        file: "x86_64-spinlock-throughput.log",
        scenario: "throughput",
        verdict: Pass,
        findings: &[
            (Pass, "epoll_torture ok: throughput", 1),
            (Pass, "steps exited rc=0", 1),
        ],
        stalls: Some(0.0),
        results: 1,
        negative: None,
    },
];

fn judged_case(c: &Case) -> Judgement {
    judged(c.file, c.scenario)
}

#[test]
fn every_fixture_has_a_case_and_every_case_a_fixture() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.file.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases);
}

#[test]
fn every_fixture_verdict_findings_and_counts() {
    let known = Scenarios::builtin().names();
    for c in CASES {
        let log = load(c.file);
        let guessed = guess_scenario(&log, c.file, &known).unwrap_or_else(|| "unknown".into());
        assert_eq!(
            guessed, c.scenario,
            "{}: the scenario ept judge uses",
            c.file
        );
        let j = judged_case(c);
        assert_eq!(j.verdict, c.verdict, "{}: {}", c.file, evidence(&j));
        let got: Vec<(Verdict, &str, usize)> = j
            .findings
            .iter()
            .map(|f| (f.verdict, f.what.as_str(), f.count))
            .collect();
        assert_eq!(got, c.findings, "{}", c.file);
        assert_eq!(
            j.metrics.values.get("stalls").copied(),
            c.stalls,
            "{}: stalls",
            c.file
        );
        assert_eq!(j.metrics.results.len(), c.results, "{}: results", c.file);
        assert_eq!(j.scenario, c.scenario);
        assert_eq!(j.repeat, 1);
    }
}

#[test]
fn every_fixture_meets_its_cell_or_is_a_named_negative_example() {
    let e = Expectations::builtin();
    for c in CASES {
        let log = load(c.file);
        let h = |k: &str| log.header.get(k).cloned().unwrap_or_default();
        let expected = e.expected(
            &h("ARCH"),
            &h("VARIANT"),
            c.scenario,
            &h("BASE_KERNELVERSION"),
        );
        let ok = meets(c.verdict, &expected);
        assert_eq!(
            ok,
            c.negative.is_none(),
            "{}: {} against {expected:?}; negative example: {:?}",
            c.file,
            c.verdict,
            c.negative
        );
    }
    // The deliberate negative examples, by name (each says why in CASES).
    let negatives: Vec<&str> = CASES
        .iter()
        .filter(|c| c.negative.is_some())
        .map(|c| c.file)
        .collect();
    assert_eq!(
        negatives,
        [
            "host-x86_64-rwlock-stall.log",
            "host-x86_64-spinlock-smoke.log",
            "x86_64-rwlock-debug-load-kunit-warning.log",
            "x86_64-rwlock-epoll-selftests-epoll16.log",
            "x86_64-spinlock-deadline-before-boot.log",
            "x86_64-spinlock-debug-load-watchdog.log",
            "x86_64-spinlock-missing-script.log",
            "x86_64-spinlock-sleep-deadline.log",
            "x86_64-spinlock-spawn-failure.log",
            "x86_64-spinlock-sysrq-crash.log",
        ]
    );
}

/// The module's own lines, read from the file without the judge: the
/// console copies only (`kmsg:` echoes are copies of the same records).
fn module_console_lines(name: &str) -> Vec<String> {
    text(name)
        .lines()
        .filter_map(|l| ept_host::log::split_host_ts(l).map(|(_, r)| r))
        .filter(|r| !r.starts_with("kmsg: "))
        .filter_map(|r| r.split_once("epoll_torture: ").map(|(_, b)| b.to_string()))
        .collect()
}

#[test]
fn histograms_and_results_equal_the_modules_own_lines() {
    for c in CASES {
        let j = judged_case(c);
        let lines = module_console_lines(c.file);
        // Histogram total = the calls= of the module's metrics lines that
        // carry a histogram, summed over its plans.
        let calls: f64 = lines
            .iter()
            .filter(|l| l.starts_with("# metrics ") && l.contains(" hist_us="))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("calls="))
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .sum();
        let hist: u64 = j.metrics.hist_us.values().sum();
        assert_eq!(hist as f64, calls, "{}: histogram total", c.file);
        if calls > 0.0 {
            assert_eq!(j.metrics.values["hist_total"], calls, "{}", c.file);
            assert_eq!(j.metrics.values["calls"], calls, "{}", c.file);
        }
        // One result per plan.
        let plans = lines
            .iter()
            .filter(|l| l.starts_with("KTAP version"))
            .count();
        assert_eq!(
            j.metrics.results.len(),
            plans,
            "{}: one result per plan",
            c.file
        );
        if plans > 0 {
            assert_eq!(j.metrics.values["plans"], plans as f64, "{}", c.file);
        }
    }
}

#[test]
fn each_kernel_record_counted_once_on_clean_stall_runs() {
    // Clean spinlock stall runs with `ept-run --echo`: every record is on
    // the console and in a `kmsg:` copy. Counted once, the heartbeats rise
    // every time: no stall (before: stalls=13 from the duplicate pairs).
    for (f, heartbeats, calls) in [
        ("x86_64-spinlock-stall.log", 14.0, 52718.0),
        ("riscv64-spinlock-stall.log", 14.0, 55412.0),
    ] {
        let log = load(f);
        assert_eq!(log.echo.merged, 20, "{f}");
        assert_eq!(log.echo.kmsg_only, 0, "{f}");
        assert!(log.lines.iter().all(|l| l.source != Source::Kmsg));
        assert!(log.lines.iter().all(|l| !l.text.starts_with("kmsg: ")));
        let j = judged(f, "stall");
        let v = &j.metrics.values;
        assert_eq!(v["stalls"], 0.0, "{f}: {v:?}");
        assert_eq!(v["stall_total_s"], 0.0, "{f}");
        assert_eq!(v["heartbeats"], heartbeats, "{f}");
        assert_eq!(v["hist_total"], calls, "{f}");
        assert_eq!(v["kmsg_merged"], 20.0, "{f}");
        assert_eq!(j.metrics.lines.len(), 1, "{f}: one metrics line");
        assert_eq!(j.metrics.results.len(), 1, "{f}: one result");
        assert_eq!(j.findings[0].what, "epoll_torture ok: stall");
        assert_eq!(j.findings[0].count, 1, "{f}: the result once, not (x2)");
    }
}

#[test]
fn old_echo_matched_to_a_console_copy_printed_ten_seconds_late() {
    // x86_64-rwlock-stall.log: the hung CPU held the console back; the
    // metrics record's console copy came 10 s after its echo. Matched by
    // the kernel time on the host clock, it is one record with the echo's
    // (earlier) host time.
    let log = load("x86_64-rwlock-stall.log");
    let m: Vec<_> = log
        .lines
        .iter()
        .filter(|l| l.text.starts_with("epoll_torture: # metrics "))
        .collect();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].source, Source::Both);
    assert_eq!(m[0].host_s, Some(13.179));
    assert_eq!(m[0].kernel_s, Some(11.226042));
    assert_eq!(m[0].no, 281, "the echo's line: the earlier copy");
    // kmsg escapes a tab as \x09; the console prints the tab: one record.
    assert!(log
        .lines
        .iter()
        .any(|l| l.text.starts_with("rcu: \t(t=10000 jiffies") && l.source == Source::Both));
    assert_eq!((log.echo.merged, log.echo.kmsg_only), (158, 2));
}

#[test]
fn a_dmesg_copy_of_a_record_is_the_same_record() {
    // The early smoke steps printed `dmesg` lines with the kernel's times:
    // the same three records again.
    let log = load("host-x86_64-spinlock-smoke.log");
    assert_eq!(log.echo.console_repeats, 3);
    let n = log
        .lines
        .iter()
        .filter(|l| l.text.contains("invalid parameter scenario=smoke"))
        .count();
    assert_eq!(n, 2, "two records (busybox insmod retries), each once");
}

#[test]
fn one_result_per_plan_second_result_after_rmmod_is_a_note() {
    // After the hang, rmmod made the old module print a second result for
    // the same 1..1 plan (`ok 1 stall # SKIP aborted by rmmod`); the first
    // counts (as kunit.py parse does), the second is a note.
    for f in ["x86_64-rwlock-stall.log", "riscv64-rwlock-stall.log"] {
        let j = judged(f, "stall");
        assert_eq!(j.verdict, Stall, "{f}: {}", evidence(&j));
        assert_eq!(j.metrics.results.len(), 1);
        let r = &j.metrics.results[0];
        assert_eq!(
            (
                r.producer.as_str(),
                r.name.as_str(),
                r.ok,
                r.kind.as_deref(),
                r.verdict
            ),
            ("epoll_torture", "stall", false, Some("hang"), Stall)
        );
        assert!(
            j.notes
                .iter()
                .any(|n| n.starts_with("second result for one plan ignored: ")
                    && n.ends_with("epoll_torture: ok 1 stall # SKIP aborted by rmmod")),
            "{f}: {:?}",
            j.notes
        );
        assert!(!j.findings.iter().any(|x| x.what.contains("SKIP")));
    }
}

#[test]
fn pass_clean_boot() {
    let j = judged("x86_64-spinlock-echo-hi.log", "smoke");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.guest_release.as_deref(), Some("7.3.4"));
    assert_eq!(j.metrics.values["rc"], 0.0);
    assert!(j.waits.is_empty());
}

#[test]
fn header_is_build_info() {
    let l = load("x86_64-spinlock-echo-hi.log");
    assert_eq!(l.header["BASE_PKG"], "linux-source-7.3");
    assert_eq!(l.header["BASE_DEB_VERSION"], "7.3.4-1~bpo13+1");
    assert_eq!(l.header["LOCK_TYPE"], "spinlock_t");
    assert_eq!(l.header["VARIANT_PATCHES"], "");
    assert_eq!(l.header["deadline"], "90");
    assert_eq!(l.exit_note().and_then(|n| n.after_s), Some(6.0));
    // The first kernel line follows SeaBIOS's escape codes: no kernel time.
    assert!(l
        .lines
        .iter()
        .any(|x| x.text.contains("Booting from ROM") && x.kernel_s.is_none()));
    let cmd = l
        .lines
        .iter()
        .find(|x| x.text.starts_with("Command line:"))
        .unwrap();
    assert_eq!((cmd.host_s, cmd.kernel_s), (Some(2.54), Some(0.0)));
}

#[test]
fn hang_at_host_deadline_with_sysrq_dump() {
    // Negative example (see CASES): steps `sleep 1000`, deadline 40 s.
    // Only workload progress counts: the steps' own output is not progress,
    // so the last progress is the start of the steps.
    let j = judged("x86_64-spinlock-sleep-deadline.log", "smoke");
    assert_eq!(j.verdict, Hang, "{}", evidence(&j));
    assert!(
        j.reason.contains("no workload progress for 33 s"),
        "{}",
        j.reason
    );
    let f = &j.findings[0];
    assert!(f.lines[0].ends_with("EPT: steps begin"), "{:?}", f.lines);
    assert!(f.lines[1].contains("deadline 40s reached after 40s"));
    // SysRq-t: the steps' shell waits for `sleep`, which sleeps.
    let w = j.waits.join("\n");
    assert!(w.contains("sleep (pid 63, state S) in do_nanosleep"), "{w}");
    assert!(w.contains("sh (pid 62, state S) in do_wait"), "{w}");
    // No kernel badness in a plain sleep.
    assert!(!j
        .findings
        .iter()
        .any(|f| matches!(f.verdict, Stall | Crash)));
}

#[test]
fn sysrq_task_dump_parsing() {
    let l = load("x86_64-spinlock-sleep-deadline.log");
    let tasks = sysrq::parse_tasks(&l.lines);
    assert!(tasks.len() > 40, "{}", tasks.len());
    let init = &tasks[0];
    assert_eq!(
        (init.name.as_str(), init.state.as_str(), init.pid),
        ("init", "S", Some(1))
    );
    // `? rt_read_lock` is an unreliable frame and must not count.
    assert_eq!(
        init.frames,
        [
            "__schedule",
            "schedule",
            "do_wait",
            "kernel_wait4",
            "__x64_sys_wait4",
            "do_syscall_64",
            "entry_SYSCALL_64_after_hwframe"
        ]
    );
    assert_eq!(sysrq::role(init), None);
    let kt = tasks.iter().find(|t| t.name == "ktimers/0").unwrap();
    assert_eq!(kt.state, "R");
    // Task names are cut at 15 characters by the kernel.
    assert!(tasks.iter().any(|t| t.name == "kworker/R-rcu_g"));
}

#[test]
fn pass_module_stall_spinlock_with_heartbeats() {
    let j = judged("host-x86_64-spinlock-stall.log", "stall");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert!(j
        .findings
        .iter()
        .any(|f| f.what == "epoll_torture ok: stall"));
    assert_eq!(j.metrics.values["heartbeats"], 4.0);
    assert_eq!(j.metrics.values["stalls"], 0.0);
    assert!(j.metrics.values.contains_key("lat_p99_us"));
    assert!(!j.metrics.hist_us.is_empty());
}

#[test]
fn inversion_by_ktap_not_ok_on_rwlock() {
    let j = judged("host-x86_64-rwlock-inversion.log", "inversion");
    assert_eq!(j.verdict, Inversion, "{}", evidence(&j));
    assert_eq!(
        j.reason,
        "epoll_torture not ok: inversion (priority inversion)"
    );
    let f = &j.findings[0];
    assert!(f.lines[0].contains("not ok 1 inversion # bug detected: priority inversion"));
    assert!(j.metrics.values["lat_max_us"] > 50000.0);
    let r = &j.metrics.results[0];
    assert_eq!(r.kind.as_deref(), Some("priority inversion"));
}

#[test]
fn latency_over_the_threshold_is_a_note_never_an_inversion() {
    // Real spinlock runs where the module printed `ok` (its burst-correlated
    // signature found nothing) next to maxima far over the threshold: host
    // noise. The module decides: PASS, with the maximum as a metric and a note.
    for (f, max, plans) in [
        ("host-x86_64-spinlock-inversion.log", 116006.0, 1),
        ("x86_64-spinlock-inversion.log", 588479.0, 5),
        ("riscv64-spinlock-inversion.log", 345128.0, 5),
    ] {
        let j = judged(f, "inversion");
        assert_eq!(j.verdict, Pass, "{f}: {}", evidence(&j));
        assert!(j.findings.iter().all(|x| x.verdict == Pass), "{f}");
        assert_eq!(j.metrics.values["lat_max_us"], max, "{f}");
        assert_eq!(j.metrics.results.len(), plans, "{f}");
        assert!(j.metrics.results.iter().all(|r| r.ok && r.verdict == Pass));
        assert!(
            j.notes.iter().any(|n| n.starts_with(&format!(
                "latency max {max:.0} us over the threshold 50000 us: a metric; the producer's result decides"
            ))),
            "{f}: {:?}",
            j.notes
        );
    }
    let j = judged("host-x86_64-spinlock-inversion.log", "inversion");
    assert_eq!(j.metrics.values["lat_p99_us"], 1994.0);
    assert_eq!(j.metrics.hist_us[&65536], 1);
    assert_eq!(j.metrics.hist_us[&0], 8077);
}

#[test]
fn fail_when_steps_exit_nonzero() {
    // Negative example (see CASES): the old smoke steps' module load failed.
    let j = judged("host-x86_64-spinlock-smoke.log", "smoke");
    assert_eq!(j.verdict, Fail, "{}", evidence(&j));
    assert_eq!(j.reason, "steps exited rc=1");
}

#[test]
fn rwlock_stall_that_did_not_reproduce_is_pass() {
    // Negative example (see CASES): the stall scenario completed on this
    // rwlock kernel, and the judge says so.
    let j = judged("host-x86_64-rwlock-stall.log", "stall");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.metrics.values["stalls"], 0.0);
}

#[test]
fn guess_scenario_from_names() {
    let known = Scenarios::builtin().names();
    let l = load("host-x86_64-rwlock-stall.log");
    // steps= header is the generated x86_64-rwlock-stall-r1.sh
    assert_eq!(
        guess_scenario(&l, "whatever.log", &known).as_deref(),
        Some("stall")
    );
    let l = load("x86_64-spinlock-echo-hi.log");
    assert_eq!(
        guess_scenario(&l, "x/x86_64-rwlock-cfs-stall.log", &known).as_deref(),
        Some("cfs-stall")
    );
    assert_eq!(guess_scenario(&l, "x/echo-hi.log", &known), None);
    // A new log names its plan file.
    let mut l = load("x86_64-spinlock-echo-hi.log");
    l.header.remove("steps");
    l.header
        .insert("plan".into(), "x86_64-rwlock-inversion-r1.sh".into());
    assert_eq!(
        guess_scenario(&l, "x/echo-hi.log", &known).as_deref(),
        Some("inversion")
    );
}

#[test]
fn substrings_of_real_lines() {
    let l = load("host-x86_64-rwlock-inversion.log");
    let hb = l
        .lines
        .iter()
        .find(|x| x.text.contains("# heartbeat"))
        .unwrap();
    assert!(hb.kernel_s.is_some() && hb.host_s.is_some());
    assert!(hb
        .text
        .starts_with("epoll_torture: # heartbeat scenario=inversion t_ms="));
    let ktap = l
        .lines
        .iter()
        .find(|x| x.text.contains("not ok 1"))
        .unwrap();
    let body = ktap.text.split("epoll_torture: ").nth(1).unwrap();
    let (ok, n, name, dir) = ept_host::judge::parse_tap_result(body).unwrap();
    assert!(!ok && n == 1 && name == "inversion" && dir.starts_with("bug detected"));
    // Truncated line (a log cut mid-write): no host stamp, no crash.
    let text = text("host-x86_64-rwlock-inversion.log");
    let real = text.lines().find(|x| x.contains("not ok 1")).unwrap();
    assert!(ept_host::log::split_host_ts(&real[..9]).is_none());
    let (h, rest) = ept_host::log::split_host_ts(real).unwrap();
    assert!(h > 0.0 && ept_host::log::split_kernel_ts(rest).is_some());
    // A kernel stamp cut in the middle is not a stamp.
    assert!(ept_host::log::split_kernel_ts(&rest[..6]).is_none());
}

#[test]
fn crash_real_panic_from_sysrq_c() {
    // Negative example (see CASES): a deliberate panic.
    let j = judged("x86_64-spinlock-sysrq-crash.log", "smoke");
    assert_eq!(j.verdict, Crash, "{}", evidence(&j));
    assert!(j.findings[0].lines[0].contains("Kernel panic - not syncing: sysrq triggered crash"));
    // The harness side is recorded too, below the crash.
    assert!(j
        .findings
        .iter()
        .any(|f| f.verdict == Error && f.what.contains("guest exited without finishing")));
}

#[test]
fn error_when_script_missing_in_guest() {
    // Negative example (see CASES).
    let j = judged("x86_64-spinlock-missing-script.log", "smoke");
    assert_eq!(j.verdict, Error, "{}", evidence(&j));
    assert!(j.findings[0].lines[0].contains("can't open '/ept/scenarios/nosuch.sh'"));
}

#[test]
fn error_when_host_gave_up_before_boot() {
    // Negative example (see CASES): --deadline 1, the host note comes
    // before `EPT: guest up`.
    let j = judged("x86_64-spinlock-deadline-before-boot.log", "smoke");
    assert_eq!(j.verdict, Error, "{}", evidence(&j));
    assert!(j.reason.contains("guest never booted"), "{}", j.reason);
}

#[test]
fn throughput_points_per_thread_count() {
    let j = judged("host-x86_64-spinlock-throughput.log", "throughput");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    let t: Vec<f64> = j.metrics.throughput.iter().map(|p| p.threads).collect();
    assert_eq!(t, [1.0, 2.0, 4.0, 8.0, 16.0]);
    assert!(j.metrics.throughput.iter().all(|p| p.events_per_ms > 0.0));
}

#[test]
fn selftests_known_emulation_timeout_is_reported_not_failed() {
    // Real runs of the kernel's epoll_wakeup_test (7.3.4, TCG): 65 of 66
    // pass; epoll65 is killed by the harness's 30 s timeout on both variants.
    for f in [
        "x86_64-spinlock-epoll-selftests.log",
        "x86_64-rwlock-epoll-selftests.log",
    ] {
        let j = judged(f, "epoll-selftests");
        assert_eq!(j.verdict, Pass, "{f}: {}", evidence(&j));
        assert_eq!(j.metrics.values["selftests_pass"], 65.0, "{f}");
        assert_eq!(j.metrics.values["selftests_known_emulation_failures"], 1.0);
        assert!(
            j.notes.iter().any(|n| n.contains("epoll65")),
            "{f}: {:?}",
            j.notes
        );
    }
}

#[test]
fn selftests_timeout_not_in_the_known_list_fails() {
    // The same real log judged with an empty known-timeout list: the
    // timeout is a failure, as a lost wakeup that hangs a test would be.
    let mut spec = Scenarios::builtin().spec("epoll-selftests");
    spec.emulation_failures.clear();
    let j = judge(&load("x86_64-spinlock-epoll-selftests.log"), &spec);
    assert_eq!(j.verdict, Fail, "{}", evidence(&j));
    assert!(evidence(&j).contains("global.epoll65"));
}

#[test]
fn riscv64_clean_boot() {
    let j = judged("riscv64-spinlock-hello.log", "smoke");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.guest_release.as_deref(), Some("7.3.4"));
}

fn judged_with_baseline(name: &str, baseline: &str) -> Judgement {
    let mut spec = Scenarios::builtin().spec("epoll-selftests");
    spec.baseline_failures = Some(ept_host::judge::selftest_failures(&load(baseline)));
    judge(&load(name), &spec)
}

#[test]
fn riscv64_emulation_failures_excused_when_the_unmodified_kernel_fails_them_too() {
    // Real riscv64 runs (7.3.4, TCG): epoll59/60/61/65 time out on the
    // unmodified spinlock kernel and on rwlock alike.
    let b = ept_host::judge::selftest_failures(&load("riscv64-spinlock-epoll-selftests.log"));
    let names: Vec<&str> = b.keys().map(|s| s.as_str()).collect();
    assert_eq!(names, ["epoll59", "epoll60", "epoll61", "epoll65"]);
    assert!(b.values().all(|k| k == "timeout"));
    let j = judged_with_baseline(
        "riscv64-rwlock-epoll-selftests.log",
        "riscv64-spinlock-epoll-selftests.log",
    );
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.metrics.values["selftests_known_emulation_failures"], 4.0);
    assert!(j.notes.iter().any(|n| n.contains("baseline) fails it too")));
}

#[test]
fn known_emulation_failure_is_a_failure_when_the_baseline_passed_it() {
    // 6.12's unmodified kernel passed every test: the riscv64 timeouts are
    // then not excused.
    let j = judged_with_baseline(
        "riscv64-rwlock-epoll-selftests.log",
        "x86_64-6.12-spinlock-epoll-selftests.log",
    );
    assert_eq!(j.verdict, Fail, "{}", evidence(&j));
    assert!(evidence(&j).contains("passed on the unmodified kernel"));
}

#[test]
fn debug_boot_no_splat_passes_and_its_selftests_only_inform() {
    // Real lockdep (PROVE_LOCKING, LOCK_STAT, DEBUG_LIST) boot of rwlock
    // running the selftests under the module's throughput load.
    let j = judged("x86_64-rwlock-debug-load.log", "debug-load");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert!(j.notes.iter().any(|n| n.contains("informational")));
    // The kernel's own record of the lock type: read and write rows.
    let log = load("x86_64-rwlock-debug-load.log");
    let rows: Vec<&str> = log
        .lines
        .iter()
        .filter_map(|l| l.text.strip_prefix("EPT-LOCKSTAT "))
        .collect();
    assert!(
        rows.iter().any(|r| r.starts_with("&ep->lock-R:")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("&ep->lock-W:")),
        "{rows:?}"
    );
}

#[test]
fn spinlock_debug_boot_shows_one_lock_stat_row_and_no_read_usage() {
    // Real lockdep boot of the shipped spinlock kernel: lock_stat keeps one
    // row for ep->lock (no -R/-W split) and lockdep's usage string has no
    // read-side bits, the contrast to the rwlock log above. Negative example
    // (see CASES): under a loaded host its throughput load tripped the
    // module's 5 s watchdog three times; the module reported `hang`, which
    // the kind table makes a STALL (before: HANG, when the judge re-decided
    // the module's hang itself).
    let log = load("x86_64-spinlock-debug-load-watchdog.log");
    let rows: Vec<&str> = log
        .lines
        .iter()
        .filter_map(|l| l.text.strip_prefix("EPT-LOCKSTAT "))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("&ep->lock:"));
    assert!(log
        .lines
        .iter()
        .any(|l| l.text.ends_with("+.+.: &ep->lock")));
    let j = judged("x86_64-spinlock-debug-load-watchdog.log", "debug-load");
    assert_eq!(j.verdict, Stall, "{}", evidence(&j));
    assert!(j
        .metrics
        .results
        .iter()
        .all(|r| r.kind.as_deref() == Some("hang")));
}

#[test]
fn real_rcu_stall_on_rwlock_stall_both_arches() {
    // The module's stall scenario on rwlock kernels (x86_64 and riscv64):
    // the lock cycle closes, the module reports a hang (STALL), and the
    // kernel's RCU stall detector follows (a preempted reader holds
    // rcu_read_lock). With NO_RMMOD the guest stays frozen: the host
    // deadline finds flat heartbeats, HANG, and nothing else (not also
    // "deadline too short": ept-run's `alive` lines are not progress).
    for (f, verdict) in [
        ("x86_64-rwlock-stall-hang.log", Hang),
        ("riscv64-rwlock-stall-hang.log", Hang),
        ("x86_64-rwlock-stall.log", Stall),
        ("riscv64-rwlock-stall.log", Stall),
    ] {
        let j = judged(f, "stall");
        assert_eq!(j.verdict, verdict, "{f}: {}", evidence(&j));
        let stall = j
            .findings
            .iter()
            .find(|x| x.verdict == Stall && x.what == "RCU stall")
            .unwrap_or_else(|| panic!("{f}: no RCU stall: {}", evidence(&j)));
        assert!(
            stall.lines.iter().any(|l| l.contains("rcu_preempt")),
            "{f}: {}",
            evidence(&j)
        );
        assert!(j
            .findings
            .iter()
            .any(|x| x.verdict == Stall && x.what == "epoll_torture not ok: stall (hang)"));
        assert!(
            !j.findings
                .iter()
                .any(|x| x.what.contains("deadline too short")),
            "{f}: {}",
            evidence(&j)
        );
        assert!(
            j.waits
                .iter()
                .any(|w| w.starts_with("chain: ept_cons/0 blocked for write on ep->lock")),
            "{f}: {:?}",
            j.waits
        );
    }
    let j = judged("x86_64-rwlock-stall-hang.log", "stall");
    let hang = &j.findings[0];
    assert!(hang.lines[0].contains("epoll_torture: not ok 1 stall # bug detected: hang"));
    assert_eq!(
        hang.lines[1],
        "# host: deadline 90s reached after 90s: asking for SysRq-w and SysRq-t"
    );
    assert_eq!(j.metrics.values["stall_open_s"], 92.355);
    let j = judged("riscv64-spinlock-stall.log", "stall");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
}

#[test]
fn real_hung_task_on_rwlock_both_arches() {
    // selftests/steps/hung-task.sh on rwlock: a second consumer waits for
    // ep->mtx (TASK_UNINTERRUPTIBLE) behind the consumer stuck on the write
    // side of ep->lock, and khungtaskd reports it. The hung task outranks
    // the inversion in the verdict, and its stack is the waiting chain.
    for f in [
        "x86_64-rwlock-hung-task.log",
        "riscv64-rwlock-hung-task.log",
    ] {
        let j = judged(f, "hung-task");
        assert_eq!(j.verdict, Stall, "{f}: {}", evidence(&j));
        let hung = j
            .findings
            .iter()
            .find(|x| x.verdict == Stall)
            .unwrap_or_else(|| panic!("{f}: no STALL finding: {}", evidence(&j)));
        assert!(
            hung.what == "hung task"
                && hung
                    .lines
                    .iter()
                    .all(|l| l.contains("INFO: task ept_cons/")),
            "{f}: {}",
            evidence(&j)
        );
        assert!(
            j.waits
                .iter()
                .any(|w| w.contains("ept_cons/") && w.contains("__ep_eventpoll_poll")),
            "{f}: {:?}",
            j.waits
        );
        assert!(
            j.findings.iter().any(|x| x.verdict == Inversion),
            "{f}: {}",
            evidence(&j)
        );
    }
}

#[test]
fn cfs_stall_on_6_12_rwlock_hangs_with_the_report_2_chain() {
    // ept-kiszka pinned on CPU0 on the 6.12.117 rwlock kernel: the reader
    // freezes for good, RCU stalls every 30 s, and the SysRq-w dump at the
    // deadline shows report [2]: the reader waiting to write-lock ep->lock,
    // ksoftirqd/0 (timerfd expiry) queued as a reader behind it, the
    // throttled writer inside ep_poll_callback().
    let j = judged("x86_64-6.12-rwlock-cfs-stall.log", "cfs-stall");
    assert_eq!(j.verdict, Hang, "{}", evidence(&j));
    assert!(j
        .findings
        .iter()
        .any(|f| f.verdict == Stall && f.what.contains("RCU")));
    let w = j.waits.join("\n");
    assert!(
        w.contains("ksoftirqd/0") && w.contains("ep_poll_callback"),
        "{w}"
    );
    assert_eq!(j.metrics.values.get("stall_open_s").copied(), Some(59.0));
    // The last progress: ept-kiszka's last sample with reader iterations.
    assert!(
        j.findings[0].lines[0].contains("ept-kiszka: t="),
        "{:?}",
        j.findings[0].lines
    );
}

#[test]
fn cfs_stall_on_6_12_spinlock_stalls_counted_without_kernel_reports() {
    // The same reproducer on the 6.12.117 spinlock kernel: the reader froze
    // too, but nothing in the kernel reported it and the run ended on its
    // own: FAIL, with the stall in the metrics, never HANG or STALL.
    for (f, min_stall) in [
        ("x86_64-6.12-spinlock-cfs-stall.log", 50.0),
        ("x86_64-6.12-spinlock-cfs-stall-unpinned.log", 50.0),
    ] {
        let j = judged(f, "cfs-stall");
        assert_eq!(j.verdict, Fail, "{f}: {}", evidence(&j));
        assert!(
            j.findings
                .iter()
                .all(|x| x.verdict != Stall && x.verdict != Hang),
            "{f}: {}",
            evidence(&j)
        );
        let v = &j.metrics.values;
        assert!(
            v["stalls"] >= 1.0 && v["stall_max_s"] >= min_stall,
            "{f}: {v:?}"
        );
    }
    // 7.3 (throttling deferred to user entry): no stall at all.
    let j = judged("riscv64-spinlock-cfs-stall.log", "cfs-stall");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.metrics.values["stalls"], 0.0);
}

#[test]
fn rwlock_epoll16_failure_on_x86_64_is_a_plain_failure() {
    // A clean-clone make check on x86_64 (its boots shared the host with
    // kernel builds): epoll16 (two waiters, one LT event) woke one waiter
    // only, on rwlock. 225 later rwlock runs on an idle host never failed
    // it, and on riscv64 the fixed kernel fails it too (a TCG flake there),
    // so the data name no rwlock finding: on x86_64 it is a plain failure.
    let j = judged_with_baseline(
        "x86_64-rwlock-epoll-selftests-epoll16.log",
        "x86_64-spinlock-epoll-selftests-check.log",
    );
    assert_eq!(j.verdict, Fail, "{}", evidence(&j));
    assert!(
        j.findings
            .iter()
            .any(|f| f.what == "selftest not ok: global.epoll16"),
        "{}",
        evidence(&j)
    );
    // epoll65 hit the harness timeout there (the stock, unscaled test), on
    // the baseline too: an emulation cost, not rwlock's false-negative
    // finding, which names a failed assertion.
    assert!(
        j.notes.iter().any(|n| n
            .starts_with("selftest global.epoll65: harness timeout, a known emulation failure")
            && n.ends_with("the unmodified kernel (baseline) fails it too")),
        "{:?}",
        j.notes
    );
    assert!(!j.notes.iter().any(|n| n.starts_with("FINDING")));
}

#[test]
fn lifecycle_cycles_judged_by_exit_status_module_results_inform() {
    // 100 insmod/rmmod cycles with 1 s runs and 5 ms bursts: the module's
    // results there are not what the scenario measures (its criterion is
    // the steps' checks, kind rc). They are counted, one per plan, and
    // reported as information.
    let j = judged("x86_64-spinlock-cycles.log", "cycles");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.metrics.results.len(), 104);
    let n = j
        .notes
        .iter()
        .find(|n| n.starts_with("producer results, information only"))
        .unwrap();
    assert!(
        n.contains("not ok inversion # priority inversion (x25)"),
        "{n}"
    );
    assert!(n.contains("ok stall # SKIP aborted by rmmod (x26)"), "{n}");
    assert!(n.contains("ok throughput (x25)"), "{n}");
}

/// A real log with lines inserted after the first line matching `after`
/// (each stamped with that line's host time): how the new plan brackets
/// its runs, on a capture from before the markers existed.
fn with_lines(name: &str, edits: &[(&str, &[&str])]) -> ConsoleLog {
    let mut out = String::new();
    let mut done = vec![false; edits.len()];
    for line in text(name).lines() {
        out.push_str(line);
        out.push('\n');
        for (i, (after, new)) in edits.iter().enumerate() {
            if !done[i] && line.contains(after) {
                done[i] = true;
                let stamp = line.split_once("] ").map_or("", |x| x.0);
                for n in *new {
                    out.push_str(&format!("{stamp}] {n}\n"));
                }
            }
        }
    }
    assert!(done.iter().all(|d| *d), "{name}: every edit applied");
    ConsoleLog::parse(&out)
}

#[test]
fn runs_within_one_boot_each_judged_on_its_own() {
    // x86_64-spinlock-inversion.log: five inversion runs in one boot; its
    // `EPT: inversion run i/5` lines become run markers.
    let runs: Vec<String> = (1..=5)
        .map(|i| format!("EPT: inversion run {i}/5"))
        .collect();
    let mut edits: Vec<(&str, Vec<String>)> = vec![(
        "EPT: steps begin",
        vec!["EPT: plan runs=inversion:1,inversion:2,inversion:3,inversion:4,inversion:5".into()],
    )];
    for (i, r) in runs.iter().enumerate() {
        let mut v = Vec::new();
        if i > 0 {
            v.push(format!("EPT: run end scenario=inversion repeat={i} rc=0"));
        }
        v.push(format!(
            "EPT: run begin scenario=inversion repeat={}",
            i + 1
        ));
        edits.push((r.as_str(), v));
    }
    edits.push((
        "EPT: inversion summary",
        vec!["EPT: run end scenario=inversion repeat=5 rc=0".into()],
    ));
    let refs: Vec<Vec<&str>> = edits
        .iter()
        .map(|(_, v)| v.iter().map(|s| s.as_str()).collect())
        .collect();
    let edits: Vec<(&str, &[&str])> = edits
        .iter()
        .zip(&refs)
        .map(|((a, _), r)| (*a, r.as_slice()))
        .collect();
    let log = with_lines("x86_64-spinlock-inversion.log", &edits);
    let js = judge_runs(&log, &Scenarios::builtin(), "unused");
    assert_eq!(js.len(), 5);
    let calls = [30755.0, 44819.0, 32978.0, 27589.0, 28786.0];
    for (i, j) in js.iter().enumerate() {
        assert_eq!((j.scenario.as_str(), j.repeat), ("inversion", i as u32 + 1));
        assert_eq!(j.verdict, Pass, "run {}: {}", i + 1, evidence(j));
        assert_eq!(j.metrics.results.len(), 1, "run {}", i + 1);
        assert_eq!(j.metrics.values["hist_total"], calls[i], "run {}", i + 1);
        assert_eq!(j.metrics.values["rc"], 0.0);
        assert_eq!(j.metrics.values["stalls"], 0.0);
        assert_eq!(j.reason, "epoll_torture ok: inversion; run exited rc=0");
    }
    // The whole boot as one run still counts five plans.
    let one = judge(
        &load("x86_64-spinlock-inversion.log"),
        &Scenarios::builtin().spec("inversion"),
    );
    assert_eq!(one.metrics.values["hist_total"], calls.iter().sum::<f64>());
}

#[test]
fn a_run_that_never_ended_takes_the_deadline_and_later_runs_are_not_run() {
    // x86_64-rwlock-stall-hang.log froze for good in its stall run; as the
    // first run of a three-run plan, it takes the host deadline (HANG) and
    // the two runs after it never started.
    let log = with_lines(
        "x86_64-rwlock-stall-hang.log",
        &[(
            "EPT: steps begin",
            &[
                "EPT: plan runs=stall:1,stall:2,inversion:1",
                "EPT: run begin scenario=stall repeat=1",
            ],
        )],
    );
    let js = judge_runs(&log, &Scenarios::builtin(), "unused");
    let ids: Vec<(&str, u32, Verdict)> = js
        .iter()
        .map(|j| (j.scenario.as_str(), j.repeat, j.verdict))
        .collect();
    assert_eq!(
        ids,
        [
            ("stall", 1, Hang),
            ("stall", 2, Error),
            ("inversion", 1, Error)
        ]
    );
    let single = judged("x86_64-rwlock-stall-hang.log", "stall");
    let what = |j: &Judgement| -> Vec<(Verdict, String, usize)> {
        j.findings
            .iter()
            .map(|f| (f.verdict, f.what.clone(), f.count))
            .collect()
    };
    assert_eq!(what(&js[0]), what(&single));
    for j in &js[1..] {
        assert_eq!(
            j.reason,
            "not run: an earlier run in this boot did not finish"
        );
    }
    // The same with the plan list given by the caller instead of the log.
    let log = with_lines(
        "x86_64-rwlock-stall-hang.log",
        &[(
            "EPT: steps begin",
            &["EPT: run begin scenario=stall repeat=1"],
        )],
    );
    let planned = [
        RunId {
            scenario: "stall".into(),
            repeat: 1,
        },
        RunId {
            scenario: "stall".into(),
            repeat: 2,
        },
    ];
    let sc = Scenarios::builtin();
    let js = judge_plan(&log, &|s| sc.spec(s), "unused", Some(&planned));
    assert_eq!(js.len(), 2);
    assert_eq!((js[0].verdict, js[1].verdict), (Hang, Error));
    // Without a plan list the judge reports the runs it saw.
    assert_eq!(judge_runs(&log, &sc, "unused").len(), 1);
}

#[test]
fn kernel_lines_after_run_end_belong_to_that_run() {
    // x86_64-rwlock-stall.log with its stall run ended right after the
    // module's hang report: the RCU stall reports printed while ept-run
    // lingered come after `run end` and before the next run, and belong to
    // the stall run, not to the (empty) run after it.
    let log = with_lines(
        "x86_64-rwlock-stall.log",
        &[
            (
                "EPT: steps begin",
                &["EPT: run begin scenario=stall repeat=1"],
            ),
            (
                "ept-run: hang reported, lingering",
                &["EPT: run end scenario=stall repeat=1 rc=1"],
            ),
            (
                "EPT: stall rc=1",
                &[
                    "EPT: run begin scenario=smoke repeat=1",
                    "EPT: run end scenario=smoke repeat=1 rc=0",
                ],
            ),
        ],
    );
    let js = judge_runs(&log, &Scenarios::builtin(), "unused");
    assert_eq!(js.len(), 2);
    let (stall, smoke) = (&js[0], &js[1]);
    assert_eq!(stall.verdict, Stall, "{}", evidence(stall));
    for what in ["RCU stall", "RCU grace-period kthread starved"] {
        assert!(stall
            .findings
            .iter()
            .any(|f| f.what == what && f.count == 1));
    }
    assert!(stall
        .findings
        .iter()
        .any(|f| f.verdict == Fail && f.what == "run exited rc=1"));
    assert!(!stall.waits.is_empty());
    assert_eq!(smoke.verdict, Pass, "{}", evidence(smoke));
    assert_eq!(smoke.reason, "run exited rc=0");
    assert!(smoke.waits.is_empty());
    assert!(smoke.notes.iter().any(|n| n == "the plan exited rc=1"));
}

#[test]
fn host_load_notes_become_metrics_and_a_starved_run_is_flagged() {
    // The new run-vm.sh notes added to a real log (the numbers are made up
    // for the rule; the verdict is the module's and does not change).
    let base = text("x86_64-spinlock-stall.log");
    for (wait, pct, flagged) in [(20.0, 25.0, true), (8.0, 10.0, false)] {
        let t = base.replacen(
            "# deadline=",
            "# host: load start loadavg=1.50,0.80,0.30 ncpu=2\n# deadline=",
            1,
        ) + &format!(
            "# host: load end loadavg=2.75,1.20,0.50 wall_s=40 qemu_cpu_s=62 vcpu_wait_s={wait}\n"
        );
        let j = judge(&ConsoleLog::parse(&t), &Scenarios::builtin().spec("stall"));
        assert_eq!(j.verdict, Pass);
        let v = &j.metrics.values;
        assert_eq!(v["host_load1_start"], 1.5);
        assert_eq!(v["host_load1_end"], 2.75);
        assert_eq!(v["qemu_cpu_per_wall"], 1.55);
        assert_eq!(v["vcpu_starved_pct"], pct);
        let note = j.notes.iter().any(|n| {
            n.starts_with(&format!(
                "host starved the vCPUs: {pct:.1}% run-queue delay"
            ))
        });
        assert_eq!(note, flagged, "{:?}", j.notes);
    }
    assert_eq!(ept_host::rules::VCPU_STARVED_LIMIT_PCT, 20.0);
}

#[test]
fn judgement_json_fields_are_stable() {
    let j = judged("x86_64-rwlock-stall.log", "stall");
    let v: serde_json::Value = serde_json::to_value(&j).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "findings",
            "guest_release",
            "metrics",
            "notes",
            "reason",
            "repeat",
            "scenario",
            "verdict",
            "waits"
        ]
    );
    assert_eq!(
        keys(&v["metrics"]),
        [
            "hist_us",
            "lines",
            "results",
            "selftests",
            "throughput",
            "values"
        ]
    );
    assert_eq!(
        keys(&v["metrics"]["results"][0]),
        ["directive", "kind", "name", "ok", "producer", "verdict"]
    );
    assert_eq!(
        keys(&v["findings"][0]),
        ["count", "lines", "verdict", "what"]
    );
    assert_eq!(v["verdict"], "STALL");
    assert_eq!(v["scenario"], "stall");
    assert_eq!(v["repeat"], 1);
    assert_eq!(v["metrics"]["results"][0]["kind"], "hang");
    assert_eq!(v["metrics"]["values"]["stalls"], 1.0);
    let back: Judgement = serde_json::from_value(v).unwrap();
    assert_eq!(back, j);
}

#[test]
fn a_module_result_printed_into_a_selftest_line_still_counts() {
    // Real DEBUG=1 rwlock boot: the kernel's selftests and 24 module runs
    // share the console, and once the module's `ok 1 throughput` record
    // landed in the middle of a selftest's `TAP version 13` line. Every
    // plan has its result.
    let j = judged("x86_64-rwlock-debug-load-interleaved.log", "debug-load");
    assert_eq!(j.verdict, Pass, "{}", evidence(&j));
    assert_eq!(j.metrics.values["plans"], 24.0);
    assert_eq!(j.metrics.results.len(), 24);
}

#[test]
fn a_kernel_warning_is_a_crash_with_its_site() {
    // Real DEBUG=1 rwlock boot before kunit.filter_glob: the kernel crate's
    // rust_spinlock_irq_condvar suite asserts irqs off under spin_lock_irq(),
    // which PREEMPT_RT does not do.
    let j = judged("x86_64-rwlock-debug-load-kunit-warning.log", "debug-load");
    assert_eq!(j.verdict, Crash, "{}", evidence(&j));
    let w = j
        .findings
        .iter()
        .find(|f| f.what == "kernel WARNING")
        .expect("the WARNING finding");
    assert!(
        w.lines
            .iter()
            .any(|l| l.contains("rust_helper_lockdep_assert_irqs_disabled")),
        "{:?}",
        w.lines
    );
}

#[test]
fn a_failed_worker_spawn_is_one_error_result_and_unloads_at_once() {
    // `ept run ... --params fail_spawn=2`: insmod's second worker spawn
    // fails; the gate opens before the first worker is stopped, so nothing
    // waits in D state: one `not ok ... # error` result, then rmmod in 51 ms.
    let log = load("x86_64-spinlock-spawn-failure.log");
    let j = judge(&log, &Scenarios::builtin().spec("inversion"));
    assert_eq!(j.verdict, Error, "{}", evidence(&j));
    assert_eq!(j.metrics.results.len(), 1);
    assert!(log
        .lines
        .iter()
        .any(|l| l.text == "epoll_torture: # unloaded"));
    assert!(j.metrics.values["run_s"] < 5.0);
}
