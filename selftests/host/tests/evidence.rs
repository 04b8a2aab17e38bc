//! Real boots of `qemu/evidence.sh` under a competing host load
//! (`LOAD="stress-ng --cpu 2"`, 2026-12-01): ten inversion runs, then ten
//! stall runs, in one boot each. Every run is judged on its own.

use ept_host::data::Scenarios;
use ept_host::data::Verdict::{self, Inversion, Pass, Stall};
use ept_host::judge::{judge_runs, Judgement};
use ept_host::log::ConsoleLog;
use std::path::PathBuf;

fn runs(name: &str) -> Vec<Judgement> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/evidence")
        .join(name);
    let log = ConsoleLog::parse(&std::fs::read_to_string(&p).unwrap());
    judge_runs(&log, &Scenarios::builtin(), "unused")
}

/// Ten runs of each scenario, in order, each with its verdict and exactly
/// one module result.
fn assert_runs(js: &[Judgement], inversion: Verdict, stall: Verdict) {
    let ids: Vec<(&str, u32)> = js.iter().map(|j| (j.scenario.as_str(), j.repeat)).collect();
    let want: Vec<(&str, u32)> = (1..=10)
        .map(|r| ("inversion", r))
        .chain((1..=10).map(|r| ("stall", r)))
        .collect();
    assert_eq!(ids, want);
    for j in js {
        let v = if j.scenario == "inversion" {
            inversion
        } else {
            stall
        };
        assert_eq!(j.verdict, v, "{} r{}: {}", j.scenario, j.repeat, j.reason);
        assert_eq!(
            j.metrics.values["results"], 1.0,
            "{} r{}",
            j.scenario, j.repeat
        );
        assert_eq!(
            j.metrics.values["plans"], 1.0,
            "{} r{}",
            j.scenario, j.repeat
        );
        // The host's load is part of the evidence: recorded, not starved.
        assert!(j.metrics.values["host_load1_start"] > 0.0);
        assert!(j.metrics.values["vcpu_starved_pct"] < 20.0);
    }
}

#[test]
fn spinlock_inversion_and_stall_under_host_load_pass_on_both_arches() {
    for f in [
        "x86_64-spinlock-load-r1-10.log",
        "riscv64-spinlock-load-r1-10.log",
    ] {
        let js = runs(f);
        assert_runs(&js, Pass, Pass);
        for j in &js {
            // Clean runs: no stall, and the worst call far below the
            // 50 ms threshold (PI boosts the reader).
            assert_eq!(j.metrics.values["stalls"], 0.0, "{f}");
            assert!(j.metrics.values["lat_max_us"] < 50_000.0, "{f}");
            assert!(
                j.reason.starts_with("epoll_torture ok: "),
                "{f}: {}",
                j.reason
            );
        }
    }
}

#[test]
fn rwlock_under_host_load_inverts_and_each_hang_then_rmmod_is_one_result() {
    let js = runs("x86_64-rwlock-load-r1-10.log");
    assert_runs(&js, Inversion, Stall);
    for j in &js[..10] {
        // The consumer waited out the 100 ms burst.
        assert!(j.metrics.values["lat_max_us"] >= 100_000.0, "r{}", j.repeat);
        assert_eq!(
            j.reason,
            "epoll_torture not ok: inversion (priority inversion)"
        );
    }
    for j in &js[10..] {
        // The module declared the hang; rmmod after the linger broke the
        // cycle, and its abort did not add a second result.
        assert!(
            j.reason
                .starts_with("epoll_torture not ok: stall (hang); RCU stall"),
            "r{}: {}",
            j.repeat,
            j.reason
        );
        assert!(
            !j.notes.iter().any(|n| n.starts_with("second result")),
            "r{}",
            j.repeat
        );
        assert_eq!(j.metrics.values["stalls"], 1.0);
    }
}
