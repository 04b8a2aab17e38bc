//! `ept run`: build each (arch, variant) once, then boot the cell's runs,
//! judge each run from its boot's console log, and write the report.
//!
//! A *run* is one execution of a scenario (scenario + repeat index). The
//! runs of a cell (arch, variant) that may share a boot (`share_boot` in
//! scenarios.json) and have the same repeat index go into one boot, in the
//! scenarios' `order` (hang-prone last); `--isolate` gives every run its own
//! boot. A run whose `needs` the kernel's FEATURES do not meet is
//! NOT_APPLICABLE without a boot (`--force` runs it anyway). Runs that never
//! started because an earlier run of their boot hung are re-queued in a new
//! boot.

use crate::data::{canon_variant, meets, unmet_need, Expectations, Scenarios, Verdict};
use crate::judge::{Finding, Judgement, RunId};
use crate::log::ConsoleLog;
use crate::progress::{Event, Progress};
use crate::report::Run;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RunOpts {
    pub top: PathBuf,
    pub archs: Vec<String>,
    pub variants: Vec<String>,
    pub scenarios: Vec<String>,
    /// Runs per cell; `None`: each scenario's `repeats`.
    pub repeat: Option<u32>,
    pub duration: Option<u64>,
    pub jobs: usize,
    /// (i, n), 1 <= i <= n.
    pub shard: Option<(usize, usize)>,
    pub kernel_src: Option<String>,
    pub patches: Option<String>,
    pub out: PathBuf,
    pub logs: PathBuf,
    /// Overrides every run's deadline.
    pub deadline: Option<u64>,
    /// One boot per run (`--isolate`, ISOLATE=1).
    pub isolate: bool,
    /// Every build before the first boot (`--build-first`, BUILD_FIRST=1).
    pub build_first: bool,
    /// Run what the kernel's features say cannot apply (`--force`, FORCE=1).
    pub force: bool,
    /// Repeat indices that share one boot (`--pack N`, default 1).
    pub pack: u32,
    /// Extra module parameters for every module run (`--params`, $EPT_PARAMS).
    pub params: Option<String>,
    /// `K=V` exported in every plan (`--env`: LINGER=12, PIN=none, ...).
    pub env: Vec<String>,
    /// Progress lines and `--json-progress` events (crate::progress).
    pub progress: Progress,
}

/// A planned run: (arch, variant, scenario, repeat).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub arch: String,
    pub variant: String,
    pub scenario: String,
    pub repeat: u32,
}

impl Cell {
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}-r{}",
            self.arch, self.variant, self.scenario, self.repeat
        )
    }
}

/// The full run list in a fixed order (arch, variant, scenario, repeat).
/// `repeat`: runs per scenario (`None`: the scenario's own `repeats`).
pub fn cells(
    archs: &[String],
    variants: &[String],
    scenarios: &[String],
    repeat: Option<u32>,
    scen: &Scenarios,
) -> Vec<Cell> {
    let mut v = Vec::new();
    for a in archs {
        for var in variants {
            for s in scenarios {
                for r in 1..=repeat.unwrap_or_else(|| scen.spec(s).repeats) {
                    v.push(Cell {
                        arch: a.clone(),
                        variant: canon_variant(var).to_string(),
                        scenario: s.clone(),
                        repeat: r,
                    });
                }
            }
        }
    }
    v
}

/// Shard i of n (1-based): a contiguous slice, so a shard builds few kernels.
pub fn shard(cells: Vec<Cell>, i: usize, n: usize) -> Vec<Cell> {
    let len = cells.len();
    let (lo, hi) = ((i - 1) * len / n, i * len / n);
    cells.into_iter().skip(lo).take(hi - lo).collect()
}

/// Parse "i/n".
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: want i/n"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("--shard {s}: bad i"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("--shard {s}: bad n"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("--shard {s}: need 1 <= i <= n"));
    }
    Ok((i, n))
}

/// One VM boot: runs of one (arch, variant), in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub id: String,
    pub arch: String,
    pub variant: String,
    pub runs: Vec<Cell>,
}

/// Group runs into boots: per (arch, variant), the shareable runs of the
/// same repeat index (or of `pack` consecutive indices) share a boot, in
/// the scenarios' order (then repeat); every other run, and every run with
/// `isolate`, gets its own boot. Boots keep the order of their first run.
pub fn plan_boots(runs: &[Cell], scen: &Scenarios, isolate: bool, pack: u32) -> Vec<Boot> {
    let pack = pack.max(1);
    let mut boots: Vec<Boot> = Vec::new();
    let mut shared: BTreeMap<(String, String, u32), usize> = BTreeMap::new();
    for c in runs {
        let spec = scen.spec(&c.scenario);
        if isolate || !spec.share_boot {
            boots.push(Boot {
                id: c.id(),
                arch: c.arch.clone(),
                variant: c.variant.clone(),
                runs: vec![c.clone()],
            });
            continue;
        }
        let group = (c.repeat - 1) / pack;
        let key = (c.arch.clone(), c.variant.clone(), group);
        let k = *shared.entry(key).or_insert_with(|| {
            let (lo, hi) = (group * pack + 1, group * pack + pack);
            let rs = if pack == 1 {
                format!("r{lo}")
            } else {
                format!("r{lo}-{hi}")
            };
            boots.push(Boot {
                id: format!("{}-{}-{rs}", c.arch, c.variant),
                arch: c.arch.clone(),
                variant: c.variant.clone(),
                runs: vec![],
            });
            boots.len() - 1
        });
        boots[k].runs.push(c.clone());
    }
    for b in &mut boots {
        b.runs
            .sort_by_key(|c| (scen.spec(&c.scenario).order, c.repeat));
        // A boot of one run is named (and logged) after the run.
        if b.runs.len() == 1 {
            b.id = b.runs[0].id();
        }
    }
    boots
}

