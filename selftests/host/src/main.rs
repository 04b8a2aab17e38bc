//! `ept`: the epoll-torture host tool. See `ept --help`.

use ept_host::data::{canon_variant, Expectations, Scenarios, Verdict};
use ept_host::report::{Report, Run};
use ept_host::runner::{self, RunOpts};
use ept_host::{compare, judge, write_outputs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HELP: &str = "\
ept - epoll-torture host tool: run the VM matrix, judge console logs, report

USAGE:
  ept run [OPTIONS]                     build, boot and judge the matrix (a cell's runs share boots)
  ept judge [OPTIONS] LOG...            judge console logs: a verdict + evidence per run
  ept defaults [SET] KEY                a default list from scenarios.json: KEY = archs,
                                        variants, scenarios or env; SET = run (default)
                                        or another (`ept defaults sets` lists them)
  ept report [--in FILE] [--out DIR]    render report.md + SVG plots from report.json
  ept compare [--report FILE] VAR_A VAR_B   two variants of one report
  ept compare A.json B.json             the same cells in two reports
  ept merge [--out DIR] REPORT.json...  combine shard reports and re-render

run options:
  --archs LIST         default: `ept defaults archs` (lists: comma or blank separated)
  --variants LIST      default: `ept defaults variants`; aliases patched=spinlock,
                       unpatched=rwlock
  --scenarios LIST     default: `ept defaults scenarios` (scenarios.json knows more:
                       kunit, soak, hung-task, cycles, debug-load)
  --repeat N           runs per scenario (default: the scenario's `repeats`, 1)
  --isolate            one boot per run (default: a cell's shareable runs of one
                       repeat index share a boot, hang-prone last); also ISOLATE=1
  --pack N             runs of N consecutive repeat indices share a boot (default 1)
  --force              also run what the kernel's FEATURES say cannot apply
                       (NOT_APPLICABLE otherwise); also FORCE=1
  --params \"K=V ...\"   extra module parameters for every module run ($EPT_PARAMS)
  --env \"K=V ...\"      variables exported in every plan (LINGER=12, PIN=none, ...)
  --duration S         DURATION=S in the guest (soak); added to the deadline of
                       scenarios that use it
  --jobs N             VMs in parallel (default 1; the guests have 2 vCPUs each)
  --shard i/n          run only the i-th of n contiguous slices of the cell list
  --kernel-src DIR     passed to qemu/*.sh as KERNEL_SRC
  --patches LIST       passed to qemu/*.sh as PATCHES (comma-separated files)
  --out DIR            report directory (default out/report)
  --logs DIR           console logs (default out/logs)
  --deadline S         override every run's host deadline
common options:
  --expectations FILE  instead of the built-in selftests/host/expectations.json
  --scenarios-file FILE  instead of the built-in selftests/host/scenarios.json
judge options:
  --scenario S         default: from the log's steps= header or its file name
  --arch A, --variant V  default: from the log header (ARCH=, VARIANT=)
  --json               print the runs as JSON
  --out DIR            also write a report (json, md, svg) of the judged logs
  -q, --quiet          one line per log
  --baseline LOG       the unmodified kernel's (spinlock) selftest log of the
                       same arch and base: a known emulation failure excuses a
                       test only if the baseline failed it too

Verdicts (highest wins): CRASH > HANG > STALL > LOST_WAKEUP > FALSE_NEGATIVE >
INVERSION > ERROR > FAIL > PASS; NOT_APPLICABLE = the scenario's mechanism is
absent from this kernel (from its FEATURES), UNAVAILABLE = the variant has no
patches for this base (neither is a failure).

Exit status: 0 every run meets its expected verdict, 1 some do not,
2 usage error, 3 infrastructure error (an ERROR run, a build failure, an
unreadable file).
";

struct Args {
    items: Vec<String>,
}

impl Args {
    fn flag(&mut self, names: &[&str]) -> bool {
        let n = self.items.len();
        self.items.retain(|a| !names.contains(&a.as_str()));
        self.items.len() != n
    }

    fn opt(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut found = None;
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i] == name {
                if i + 1 >= self.items.len() {
                    return Err(format!("{name} needs a value"));
                }
                found = Some(self.items.remove(i + 1));
                self.items.remove(i);
            } else if let Some(v) = self.items[i].strip_prefix(&format!("{name}=")) {
                found = Some(v.to_string());
                self.items.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    fn rest(self) -> Result<Vec<String>, String> {
        if let Some(bad) = self.items.iter().find(|a| a.starts_with("--")) {
            return Err(format!("unknown option {bad}"));
        }
        Ok(self.items)
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(|x| x.to_string())
        .collect()
}

enum Fail {
    Usage(String),
    Infra(String),
}

fn usage<T>(s: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Usage(s.into()))
}

/// The repository top: $EPT_TOP, else the first parent of the current
/// directory or of the executable that has qemu/run-vm.sh.
fn find_top() -> Option<PathBuf> {
    if let Ok(t) = std::env::var("EPT_TOP") {
        return Some(PathBuf::from(t));
    }
    let mut starts = vec![];
    if let Ok(c) = std::env::current_dir() {
        starts.push(c);
    }
    if let Ok(e) = std::env::current_exe() {
        starts.push(e);
    }
    for s in starts {
        for d in s.ancestors() {
            if d.join("qemu/run-vm.sh").exists() {
                return Some(d.to_path_buf());
            }
        }
    }
    None
}

fn load_data(a: &mut Args) -> Result<(Scenarios, Expectations), Fail> {
    let scen = match a.opt("--scenarios-file").map_err(Fail::Usage)? {
        Some(f) => Scenarios::from_json(
            &std::fs::read_to_string(&f).map_err(|e| Fail::Usage(format!("{f}: {e}")))?,
        )
        .map_err(Fail::Usage)?,
        None => Scenarios::builtin(),
    };
    let exp = match a.opt("--expectations").map_err(Fail::Usage)? {
        Some(f) => Expectations::from_json(
            &std::fs::read_to_string(&f).map_err(|e| Fail::Usage(format!("{f}: {e}")))?,
        )
        .map_err(Fail::Usage)?,
        None => Expectations::builtin(),
    };
    Ok((scen, exp))
}

fn parse_num<T: std::str::FromStr>(name: &str, v: Option<String>) -> Result<Option<T>, Fail> {
    match v {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Fail::Usage(format!("{name} {v}: not a number"))),
    }
}

fn cmd_run(mut a: Args) -> Result<i32, Fail> {
    let (scen, exp) = load_data(&mut a)?;
    let o = |a: &mut Args, n: &str| a.opt(n).map_err(Fail::Usage);
    let dflt = |k: &str| scen.default_list("run", k).map_err(Fail::Usage);
    let archs = match o(&mut a, "--archs")? {
        Some(s) => list(&s),
        None => dflt("archs")?,
    };
    let variants: Vec<String> = match o(&mut a, "--variants")? {
        Some(s) => list(&s),
        None => dflt("variants")?,
    }
    .iter()
    .map(|v| canon_variant(v).to_string())
    .collect();
    let scenarios = match o(&mut a, "--scenarios")? {
        Some(s) => list(&s),
        None => dflt("scenarios")?,
    };
    let env_on = |k: &str| std::env::var(k).is_ok_and(|v| v == "1");
    let isolate = a.flag(&["--isolate"]) || env_on("ISOLATE");
    let force = a.flag(&["--force"]) || env_on("FORCE");
    let pack: u32 = parse_num("--pack", o(&mut a, "--pack")?)?.unwrap_or(1);
    let params = o(&mut a, "--params")?;
    let env = list(&o(&mut a, "--env")?.unwrap_or_default());
    if let Some(bad) = env.iter().find(|kv| {
        kv.split_once('=').is_none_or(|(k, _)| {
            k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }) {
        return usage(format!("run: --env {bad}: want NAME=value"));
    }
    let repeat: Option<u32> = parse_num("--repeat", o(&mut a, "--repeat")?)?;
    let duration: Option<u64> = parse_num("--duration", o(&mut a, "--duration")?)?;
    let jobs: usize = parse_num("--jobs", o(&mut a, "--jobs")?)?.unwrap_or(1);
    let deadline: Option<u64> = parse_num("--deadline", o(&mut a, "--deadline")?)?;
    let shard = match o(&mut a, "--shard")? {
        Some(s) => Some(runner::parse_shard(&s).map_err(Fail::Usage)?),
        None => None,
    };
    let kernel_src = o(&mut a, "--kernel-src")?
        .or_else(|| std::env::var("KERNEL_SRC").ok().filter(|s| !s.is_empty()));
    let patches =
        o(&mut a, "--patches")?.or_else(|| std::env::var("PATCHES").ok().filter(|s| !s.is_empty()));
    let out = o(&mut a, "--out")?;
    let logs = o(&mut a, "--logs")?;
    let rest = a.rest().map_err(Fail::Usage)?;
    if !rest.is_empty() {
        return usage(format!("run: unexpected argument {}", rest[0]));
    }
    if archs.is_empty()
        || variants.is_empty()
        || scenarios.is_empty()
        || repeat == Some(0)
        || jobs == 0
        || pack == 0
    {
        return usage("run: empty --archs/--variants/--scenarios or zero --repeat/--jobs/--pack");
    }
    for s in &scenarios {
        if !scen.is_known(s) {
            return usage(format!(
                "run: unknown scenario {s} (known: {})",
                scen.names().join(" ")
            ));
        }
    }
    let top = find_top().ok_or_else(|| {
        Fail::Infra("cannot find the repository top (qemu/run-vm.sh); set EPT_TOP".into())
    })?;
    let out = out
        .map(PathBuf::from)
        .unwrap_or_else(|| top.join("out/report"));
    let logs = logs
        .map(PathBuf::from)
        .unwrap_or_else(|| top.join("out/logs"));
    let opts = RunOpts {
        top,
        archs,
        variants,
        scenarios,
        repeat,
        duration,
        jobs,
        shard,
        kernel_src,
        patches,
        out: out.clone(),
        logs,
        deadline,
        isolate,
        force,
        pack,
        params,
        env,
    };
    let runs = runner::run_matrix(&opts, &scen, &exp);
    let rep = Report::new(runs, shard.map(|(i, n)| format!("{i}/{n}")));
    println!("\n{}", ept_host::report::verdict_table(&rep));
    finish(&rep, &out)
}

fn finish(rep: &Report, out: &Path) -> Result<i32, Fail> {
    let files = write_outputs(rep, out).map_err(Fail::Infra)?;
    let bad = rep.runs.iter().filter(|r| !r.meets).count();
    let err = rep
        .runs
        .iter()
        .filter(|r| r.verdict == Verdict::Error)
        .count();
    eprintln!(
        "ept: {} run(s), {} meet expectations, {} do not ({} ERROR); wrote {} in {}",
        rep.runs.len(),
        rep.runs.len() - bad,
        bad,
        err,
        files.join(" "),
        out.display()
    );
    Ok(rep.exit_code())
}

fn print_run(r: &Run, quiet: bool) {
    let exp: Vec<String> = r.expected.iter().map(|v| v.to_string()).collect();
    println!(
        "{}: {} (expected {}{}) - {}",
        r.log.as_deref().unwrap_or(&r.cell),
        r.verdict,
        exp.join("/"),
        if r.meets { "" } else { "; MISMATCH" },
        r.reason
    );
    if quiet {
        return;
    }
    println!(
        "  cell {} (arch {}, variant {}, scenario {})",
        r.cell, r.arch, r.variant, r.scenario
    );
    for f in &r.findings {
        println!("  {f}");
        for l in &f.lines {
            println!("      {l}");
        }
    }
    if !r.waits.is_empty() {
        println!("  who waits on whom:");
        for w in &r.waits {
            println!("      {w}");
        }
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
    if !r.metrics.values.is_empty() {
        let m: Vec<String> = r
            .metrics
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", ept_host::stats::fmt_num(*v)))
            .collect();
        println!("  metrics: {}", m.join(" "));
    }
    if !r.metrics.throughput.is_empty() {
        let t: Vec<String> = r
            .metrics
            .throughput
            .iter()
            .map(|p| format!("{}:{}", p.threads, p.events_per_ms))
            .collect();
        println!("  throughput (threads:events/ms): {}", t.join(" "));
    }
    for k in ["KERNEL_RELEASE", "LOCK_TYPE", "VARIANT_PATCHES"] {
        if let Some(v) = r.build.get(k) {
            println!("  {k}={v}");
        }
    }
}

fn cmd_judge(mut a: Args) -> Result<i32, Fail> {
    let (scen, exp) = load_data(&mut a)?;
    let json = a.flag(&["--json"]);
    let quiet = a.flag(&["-q", "--quiet"]);
    let sc = a.opt("--scenario").map_err(Fail::Usage)?;
    let arch = a.opt("--arch").map_err(Fail::Usage)?;
    let variant = a.opt("--variant").map_err(Fail::Usage)?;
    let out = a.opt("--out").map_err(Fail::Usage)?;
    let baseline = match a.opt("--baseline").map_err(Fail::Usage)? {
        Some(b) => {
            let t = std::fs::read(&b).map_err(|e| Fail::Infra(format!("--baseline {b}: {e}")))?;
            let log = ept_host::log::ConsoleLog::parse(&String::from_utf8_lossy(&t));
            Some(judge::selftest_failures(&log))
        }
        None => None,
    };
    let logs = a.rest().map_err(Fail::Usage)?;
    if logs.is_empty() {
        return usage("judge: give at least one LOG");
    }
    let mut runs = Vec::new();
    let mut infra = false;
    for p in &logs {
        let hints = runner::LogHints {
            arch: arch.clone(),
            variant: variant.clone(),
            scenario: sc.clone(),
            baseline: baseline.clone(),
            boot: None,
        };
        match runner::runs_from_log(Path::new(p), &hints, &scen, &exp) {
            Ok(rs) => {
                for r in rs {
                    if !json {
                        print_run(&r, quiet);
                    }
                    runs.push(r);
                }
            }
            Err(e) => {
                eprintln!("ept: {e}");
                infra = true;
            }
        }
    }
    let rep = Report::new(runs, None);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep.runs).unwrap_or_default()
        );
    }
    if let Some(o) = out {
        write_outputs(&rep, Path::new(&o)).map_err(Fail::Infra)?;
    }
    Ok(if infra { 3 } else { rep.exit_code() })
}

fn cmd_defaults(mut a: Args) -> Result<i32, Fail> {
    let (scen, _) = load_data(&mut a)?;
    let rest = a.rest().map_err(Fail::Usage)?;
    let (set, key) = match rest.as_slice() {
        [k] if k == "sets" => {
            println!("{}", scen.set_names().join(" "));
            return Ok(0);
        }
        [k] => ("run", k.as_str()),
        [s, k] => (s.as_str(), k.as_str()),
        _ => return usage("defaults: give [SET] KEY (e.g. `ept defaults check archs`)"),
    };
    println!(
        "{}",
        scen.default_list(set, key).map_err(Fail::Usage)?.join(" ")
    );
    Ok(0)
}

fn default_report() -> PathBuf {
    find_top()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("out/report/report.json")
}

fn cmd_report(mut a: Args) -> Result<i32, Fail> {
    let input = a.opt("--in").map_err(Fail::Usage)?;
    let out = a.opt("--out").map_err(Fail::Usage)?;
    let rest = a.rest().map_err(Fail::Usage)?;
    let input = input
        .or_else(|| rest.first().cloned())
        .map(PathBuf::from)
        .unwrap_or_else(default_report);
    let rep = Report::load(&input).map_err(Fail::Infra)?;
    let out = out.map(PathBuf::from).unwrap_or_else(|| {
        input
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    });
    finish(&rep, &out)
}

fn cmd_compare(mut a: Args) -> Result<i32, Fail> {
    let rep = a.opt("--report").map_err(Fail::Usage)?;
    let rest = a.rest().map_err(Fail::Usage)?;
    if rest.len() != 2 {
        return usage("compare: give two variants (with --report FILE) or two report.json files");
    }
    let files = rest
        .iter()
        .all(|f| f.ends_with(".json") || Path::new(f).is_file());
    let text = if files && rep.is_none() {
        let ra = Report::load(Path::new(&rest[0])).map_err(Fail::Infra)?;
        let rb = Report::load(Path::new(&rest[1])).map_err(Fail::Infra)?;
        compare::render(
            &format!("compare A={} B={}", rest[0], rest[1]),
            &compare::reports(&ra, &rb),
        )
    } else {
        let path = rep.map(PathBuf::from).unwrap_or_else(default_report);
        let r = Report::load(&path).map_err(Fail::Infra)?;
        let (va, vb) = (canon_variant(&rest[0]), canon_variant(&rest[1]));
        let known = ept_host::report::variants(&r);
        for v in [va, vb] {
            if !known.iter().any(|k| k == v) {
                return usage(format!(
                    "compare: variant {v} not in {} (has: {})",
                    path.display(),
                    known.join(" ")
                ));
            }
        }
        compare::render(
            &format!("compare A={va} B={vb} in {}", path.display()),
            &compare::variants(&r, va, vb),
        )
    };
    print!("{text}");
    Ok(0)
}

fn cmd_merge(mut a: Args) -> Result<i32, Fail> {
    let out = a.opt("--out").map_err(Fail::Usage)?;
    let files = a.rest().map_err(Fail::Usage)?;
    if files.is_empty() {
        return usage("merge: give report.json files");
    }
    let parts = files
        .iter()
        .map(|f| Report::load(Path::new(f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail::Infra)?;
    let rep = Report::merge(parts);
    let out = out.map(PathBuf::from).unwrap_or_else(|| {
        find_top()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("out/report")
    });
    finish(&rep, &out)
}

fn main() -> ExitCode {
    let mut items: Vec<String> = std::env::args().skip(1).collect();
    if items.is_empty() || matches!(items[0].as_str(), "-h" | "--help" | "help") {
        print!("{HELP}");
        return ExitCode::from(if items.is_empty() { 2 } else { 0 });
    }
    if matches!(items[0].as_str(), "-V" | "--version") {
        println!("ept {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let sub = items.remove(0);
    let mut args = Args { items };
    if args.flag(&["-h", "--help"]) {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let r = match sub.as_str() {
        "run" => cmd_run(args),
        "judge" => cmd_judge(args),
        "report" => cmd_report(args),
        "compare" => cmd_compare(args),
        "merge" => cmd_merge(args),
        "defaults" => cmd_defaults(args),
        other => usage(format!("unknown subcommand {other} (see ept --help)")),
    };
    match r {
        Ok(c) => ExitCode::from(c as u8),
        Err(Fail::Usage(m)) => {
            eprintln!("ept: {m}\n(see ept --help)");
            ExitCode::from(2)
        }
        Err(Fail::Infra(m)) => {
            eprintln!("ept: error: {m}");
            ExitCode::from(3)
        }
    }
}
