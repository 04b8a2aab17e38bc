//! `ept`'s command line through the built binary: every flag and every
//! exit code (0 all runs meet expectations, 1 some do not, 2 usage error,
//! 3 infrastructure error). `judge`, `report`, `compare` and `merge` read
//! the real console logs in fixtures/; `run` boots no VM here: it runs in a
//! scratch repository top (EPT_TOP) whose qemu/mkimage.sh and
//! qemu/run-vm.sh are stand-ins that record their arguments and hand back
//! a real fixture log as the console log of the boot.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ept-cli-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ept_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ept"));
    c.args(args)
        .env_remove("KERNEL_SRC")
        .env_remove("PATCHES")
        .env_remove("EPT_TOP");
    if let Some(d) = dir {
        c.env("EPT_TOP", d).current_dir(d);
    }
    c.output().expect("run ept")
}

fn ept(args: &[&str]) -> Output {
    ept_in(None, args)
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[track_caller]
fn assert_exit(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

// --- exit codes and generic flags ---

#[test]
fn bare_ept_prints_help_and_exits_2() {
    let o = ept(&[]);
    assert_exit(&o, 2);
    let all = stdout(&o) + &stderr(&o);
    assert!(all.contains("Usage: ept <COMMAND>"), "{all}");
    for sub in ["run", "judge", "report", "compare", "merge", "completions"] {
        assert!(all.contains(&format!("  {sub} ")), "{sub} in {all}");
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "run"],
        &["run", "--help"],
        &["judge", "-h"],
        &["merge", "--help"],
    ] {
        let o = ept(args);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains("Usage: ept"), "{args:?}");
    }
    let h = stdout(&ept(&["--help"]));
    assert!(h.contains("Exit status: 0 every run meets its expected verdict, 1 some do not,"));
    let o = ept(&["--version"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("ept {}", env!("CARGO_PKG_VERSION"))
    );
    assert_exit(&ept(&["-V"]), 0);
}

#[test]
fn usage_errors_exit_2() {
    let log = fixture("x86_64-spinlock-echo-hi.log");
    for args in [
        vec!["frobnicate"],
        vec!["run", "--bogus"],
        vec!["run", "--repeat", "0"],
        vec!["run", "--repeat=x"],
        vec!["run", "--jobs", "0"],
        vec!["run", "--shard", "3/2"],
        vec!["run", "--shard=1-2"],
        vec!["run", "--deadline"],
        vec!["run", "--archs", ""],
        vec!["run", "--scenarios", "nosuch"],
        vec!["run", "stray"],
        vec!["judge"],
        vec!["judge", "--bogus", &log],
        vec!["judge", "--json-progress", &log],
        vec!["judge", "--scenarios-file", "/nonexistent.json", &log],
        vec!["judge", "--expectations=/nonexistent.json", &log],
        vec!["report", "--expectations", "x.json"],
        vec!["report", "a.json", "b.json"],
        vec!["compare", "spinlock"],
        vec!["merge"],
        vec!["merge", "--bogus", "a.json"],
        vec!["completions"],
        vec!["completions", "tcsh"],
    ] {
        let o = ept(&args);
        assert_exit(&o, 2);
        assert!(!stderr(&o).is_empty(), "{args:?}: no message");
    }
    let o = ept(&["run", "--bogus"]);
    assert!(stderr(&o).contains("unexpected argument '--bogus'"));
    let o = ept(&["run", "--scenarios", "nosuch"]);
    assert!(stderr(&o).contains("unknown scenario nosuch"));
}

// --- judge, on real console logs ---

#[test]
fn judge_meets_exits_0_mismatch_1_missing_3() {
    let o = ept(&["judge", &fixture("x86_64-spinlock-echo-hi.log")]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains(": PASS (expected PASS) - "));
    assert!(stdout(&o).contains("  cell x86_64-spinlock-"));
    // A real panic on spinlock: CRASH, expected PASS.
    let o = ept(&["judge", &fixture("x86_64-spinlock-sysrq-crash.log")]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("CRASH (expected PASS; MISMATCH)"));
    let o = ept(&["judge", "/nonexistent/x.log"]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("/nonexistent/x.log"));
    // One missing among good ones is still an infrastructure error.
    let o = ept(&[
        "judge",
        &fixture("x86_64-spinlock-echo-hi.log"),
        "/nonexistent/x.log",
    ]);
    assert_exit(&o, 3);
    // An ERROR verdict (the guest never booted) is one too.
    assert_exit(
        &ept(&[
            "judge",
            &fixture("x86_64-spinlock-deadline-before-boot.log"),
        ]),
        3,
    );
    // --baseline that cannot be read.
    let o = ept(&[
        "judge",
        "--baseline",
        "/nonexistent/b.log",
        &fixture("x86_64-spinlock-echo-hi.log"),
    ]);
    assert_exit(&o, 3);
}

#[test]
fn judge_flags() {
    let inv = fixture("host-x86_64-rwlock-inversion.log");
    // -q / --quiet: one line per log.
    for q in ["-q", "--quiet"] {
        let o = ept(&["judge", q, &inv, &fixture("x86_64-spinlock-echo-hi.log")]);
        assert_exit(&o, 0);
        assert_eq!(stdout(&o).lines().count(), 2, "{q}: {}", stdout(&o));
    }
    // --json: the runs as a JSON array (options after the operands too).
    let o = ept(&["judge", &inv, "--json"]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["verdict"], "INVERSION");
    assert_eq!(v[0]["variant"], "rwlock");
    // --variant (alias) / --arch / --scenario override the header; a
    // spinlock INVERSION does not meet its expectation.
    let o = ept(&[
        "judge",
        "--json",
        "--variant",
        "patched",
        "--arch=riscv64",
        &inv,
    ]);
    assert_exit(&o, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (
            v[0]["variant"].as_str(),
            v[0]["arch"].as_str(),
            v[0]["meets"].as_bool()
        ),
        (Some("spinlock"), Some("riscv64"), Some(false))
    );
    let o = ept(&["judge", "--variant=unpatched", "--json", &inv]);
    assert_exit(&o, 0);
    let o = ept(&["judge", "--scenario", "smoke", "--json", &inv]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["scenario"], "smoke");
    // --expectations FILE: expect INVERSION of spinlock smoke -> mismatch.
    let d = scratch("exp");
    let exp = d.join("exp.json");
    std::fs::write(
        &exp,
        r#"{"default":["PASS"],"rules":[{"variant":"spinlock","expect":["INVERSION"]}]}"#,
    )
    .unwrap();
    let hi = fixture("x86_64-spinlock-echo-hi.log");
    assert_exit(&ept(&["judge", &hi]), 0);
    assert_exit(
        &ept(&["judge", "--expectations", exp.to_str().unwrap(), &hi]),
        1,
    );
    // --scenarios-file FILE: the built-in one, by path, changes nothing.
    let sf = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios.json");
    assert_exit(
        &ept(&["judge", &format!("--scenarios-file={}", sf.display()), &hi]),
        0,
    );
    // --baseline LOG: the unmodified kernel's selftests of the same arch.
    let o = ept(&[
        "judge",
        "-q",
        "--baseline",
        &fixture("x86_64-spinlock-epoll-selftests.log"),
        &fixture("x86_64-rwlock-epoll-selftests.log"),
    ]);
    assert_exit(&o, 0);
    // --out DIR: the whole report, junit.xml and kcidb.json included.
    let out = d.join("report");
    let o = ept(&["judge", "-q", "--out", out.to_str().unwrap(), &inv, &hi]);
    assert_exit(&o, 0);
    for f in [
        "report.json",
        "report.md",
        "junit.xml",
        "kcidb.json",
        "latency-x86_64-inversion.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains(
        r#"<testcase name="x86_64.rwlock.inversion.r1" classname="epoll_torture.x86_64.rwlock""#
    ));
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("kcidb.json")).unwrap()).unwrap();
    assert_eq!(k["version"]["major"], 5);
    assert_eq!(k["tests"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&d).unwrap();
}