/// The run's host deadline.
fn run_deadline(o: &RunOpts, scen: &Scenarios, c: &Cell) -> u64 {
    o.deadline
        .unwrap_or_else(|| scen.spec(&c.scenario).run_deadline(o.duration))
}

/// The boot's host deadline: its runs' deadlines plus the boot allowance.
pub fn boot_deadline(o: &RunOpts, scen: &Scenarios, b: &Boot) -> u64 {
    scen.boot_allowance_s + b.runs.iter().map(|c| run_deadline(o, scen, c)).sum::<u64>()
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The plan of a boot, `/ept/plan.sh` in the guest (busybox sh): each run
/// in a subshell between `EPT: run begin/end` markers, with its deadline in
/// a comment line for run-vm.sh. Exits with the last failing run's status.
pub fn plan_text(b: &Boot, scen: &Scenarios, o: &RunOpts) -> String {
    let mut s = format!(
        "#!/bin/sh\n# /ept/plan.sh, generated by `ept run` for boot {id} ({a}/{v}): {list}\n",
        id = b.id,
        a = b.arch,
        v = b.variant,
        list = b
            .runs
            .iter()
            .map(|c| format!("{} r{}", c.scenario, c.repeat))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in &b.runs {
        s.push_str(&format!(
            "# ept-run-deadline scenario={} repeat={} seconds={}\n",
            c.scenario,
            c.repeat,
            run_deadline(o, scen, c)
        ));
    }
    s.push_str(&format!(
        "export EPT_ARCH={} EPT_VARIANT={} EPT_BOOT={}\n",
        b.arch, b.variant, b.id
    ));
    if let Some(d) = o.duration {
        s.push_str(&format!("export DURATION={d}\n"));
    }
    if let Some(p) = o.params.as_deref().filter(|p| !p.trim().is_empty()) {
        s.push_str(&format!("export EPT_PARAMS={}\n", sh_quote(p)));
    }
    for kv in &o.env {
        if let Some((k, v)) = kv.split_once('=') {
            s.push_str(&format!("export {k}={}\n", sh_quote(v)));
        }
    }
    // Opt-in long-timeout reruns of timed-out kernel selftests (slow: up to
    // the long timeout per test under TCG).
    if std::env::var("SELFTEST_RERUN").is_ok_and(|v| v == "1") {
        s.push_str("export EPT_SELFTEST_RERUN=1\n");
    }
    // TRACE=1 (docs/trace.md): ept-run loads the module with trace=1; the
    // frozen window is dumped after each module run, inside its markers.
    let trace = crate::ftrace::enabled();
    if trace {
        s.push_str("export EPT_TRACE=1\nsh /ept/scenarios/trace-dump.sh setup\n");
    }
    s.push_str(&format!(
        "echo \"EPT: plan runs={}\"\nprc=0\n",
        b.runs
            .iter()
            .map(|c| format!("{}:{}", c.scenario, c.repeat))
            .collect::<Vec<_>>()
            .join(",")
    ));
    for c in &b.runs {
        let spec = scen.spec(&c.scenario);
        s.push_str(&format!(
            "\necho \"EPT: run begin scenario={sc} repeat={r}\"\n(\nexport EPT_SCENARIO={sc} EPT_REPEAT={r}\n",
            sc = c.scenario,
            r = c.repeat
        ));
        // `arch:NAME` keys apply on that arch only, after (over) NAME.
        for (k, v) in spec.env.iter().filter(|(k, _)| !k.contains(':')) {
            s.push_str(&format!("export {k}={}\n", sh_quote(v)));
        }
        for (k, v) in &spec.env {
            if let Some(name) = k.strip_prefix(&format!("{}:", b.arch)) {
                s.push_str(&format!("export {name}={}\n", sh_quote(v)));
            }
        }
        if spec.housekeeping {
            s.push_str(". /ept/scenarios/housekeeping.sh\n");
        }
        for l in &spec.setup {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&spec.command_line());
        s.push_str("\n)\nrc=$?\n");
        if trace && spec.kind == crate::data::Kind::Module {
            s.push_str("sh /ept/scenarios/trace-dump.sh\n");
        }
        s.push_str(&format!(
            "echo \"EPT: run end scenario={} repeat={} rc=$rc\"\n[ $rc = 0 ] || prc=$rc\n",
            c.scenario, c.repeat
        ));
    }
    s.push_str("exit $prc\n");
    s
}

fn error_run(cell: &Cell, expected: Vec<Verdict>, verdict: Verdict, reason: String) -> Run {
    Run {
        cell: cell.id(),
        arch: cell.arch.clone(),
        variant: cell.variant.clone(),
        scenario: cell.scenario.clone(),
        repeat: cell.repeat,
        meets: meets(verdict, &expected),
        verdict,
        expected,
        findings: vec![Finding {
            verdict,
            what: reason.clone(),
            lines: vec![],
            count: 1,
        }],
        reason,
        waits: vec![],
        notes: vec![],
        metrics: Default::default(),
        build: BTreeMap::new(),
        log: None,
        boot: None,
        elapsed_s: 0.0,
        vm_rc: None,
    }
}

/// The judged runs of a log, in log order. The one place that calls the
/// judge on a log. `planned`: the runs a boot's plan had (`ept run`: those
/// it never began are left out, to be re-queued); `None`: the log's own
/// `EPT: plan runs=` line says (`ept judge`: a run never begun is an ERROR).
fn judge_log(
    log: &ConsoleLog,
    scen: &Scenarios,
    fallback: &str,
    baseline: Option<&BTreeMap<String, String>>,
    planned: Option<&[RunId]>,
) -> Vec<Judgement> {
    let spec_of = |name: &str| {
        let mut s = scen.spec(name);
        s.baseline_failures = baseline.cloned();
        s
    };
    crate::judge::judge_plan(log, &spec_of, fallback, planned)
}

/// What `ept judge` and `ept run` know about a log beyond its text.
#[derive(Debug, Clone, Default)]
pub struct LogHints {
    pub arch: Option<String>,
    pub variant: Option<String>,
    /// The scenario of a log without run markers.
    pub scenario: Option<String>,
    /// The unmodified kernel's selftest failures (`ept judge --baseline`).
    pub baseline: Option<BTreeMap<String, String>>,
    pub boot: Option<String>,
    /// `ept run`: judge only the runs the log shows (the runner re-queues
    /// the others); otherwise a planned run never begun is an ERROR.
    pub only_begun: bool,
}

/// Judge a console log into one Run per run it shows (one when it has no
/// run markers). Used by `ept judge` and `ept run`.
pub fn runs_from_log(
    path: &Path,
    hints: &LogHints,
    scen: &Scenarios,
    exp: &Expectations,
) -> Result<Vec<Run>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let log = ConsoleLog::parse(&text);
    let fallback = hints
        .scenario
        .clone()
        .or_else(|| crate::judge::guess_scenario(&log, &path.display().to_string(), &scen.names()))
        .unwrap_or_else(|| "unknown".into());
    let arch = hints
        .arch
        .clone()
        .or_else(|| log.header.get("ARCH").cloned())
        .unwrap_or_else(|| "?".into());
    let variant = canon_variant(
        &hints
            .variant
            .clone()
            .or_else(|| log.header.get("VARIANT").cloned())
            .unwrap_or_else(|| "?".into()),
    )
    .to_string();
    let base = log
        .header
        .get("BASE_KERNELVERSION")
        .cloned()
        .unwrap_or_default();
    let build: BTreeMap<String, String> = log
        .header
        .iter()
        .filter(|(k, _)| {
            k.chars().all(|c| c.is_ascii_uppercase() || c == '_') && k.as_str() != "QEMU_CMD"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut runs = Vec::new();
    let only: Vec<RunId> = vec![];
    for j in judge_log(
        &log,
        scen,
        &fallback,
        hints.baseline.as_ref(),
        hints.only_begun.then_some(&only[..]),
    ) {
        let (scenario, repeat) = (j.scenario.clone(), j.repeat);
        let run_s = j.metrics.values.get("run_s").copied();
        let expected = exp.expected(&arch, &variant, &scenario, &base);
        let cell = Cell {
            arch: arch.clone(),
            variant: variant.clone(),
            scenario: scenario.clone(),
            repeat,
        };
        runs.push(Run {
            cell: cell.id(),
            arch: arch.clone(),
            variant: variant.clone(),
            scenario,
            repeat,
            meets: meets(j.verdict, &expected),
            verdict: j.verdict,
            expected,
            reason: j.reason.clone(),
            findings: j.findings.clone(),
            waits: j.waits.clone(),
            notes: j.notes.clone(),
            metrics: j.metrics.clone(),
            build: build.clone(),
            log: Some(path.display().to_string()),
            boot: hints.boot.clone(),
            elapsed_s: run_s.or(log.last_host_s()).unwrap_or(0.0),
            vm_rc: None,
        });
    }
    Ok(runs)
}

/// One progress line.
pub fn progress_line(done: usize, total: usize, r: &Run) -> String {
    let exp: Vec<String> = r.expected.iter().map(|v| v.to_string()).collect();
    format!(
        "[{done:>3}/{total}] {:<40} {:>7.1}s  {:<11} {}  {}",
        r.cell,
        r.elapsed_s,
        r.verdict.to_string(),
        if r.meets {
            "ok  ".to_string()
        } else {
            format!("MISMATCH (expected {})", exp.join("/"))
        },
        r.reason.chars().take(100).collect::<String>()
    )
}

fn script_env(cmd: &mut Command, o: &RunOpts) {
    if let Some(k) = &o.kernel_src {
        cmd.env("KERNEL_SRC", k);
    }
    if let Some(p) = &o.patches {
        cmd.env("PATCHES", p);
    }
}

/// A built cell: its directory and kernel FEATURES.
#[derive(Debug, Clone)]
pub struct Built {
    pub cell_dir: PathBuf,
    pub features: Vec<String>,
}

/// FEATURES from a cell's build-info.env.
pub fn read_features(cell_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(cell_dir.join("build-info.env")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("FEATURES="))
        .map(|v| {
            v.trim_matches('"')
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// How the builds of the `i`-th arch of a run yield the host's CPUs. A TCG
/// guest that shares its host CPUs with a build runs its scenarios slower
/// (a cold matrix measured the x86_64 selftests at 100 s instead of 30 s
/// beside a build at the same priority, and still at 55 s beside one at
/// nice 19): the first arch builds at nice 19, the others at SCHED_IDLE,
/// which runs only on a CPU that nothing else wants. So the first arch's
/// kernels are ready first, and every build takes what the VMs leave.
pub fn build_priority(i: usize) -> &'static [&'static str] {
    if i == 0 {
        &["nice", "-n", "19"]
    } else {
        &["chrt", "--idle", "0"]
    }
}

/// Build (arch, variant) under `prio` (build_priority): Ok(Ok(built)),
/// Ok(Err(reason)) unavailable, Err(reason) failed.
fn build(
    o: &RunOpts,
    arch: &str,
    variant: &str,
    prio: &[&str],
) -> Result<Result<Built, String>, String> {
    std::fs::create_dir_all(&o.logs).map_err(|e| format!("{}: {e}", o.logs.display()))?;
    let blog = o.logs.join(format!("build-{arch}-{variant}.log"));
    let f = std::fs::File::create(&blog).map_err(|e| format!("{}: {e}", blog.display()))?;
    let mut cmd = Command::new(prio[0]);
    cmd.args(&prio[1..])
        .arg("bash")
        .arg(o.top.join("qemu/mkimage.sh"))
        .arg(arch)
        .arg(variant)
        .current_dir(&o.top)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(f);
    script_env(&mut cmd, o);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run qemu/mkimage.sh: {e}"))?;
    let tail = std::fs::read_to_string(&blog)
        .unwrap_or_default()
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    match out.status.code() {
        Some(0) => {
            // mkimage.sh prints the image's path and keeps a copy of the
            // kernel cell's build-info.env beside it.
            let img = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let dir = Path::new(&img)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            Ok(Ok(Built {
                features: read_features(&dir),
                cell_dir: dir,
            }))
        }
        Some(3) => Ok(Err(format!("variant unavailable for this base: {tail}"))),
        c => Err(format!(
            "image build failed (rc {c:?}; {}): {tail}",
            blog.display()
        )),
    }
}

/// Boot one plan; judge its runs. Returns the judged runs and the planned
/// runs that never started (an earlier run of the boot hung).
fn run_boot(o: &RunOpts, b: &Boot, scen: &Scenarios, exp: &Expectations) -> (Vec<Run>, Vec<Cell>) {
    let t0 = Instant::now();
    let plans = o.out.join("plans");
    let plan = plans.join(format!("{}.sh", b.id));
    let all_error = |why: String, log: Option<String>, rc: Option<i32>| {
        let runs = b
            .runs
            .iter()
            .map(|c| {
                let mut r = error_run(
                    c,
                    exp.expected(&c.arch, &c.variant, &c.scenario, ""),
                    Verdict::Error,
                    why.clone(),
                );
                r.log = log.clone();
                r.boot = Some(b.id.clone());
                r.vm_rc = rc;
                r.elapsed_s = t0.elapsed().as_secs_f64();
                r
            })
            .collect();
        (runs, vec![])
    };
    if let Err(e) =
        std::fs::create_dir_all(&plans).and_then(|_| std::fs::write(&plan, plan_text(b, scen, o)))
    {
        return all_error(format!("cannot write the plan: {e}"), None, None);
    }
    let log = o.logs.join(format!("{}.log", b.id));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("bash");
    cmd.arg(o.top.join("qemu/run-vm.sh"))
        .args([&b.arch, &b.variant, "--no-build", "--plan"])
        .arg(&plan)
        .arg("--deadline")
        .arg(boot_deadline(o, scen, b).to_string())
        .arg("--log")
        .arg(&log)
        .current_dir(&o.top)
        .stdin(Stdio::null());
    script_env(&mut cmd, o);
    o.progress.emit(Event::BootStart {
        cell: b.id.clone(),
        arch: b.arch.clone(),
        variant: b.variant.clone(),
        scenario: b
            .runs
            .iter()
            .map(|c| c.scenario.as_str())
            .collect::<Vec<_>>()
            .join(","),
        repeat: b.runs.first().map_or(1, |c| c.repeat),
        deadline_s: boot_deadline(o, scen, b),
        log: log.display().to_string(),
    });
    let out = cmd.output();
    o.progress.emit(Event::BootEnd {
        cell: b.id.clone(),
        elapsed_s: crate::progress::round3(t0.elapsed().as_secs_f64()),
        vm_rc: out.as_ref().ok().and_then(|x| x.status.code()),
        log: log.exists().then(|| log.display().to_string()),
    });
    let (rc, stderr) = match out {
        Ok(out) => (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        ),
        Err(e) => return all_error(format!("cannot run qemu/run-vm.sh: {e}"), None, None),
    };
    if !log.exists() {
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return all_error(
            format!(
                "run-vm.sh rc {rc:?} wrote no log: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
            None,
            rc,
        );
    }
    let hints = LogHints {
        arch: Some(b.arch.clone()),
        variant: Some(b.variant.clone()),
        scenario: (b.runs.len() == 1).then(|| b.runs[0].scenario.clone()),
        baseline: None,
        boot: Some(b.id.clone()),
        only_begun: true,
    };
    let judged = match runs_from_log(&log, &hints, scen, exp) {
        Ok(r) => r,
        Err(e) => return all_error(e, Some(log.display().to_string()), rc),
    };
    // Runs that began are judged on their own; the planned runs that never
    // began (an earlier run of the boot hung or crashed it) are re-queued.
    // When no planned run began (the guest never reached its plan), the
    // boot's one judgement stands for every run, and nothing is re-queued.
    let begun = |c: &Cell| {
        judged
            .iter()
            .find(|r| r.scenario == c.scenario && r.repeat == c.repeat)
    };
    let any_begun = log_has_markers(&log) && b.runs.iter().any(|c| begun(c).is_some());
    let mut runs = Vec::new();
    let mut unstarted = Vec::new();
    for c in &b.runs {
        match begun(c) {
            Some(r) if any_begun || b.runs.len() == 1 => {
                let mut r = r.clone();
                r.vm_rc = rc;
                runs.push(r);
            }
            _ if any_begun => unstarted.push(c.clone()),
            _ => {
                let Some(first) = judged.first() else {
                    let mut r = error_run(
                        c,
                        exp.expected(&c.arch, &c.variant, &c.scenario, ""),
                        Verdict::Error,
                        "the judge found nothing in the boot's log".into(),
                    );
                    r.log = Some(log.display().to_string());
                    r.boot = Some(b.id.clone());
                    r.vm_rc = rc;
                    runs.push(r);
                    continue;
                };
                let mut r = first.clone();
                r.cell = c.id();
                r.scenario = c.scenario.clone();
                r.repeat = c.repeat;
                r.expected = exp.expected(
                    &c.arch,
                    &c.variant,
                    &c.scenario,
                    r.build.get("BASE_KERNELVERSION").map_or("", |v| v),
                );
                r.meets = meets(r.verdict, &r.expected);
                r.vm_rc = rc;
                runs.push(r);
            }
        }
    }
    (runs, unstarted)
}

fn log_has_markers(path: &Path) -> bool {
    std::fs::read(path)
        .map(|t| String::from_utf8_lossy(&t).contains("EPT: run begin "))
        .unwrap_or(false)
}

/// Run the matrix. Returns the runs in run-list order.
pub fn run_matrix(o: &RunOpts, scen: &Scenarios, exp: &Expectations) -> Vec<Run> {
    let mut all = cells(&o.archs, &o.variants, &o.scenarios, o.repeat, scen);
    if let Some((i, n)) = o.shard {
        all = shard(all, i, n);
    }
    let total = all.len();
    eprintln!(
        "ept: {total} run(s); jobs {}; {}; out {}",
        o.jobs,
        if o.isolate {
            "one boot per run (--isolate)".to_string()
        } else {
            "a cell's shareable runs share a boot".to_string()
        },
        o.out.display()
    );
    let results: BTreeMap<String, Run> = BTreeMap::new();
    o.progress.emit(Event::Start {
        cells: total,
        jobs: o.jobs,
        shard: o.shard.map(|(i, n)| format!("{i}/{n}")),
        out: o.out.display().to_string(),
        logs: o.logs.display().to_string(),
    });
    let print = |done: usize, r: &Run| {
        o.progress.human_line(&progress_line(done, total, r));
        o.progress.emit(Event::verdict(done, total, r));
    };

    // Build each (arch, variant) once: one build thread per arch (each arch
    // has its own work tree), an arch's variants in order; queue a pair's
    // boots as soon as its image is ready; `jobs` workers boot them. Builds
    // yield to the VMs, the first arch's less than the others'
    // (build_priority).
    let mut pairs: Vec<(String, String)> = Vec::new();
    for c in &all {
        let p = (c.arch.clone(), c.variant.clone());
        if !pairs.contains(&p) {
            pairs.push(p);
        }
    }
    let mut archs: Vec<String> = Vec::new();
    for (a, _) in &pairs {
        if !archs.contains(a) {
            archs.push(a.clone());
        }
    }
    // Build threads still running, and (pair index, boots) held back by
    // --build-first until the last of them ends.
    let building = Arc::new(Mutex::new((archs.len(), Vec::<(usize, Vec<Boot>)>::new())));
    // (boots to run, no more to come): nothing to build means nothing comes.
    let queue: Arc<Mutex<(VecDeque<Boot>, bool)>> =
        Arc::new(Mutex::new((VecDeque::new(), archs.is_empty())));
    let shared = Arc::new(Mutex::new((0usize, results)));
    let record = |shared: &Arc<Mutex<(usize, BTreeMap<String, Run>)>>, r: Run| {
        let mut g = shared.lock().unwrap();
        g.0 += 1;
        print(g.0, &r);
        g.1.insert(r.cell.clone(), r);
    };
    let jobs = o.jobs.max(1);
    std::thread::scope(|s| {
        for (ai, arch) in archs.iter().enumerate() {
            let queue = Arc::clone(&queue);
            let shared = Arc::clone(&shared);
            let building = Arc::clone(&building);
            let (all, pairs) = (&all, &pairs);
            s.spawn(move || {
                let prio = build_priority(ai);
                for (pi, (a, v)) in pairs.iter().enumerate().filter(|(_, (a, _))| a == arch) {
                    let t0 = Instant::now();
                    let blog = o.logs.join(format!("build-{a}-{v}.log"));
                    eprintln!(
                        "ept: building {a}/{v} (qemu/mkimage.sh under `{}`; log {})",
                        prio.join(" "),
                        blog.display()
                    );
                    o.progress.emit(Event::BuildStart {
                        arch: a.clone(),
                        variant: v.clone(),
                        log: blog.display().to_string(),
                    });
                    let b = build(o, a, v, prio);
                    o.progress.emit(Event::BuildEnd {
                        arch: a.clone(),
                        variant: v.clone(),
                        status: match &b {
                            Ok(Ok(_)) => "ok",
                            Ok(Err(_)) => "unavailable",
                            Err(_) => "failed",
                        }
                        .into(),
                        elapsed_s: crate::progress::round3(t0.elapsed().as_secs_f64()),
                        detail: match &b {
                            Ok(Ok(_)) => None,
                            Ok(Err(why)) | Err(why) => Some(why.clone()),
                        },
                    });
                    eprintln!(
                        "ept: {a}/{v} build {} in {:.0}s{}",
                        if b.is_ok() { "done" } else { "FAILED" },
                        t0.elapsed().as_secs_f64(),
                        match &b {
                            Ok(Ok(x)) => format!("; features: {}", x.features.join(" ")),
                            _ => String::new(),
                        }
                    );
                    let mine: Vec<&Cell> = all
                        .iter()
                        .filter(|c| c.arch == *a && c.variant == *v)
                        .collect();
                    let mut to_boot = Vec::new();
                    for c in mine {
                        let exp_v = exp.expected(&c.arch, &c.variant, &c.scenario, "");
                        let r = match &b {
                            Ok(Ok(built)) => {
                                let spec = scen.spec(&c.scenario);
                                match unmet_need(&spec, &built.features, &scen.features) {
                                    Some(why) if !o.force => error_run(
                                        c,
                                        exp_v,
                                        Verdict::NotApplicable,
                                        format!("not run: {why} (--force runs it)"),
                                    ),
                                    _ => {
                                        to_boot.push(c.clone());
                                        continue;
                                    }
                                }
                            }
                            Ok(Err(why)) => error_run(c, exp_v, Verdict::Unavailable, why.clone()),
                            Err(why) => error_run(c, exp_v, Verdict::Error, why.clone()),
                        };
                        record(&shared, r);
                    }
                    let boots = plan_boots(&to_boot, scen, o.isolate, o.pack);
                    if o.build_first {
                        building.lock().unwrap().1.push((pi, boots));
                    } else {
                        queue.lock().unwrap().0.extend(boots);
                    }
                }
                // The last build thread to end releases what --build-first
                // held (in pair order) and tells the workers no more come.
                let mut g = building.lock().unwrap();
                g.0 -= 1;
                if g.0 == 0 {
                    let mut held = std::mem::take(&mut g.1);
                    held.sort_by_key(|(pi, _)| *pi);
                    let mut q = queue.lock().unwrap();
                    q.0.extend(held.into_iter().flat_map(|(_, b)| b));
                    q.1 = true;
                }
            });
        }
        for _ in 0..jobs {
            let queue = Arc::clone(&queue);
            let shared = Arc::clone(&shared);
            s.spawn(move || loop {
                let (next, builds_done) = {
                    let mut q = queue.lock().unwrap();
                    (q.0.pop_front(), q.1)
                };
                let Some(b) = next else {
                    if builds_done {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    continue;
                };
                eprintln!(
                    "ept: boot {} ({}): {}",
                    b.id,
                    b.runs
                        .iter()
                        .map(|c| format!("{} r{}", c.scenario, c.repeat))
                        .collect::<Vec<_>>()
                        .join(", "),
                    o.logs.join(format!("{}.log", b.id)).display()
                );
                let (runs, unstarted) = run_boot(o, &b, scen, exp);
                let last = runs.last().map(|r| (r.cell.clone(), r.verdict));
                for r in runs {
                    record(&shared, r);
                }
                if !unstarted.is_empty() {
                    let n = b.id.rsplit_once("-b").and_then(|(_, n)| n.parse::<u32>().ok());
                    let base = match n {
                        Some(_) => b.id.rsplit_once("-b").unwrap().0.to_string(),
                        None => b.id.clone(),
                    };
                    let again = Boot {
                        id: format!("{base}-b{}", n.unwrap_or(1) + 1),
                        arch: b.arch.clone(),
                        variant: b.variant.clone(),
                        runs: unstarted,
                    };
                    eprintln!(
                        "ept: boot {}: {} run(s) never started after {} ended the boot: re-queued in boot {} ({})",
                        b.id,
                        again.runs.len(),
                        last.map(|(c, v)| format!("{c} ({v})"))
                            .unwrap_or_else(|| "a run".into()),
                        again.id,
                        again
                            .runs
                            .iter()
                            .map(|c| format!("{} r{}", c.scenario, c.repeat))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    queue.lock().unwrap().0.push_front(again);
                }
            });
        }
    });
    let (_, mut results) = Arc::try_unwrap(shared)
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_else(|_| unreachable!());
    all.iter().filter_map(|c| results.remove(&c.id())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn opts() -> RunOpts {
        RunOpts {
            top: PathBuf::from("/nonexistent"),
            archs: v(&["x86_64"]),
            variants: v(&["rwlock"]),
            scenarios: v(&["stall"]),
            repeat: None,
            duration: None,
            jobs: 1,
            shard: None,
            kernel_src: None,
            patches: None,
            out: PathBuf::from("/nonexistent/out"),
            logs: PathBuf::from("/nonexistent/logs"),
            deadline: None,
            isolate: false,
            build_first: false,
            force: false,
            pack: 1,
            params: None,
            env: vec![],
            progress: Progress::default(),
        }
    }

    #[test]
    fn shards_cover_everything_once() {
        let scen = Scenarios::builtin();
        let all = cells(
            &v(&["x86_64", "riscv64"]),
            &v(&["patched", "rwlock", "lockless"]),
            &v(&["inversion", "stall", "smoke"]),
            Some(3),
            &scen,
        );
        assert_eq!(all.len(), 54);
        assert_eq!(all[0].variant, "spinlock");
        for n in 1..=7 {
            let mut got = Vec::new();
            for i in 1..=n {
                let s = shard(all.clone(), i, n);
                assert!(s.len() >= 54 / n && s.len() <= 54 / n + 1);
                got.extend(s);
            }
            assert_eq!(got, all, "n={n}");
        }
        assert_eq!(shard(all.clone(), 2, 3), shard(all, 2, 3));
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn boots_share_by_repeat_in_data_order() {
        let scen = Scenarios::builtin();
        let runs = cells(
            &v(&["x86_64"]),
            &v(&["rwlock", "spinlock"]),
            &v(&["stall", "cycles", "inversion", "smoke", "epoll-selftests"]),
            Some(2),
            &scen,
        );
        let boots = plan_boots(&runs, &scen, false, 1);
        let ids: Vec<&str> = boots.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "x86_64-rwlock-r1",
                "x86_64-rwlock-r2",
                "x86_64-rwlock-cycles-r1",
                "x86_64-rwlock-cycles-r2",
                "x86_64-spinlock-r1",
                "x86_64-spinlock-r2",
                "x86_64-spinlock-cycles-r1",
                "x86_64-spinlock-cycles-r2"
            ]
        );
        let order: Vec<&str> = boots[0].runs.iter().map(|c| c.scenario.as_str()).collect();
        assert_eq!(order, ["smoke", "inversion", "epoll-selftests", "stall"]);
        assert!(boots[1].runs.iter().all(|c| c.repeat == 2));
        // --isolate: one boot per run.
        let iso = plan_boots(&runs, &scen, true, 1);
        assert_eq!(iso.len(), runs.len());
        assert!(iso
            .iter()
            .all(|b| b.runs.len() == 1 && b.id == b.runs[0].id()));
        // --pack 2: repeats 1 and 2 share a boot, every scenario's runs in a row.
        let packed = plan_boots(&runs, &scen, false, 2);
        assert_eq!(packed[0].id, "x86_64-rwlock-r1-2");
        let order: Vec<String> = packed[0]
            .runs
            .iter()
            .map(|c| format!("{}{}", c.scenario, c.repeat))
            .collect();
        assert_eq!(
            order,
            [
                "smoke1",
                "smoke2",
                "inversion1",
                "inversion2",
                "epoll-selftests1",
                "epoll-selftests2",
                "stall1",
                "stall2"
            ]
        );
    }

    #[test]
    fn default_repeats_come_from_the_data() {
        let scen = Scenarios::builtin();
        let c = cells(
            &v(&["x86_64"]),
            &v(&["rwlock"]),
            &v(&["stall"]),
            None,
            &scen,
        );
        assert_eq!(c.len() as u32, scen.spec("stall").repeats);
    }

    #[test]
    fn plan_file() {
        let scen = Scenarios::builtin();
        let mut o = opts();
        o.duration = Some(90);
        o.params = Some("duration_s=15 hog_burst_ms=40".into());
        o.env = vec!["LINGER=12".into(), "PIN=none".into()];
        let runs = cells(
            &v(&["x86_64"]),
            &v(&["rwlock"]),
            &v(&["stall", "inversion", "hung-task"]),
            Some(1),
            &scen,
        );
        let boots = plan_boots(&runs, &scen, false, 1);
        assert_eq!(boots.len(), 2, "hung-task does not share");
        let t = plan_text(&boots[0], &scen, &o);
        assert!(t.starts_with("#!/bin/sh\n"));
        assert!(t.contains("export DURATION=90\n"));
        assert!(t.contains("export EPT_PARAMS='duration_s=15 hog_burst_ms=40'\n"));
        assert!(t.contains("export LINGER='12'\nexport PIN='none'\n"));
        assert!(t.contains("# ept-run-deadline scenario=inversion repeat=1 seconds=300\n"));
        assert!(t.contains("# ept-run-deadline scenario=stall repeat=1 seconds=240\n"));
        let inv = t
            .find("EPT: run begin scenario=inversion repeat=1")
            .unwrap();
        let st = t.find("EPT: run begin scenario=stall repeat=1").unwrap();
        assert!(inv < st, "stall runs last");
        assert!(t.contains("ept-run --dups 4 --timeout 120 inversion $EPT_PARAMS\n)\nrc=$?\necho \"EPT: run end scenario=inversion repeat=1 rc=$rc\"\n"));
        // housekeeping only where the data asks for it
        let hk = t.find(". /ept/scenarios/housekeeping.sh").unwrap();
        assert!(hk > st);
        assert!(t.ends_with("exit $prc\n"));
        assert_eq!(boot_deadline(&o, &scen, &boots[0]), 120 + 300 + 240);
        let h = plan_text(&boots[1], &scen, &o);
        assert!(
            h.contains("echo 1 >/proc/sys/kernel/hung_task_check_interval_secs\n")
                && h.contains(
                    "hung_task_timeout_secs)\"\nept-run --dups 4 --timeout 180 inversion consumers=2"
                )
        );
        // DURATION is added to the deadline of the scenarios that use it.
        assert!(h.contains("seconds=390\n"));
        // Arch-specific environment over the generic one.
        let sel = cells(
            &v(&["riscv64", "x86_64"]),
            &v(&["rwlock"]),
            &v(&["epoll-selftests"]),
            Some(1),
            &scen,
        );
        let sb = plan_boots(&sel, &scen, false, 1);
        let rv = plan_text(&sb[0], &scen, &o);
        assert!(rv.contains("export EPT_SELFTEST_SCALED='epoll65=100'\nexport EPT_SELFTEST_SCALED='epoll65=100 epoll59=10"), "{rv}");
        let xt = plan_text(&sb[1], &scen, &o);
        assert!(
            xt.contains("export EPT_SELFTEST_SCALED='epoll65=100'\n") && !xt.contains("epoll59=10"),
            "{xt}"
        );
        o.deadline = Some(50);
        assert!(plan_text(&boots[0], &scen, &o).contains("repeat=1 seconds=50\n"));
    }

    /// The plan is valid busybox/POSIX sh: run it with stand-ins for the
    /// guest programs and check the markers and the exit status.
    #[test]
    fn plan_runs_under_sh() {
        let scen = Scenarios::builtin();
        let dir = std::env::temp_dir().join(format!("ept-plan-test-{}", std::process::id()));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, rc) in [("ept-run", 0), ("ept-wakeup", 3)] {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\necho \"{name} $*\"\nexit {rc}\n")).unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .unwrap();
        }
        let runs = cells(
            &v(&["x86_64"]),
            &v(&["rwlock"]),
            &v(&["wakeup", "inversion"]),
            Some(1),
            &scen,
        );
        let b = &plan_boots(&runs, &scen, false, 1)[0];
        let mut o = opts();
        o.params = Some("a=1".into());
        let plan = dir.join("plan.sh");
        std::fs::write(&plan, plan_text(b, &scen, &o)).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&plan)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{text}");
        let want = "EPT: plan runs=inversion:1,wakeup:1\nEPT: run begin scenario=inversion repeat=1\nept-run --dups 4 --timeout 120 inversion a=1\nEPT: run end scenario=inversion repeat=1 rc=0\nEPT: run begin scenario=wakeup repeat=1\nept-wakeup --stop-first\nEPT: run end scenario=wakeup repeat=1 rc=3\n";
        assert_eq!(text, want);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