// --- report, compare, merge ---

/// A report.json of judged fixtures in `dir`.
fn judged_report(dir: &Path, logs: &[&str]) -> PathBuf {
    let mut args = vec![
        "judge".to_string(),
        "-q".into(),
        "--out".into(),
        dir.display().to_string(),
    ];
    args.extend(logs.iter().map(|l| fixture(l)));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = ept(&a);
    assert!(code(&o) <= 1, "{}", stderr(&o));
    dir.join("report.json")
}

#[test]
fn report_renders_from_in_or_operand() {
    let d = scratch("report");
    let rep = judged_report(
        &d.join("a"),
        &[
            "host-x86_64-spinlock-stall.log",
            "host-x86_64-rwlock-inversion.log",
        ],
    );
    let r = rep.display().to_string();
    let cases: [(Vec<String>, PathBuf); 3] = [
        (vec!["--in".into(), r.clone()], d.join("a")),
        (
            vec![r.clone(), "--out".into(), d.join("b").display().to_string()],
            d.join("b"),
        ),
        (
            vec![
                format!("--in={r}"),
                format!("--out={}", d.join("c").display()),
            ],
            d.join("c"),
        ),
    ];
    for (args, out) in cases {
        let _ = std::fs::remove_file(out.join("junit.xml"));
        let mut a = vec!["report"];
        a.extend(args.iter().map(|s| s.as_str()));
        let o = ept(&a);
        assert_exit(&o, 0);
        assert!(out.join("report.md").is_file() && out.join("junit.xml").is_file());
        assert!(stderr(&o).contains("2 meet expectations"), "{}", stderr(&o));
    }
    // A report with a mismatch exits 1; an unreadable one 3.
    let bad = judged_report(&d.join("bad"), &["x86_64-spinlock-sysrq-crash.log"]);
    assert_exit(&ept(&["report", bad.to_str().unwrap()]), 1);
    assert_exit(&ept(&["report", "--in", "/nonexistent/report.json"]), 3);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn compare_variants_and_reports() {
    let d = scratch("compare");
    let a = judged_report(
        &d.join("a"),
        &[
            "host-x86_64-spinlock-stall.log",
            "host-x86_64-rwlock-inversion.log",
        ],
    );
    let o = ept(&[
        "compare",
        "--report",
        a.to_str().unwrap(),
        "patched",
        "rwlock",
    ]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("compare A=spinlock B=rwlock"),
        "{}",
        stdout(&o)
    );
    let o = ept(&[
        "compare",
        &format!("--report={}", a.display()),
        "spinlock",
        "lockless",
    ]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("variant lockless not in"));
    let b = judged_report(&d.join("b"), &["host-x86_64-spinlock-stall.log"]);
    let o = ept(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("compare A="));
    assert_exit(
        &ept(&["compare", "/nonexistent/a.json", "/nonexistent/b.json"]),
        3,
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn merge_shards() {
    let d = scratch("merge");
    let a = judged_report(&d.join("a"), &["host-x86_64-spinlock-stall.log"]);
    let b = judged_report(&d.join("b"), &["host-x86_64-rwlock-inversion.log"]);
    let out = d.join("m");
    let o = ept(&[
        "merge",
        a.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    assert!(out.join("junit.xml").is_file() && out.join("kcidb.json").is_file());
    let c = judged_report(&d.join("c"), &["x86_64-spinlock-sysrq-crash.log"]);
    let o = ept(&[
        "merge",
        &format!("--out={}", d.join("m2").display()),
        a.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    assert_exit(&o, 1);
    assert_exit(
        &ept(&["merge", "--out", out.to_str().unwrap(), "/nonexistent.json"]),
        3,
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn completions_for_each_shell() {
    for (sh, mark) in [
        ("bash", "_ept()"),
        ("zsh", "#compdef ept"),
        ("fish", "complete -c ept"),
        ("elvish", "edit:completion:arg-completer[ept]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let o = ept(&["completions", sh]);
        assert_exit(&o, 0);
        let s = stdout(&o);
        assert!(s.contains(mark), "{sh}: {s}");
        assert!(s.contains("json-progress"), "{sh}");
    }
}

// --- run, in a scratch top with stand-in scripts ---

/// A repository top whose qemu/mkimage.sh fails for variant `broken`,
/// says "unavailable" (exit 3) for `lockless`, and otherwise prints an
/// image path beside a build-info.env with the kernel's FEATURES (a 7.x
/// kernel: cfs_throttle_deferred); whose qemu/run-vm.sh copies a real
/// fixture log (smoke: a clean boot; inversion: an rwlock priority
/// inversion) to its --log, recording its arguments and the plan. A boot
/// here has one run (the tests with two scenarios use --isolate).
fn fake_top() -> PathBuf {
    let d = scratch("top");
    for sub in ["qemu", "selftests/steps", "selftests/scenarios"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    for s in ["smoke", "inversion"] {
        std::fs::write(d.join(format!("selftests/steps/{s}.sh")), "true\n").unwrap();
        std::fs::write(d.join(format!("selftests/scenarios/{s}.sh")), "true\n").unwrap();
    }
    std::fs::write(
        d.join("qemu/mkimage.sh"),
        format!(
            "echo \"mkimage $* KERNEL_SRC=${{KERNEL_SRC-}} PATCHES=${{PATCHES-}}\" >> {calls}\n\
             case $2 in broken) echo 'ld: bad things' >&2; exit 1;; lockless) echo 'no patches' >&2; exit 3;; esac\n\
             mkdir -p {img}/$1-$2\n\
             echo 'FEATURES=\"module kunit preempt_rt cfs_throttle_deferred ep_seqcount ep_lock=spinlock_t\"' > {img}/$1-$2/build-info.env\n\
             echo {img}/$1-$2/initramfs.cpio.gz\n",
            calls = d.join("calls.txt").display(),
            img = d.join("img").display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("qemu/run-vm.sh"),
        format!(
            "echo \"run-vm $* KERNEL_SRC=${{KERNEL_SRC-}} PATCHES=${{PATCHES-}}\" >> {calls}\n\
             while [ $# -gt 0 ]; do case $1 in --plan|--steps) steps=$2; shift;; --log) log=$2; shift;; esac; shift; done\n\
             cat \"$steps\" >> {calls}\n\
             case $(grep '^# ept-run-deadline' \"$steps\") in *scenario=inversion*) f={inv};; *) f={hi};; esac\n\
             cp \"$f\" \"$log\"\n",
            calls = d.join("calls.txt").display(),
            inv = fixture("host-x86_64-rwlock-inversion.log"),
            hi = fixture("x86_64-spinlock-echo-hi.log"),
        ),
    )
    .unwrap();
    d
}

fn calls(top: &Path) -> String {
    std::fs::read_to_string(top.join("calls.txt")).unwrap_or_default()
}

fn report_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn cells_of(rep: &serde_json::Value) -> Vec<String> {
    rep["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["cell"].as_str().unwrap(),
                r["verdict"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn run_meets_0_mismatch_1_error_3() {
    let top = fake_top();
    // Defaults: out/report and out/logs under the top.
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "spinlock",
            "--scenarios",
            "smoke",
        ],
    );
    assert_exit(&o, 0);
    assert!(top.join("out/report/junit.xml").is_file());
    assert!(top.join("out/logs/x86_64-spinlock-smoke-r1.log").is_file());
    assert!(
        stdout(&o).contains("| x86_64 | spinlock | PASS |"),
        "{}",
        stdout(&o)
    );
    // rwlock inversion meets (INVERSION expected), spinlock's does not.
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs=x86_64",
            "--variants=spinlock,rwlock",
            "--scenarios=inversion",
        ],
    );
    assert_exit(&o, 1);
    let rep = report_of(&top.join("out/report"));
    assert_eq!(
        cells_of(&rep),
        [
            "x86_64-spinlock-inversion-r1:INVERSION",
            "x86_64-rwlock-inversion-r1:INVERSION"
        ]
    );
    // A failed build is an ERROR run: 3. An unavailable variant meets.
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "broken",
            "--scenarios",
            "smoke",
        ],
    );
    assert_exit(&o, 3);
    assert!(stdout(&o).contains("image build failed"), "{}", stdout(&o));
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "lockless",
            "--scenarios",
            "smoke",
        ],
    );
    assert_exit(&o, 0);
    let junit = std::fs::read_to_string(top.join("out/report/junit.xml")).unwrap();
    assert!(
        junit.contains("<skipped message=\"UNAVAILABLE: variant unavailable"),
        "{junit}"
    );
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn run_flags_reach_the_scripts() {
    let top = fake_top();
    let out = top.join("o/report");
    let logs = top.join("o/logs");
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64 riscv64",
            "--variants",
            "patched, unpatched",
            "--scenarios",
            "smoke",
            "--repeat",
            "2",
            "--jobs=2",
            "--shard",
            "2/2",
            "--duration",
            "7",
            "--deadline",
            "33",
            "--kernel-src",
            "/src/linux",
            "--patches=/p/a.patch,/p/b.patch",
            "--out",
            out.to_str().unwrap(),
            &format!("--logs={}", logs.display()),
        ],
    );
    assert_exit(&o, 0);
    let rep = report_of(&out);
    // 2 archs x 2 variants x 2 repeats = 8 cells; shard 2/2 = the riscv64 half.
    assert_eq!(
        cells_of(&rep),
        [
            "riscv64-spinlock-smoke-r1:PASS",
            "riscv64-spinlock-smoke-r2:PASS",
            "riscv64-rwlock-smoke-r1:PASS",
            "riscv64-rwlock-smoke-r2:PASS"
        ]
    );
    assert_eq!(rep["shards"], serde_json::json!(["2/2"]));
    assert!(logs.join("riscv64-rwlock-smoke-r2.log").is_file());
    let c = calls(&top);
    assert!(
        c.contains("mkimage riscv64 spinlock KERNEL_SRC=/src/linux PATCHES=/p/a.patch,/p/b.patch"),
        "{c}"
    );
    assert!(!c.contains("mkimage x86_64"), "{c}");
    // --deadline: each run's own (in the plan); the boot's adds the boot allowance.
    assert!(c.contains("--deadline 153 --log"), "{c}");
    assert!(c.contains("scenario=smoke repeat=2 seconds=33"), "{c}");
    assert!(c.contains("export DURATION=7"), "{c}");
    assert_eq!(c.matches("run-vm riscv64").count(), 4, "{c}");
    // KERNEL_SRC / PATCHES from the environment when the flags are absent.
    let o = Command::new(env!("CARGO_BIN_EXE_ept"))
        .args([
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "spinlock",
            "--scenarios",
            "smoke",
        ])
        .env("EPT_TOP", &top)
        .env("KERNEL_SRC", "/env/src")
        .env("PATCHES", "/env/x.patch")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        calls(&top).contains("mkimage x86_64 spinlock KERNEL_SRC=/env/src PATCHES=/env/x.patch")
    );
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn run_builds_every_arch_at_once_and_an_empty_shard_ends() {
    let top = fake_top();
    let out = top.join("o/report");
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "riscv64 x86_64",
            "--variants",
            "spinlock",
            "--scenarios",
            "smoke",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 0);
    // One build thread per arch: the first arch at nice 19, the others idle.
    let err = stderr(&o);
    assert!(
        err.contains("building riscv64/spinlock (qemu/mkimage.sh under `nice -n 19`"),
        "{err}"
    );
    assert!(
        err.contains("building x86_64/spinlock (qemu/mkimage.sh under `chrt --idle 0`"),
        "{err}"
    );
    let c = calls(&top);
    assert_eq!(c.matches("mkimage ").count(), 2, "{c}");
    assert_eq!(c.matches("run-vm ").count(), 2, "{c}");
    // One cell in two shards: shard 1 is empty, and the run still ends.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ept"))
        .args([
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "spinlock",
            "--scenarios",
            "smoke",
            "--shard",
            "1/2",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("EPT_TOP", &top)
        .current_dir(&top)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() > 30 {
            child.kill().unwrap();
            panic!("ept run of an empty shard did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn run_json_progress() {
    let top = fake_top();
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "spinlock lockless",
            "--scenarios",
            "smoke,inversion",
            "--json-progress",
            "--isolate",
        ],
    );
    assert_exit(&o, 1);
    // stdout: JSON lines only; the human lines and the table on stderr.
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    // The build thread runs ahead of the boots: order only within a pair
    // or a cell.
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!((kinds[0], kinds[kinds.len() - 1]), ("start", "end"));
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(
        [
            count("build_start"),
            count("build_end"),
            count("boot_start"),
            count("boot_end"),
            count("verdict")
        ],
        [2, 2, 2, 2, 4]
    );
    let pos = |k: &str, key: &str, val: &str| {
        events
            .iter()
            .position(|e| e["event"] == k && e[key] == val)
            .unwrap_or_else(|| panic!("{k} {key}={val}"))
    };
    for v in ["spinlock", "lockless"] {
        assert!(pos("build_start", "variant", v) < pos("build_end", "variant", v));
    }
    for c in ["x86_64-spinlock-smoke-r1", "x86_64-spinlock-inversion-r1"] {
        assert!(pos("build_end", "variant", "spinlock") < pos("boot_start", "cell", c));
        assert!(pos("boot_start", "cell", c) < pos("boot_end", "cell", c));
        assert!(pos("boot_end", "cell", c) < pos("verdict", "cell", c));
    }
    assert!(events.iter().all(|e| e["v"] == 1 && e["time"].is_f64()));
    assert_eq!(events[0]["cells"], 4);
    let e = &events[pos("boot_start", "cell", "x86_64-spinlock-smoke-r1")];
    assert_eq!(
        (e["deadline_s"].as_u64(), e["scenario"].as_str()),
        (Some(120 + 120), Some("smoke")),
        "the run's deadline plus the boot allowance"
    );
    assert_eq!(
        events[pos("boot_end", "cell", "x86_64-spinlock-smoke-r1")]["vm_rc"],
        0
    );
    assert_eq!(
        events[pos("build_end", "variant", "spinlock")]["status"],
        "ok"
    );
    assert_eq!(
        events[pos("build_end", "variant", "lockless")]["status"],
        "unavailable"
    );
    let mut v: Vec<(&str, &str, bool)> = events
        .iter()
        .filter(|e| e["event"] == "verdict")
        .map(|e| {
            (
                e["cell"].as_str().unwrap(),
                e["verdict"].as_str().unwrap(),
                e["meets"].as_bool().unwrap(),
            )
        })
        .collect();
    v.sort();
    assert_eq!(
        v,
        [
            ("x86_64-lockless-inversion-r1", "UNAVAILABLE", true),
            ("x86_64-lockless-smoke-r1", "UNAVAILABLE", true),
            ("x86_64-spinlock-inversion-r1", "INVERSION", false),
            ("x86_64-spinlock-smoke-r1", "PASS", true),
        ]
    );
    let end = events.last().unwrap();
    assert_eq!(
        (
            end["runs"].as_u64(),
            end["mismatch"].as_u64(),
            end["exit_code"].as_i64()
        ),
        (Some(4), Some(1), Some(1))
    );
    assert!(end["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "kcidb.json"));
    let err = stderr(&o);
    assert!(err.contains("/4] x86_64-spinlock-smoke-r1"), "{err}");
    assert!(err.contains("| x86_64 | spinlock |"), "{err}");
    // Without the flag stdout has the human lines and no JSON.
    let o = ept_in(
        Some(&top),
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "spinlock",
            "--scenarios",
            "smoke",
        ],
    );
    assert!(stdout(&o).contains("[  1/1] x86_64-spinlock-smoke-r1"));
    assert!(!stdout(&o).contains("\"event\""));
    std::fs::remove_dir_all(&top).unwrap();
}
