//! `ept`: the epoll-torture host tool. See `ept --help` (the command line
//! is in cli.rs).

mod bisect_cmd;
mod cli;

use clap::{CommandFactory, Parser};
use cli::{
    Cli, Cmd, CompareArgs, DataArgs, DefaultsArgs, JudgeArgs, MergeArgs, ReportArgs, RunArgs,
};
use ept_host::data::{canon_variant, Expectations, Scenarios, Verdict};
use ept_host::progress::{Event, Progress};
use ept_host::report::{Report, Run};
use ept_host::runner::{self, RunOpts};
use ept_host::{compare, find_top, judge, write_outputs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) enum Fail {
    Usage(String),
    Infra(String),
}

fn usage<T>(s: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Usage(s.into()))
}

fn load_data(d: &DataArgs) -> Result<(Scenarios, Expectations), Fail> {
    let read = |f: &Path| {
        std::fs::read_to_string(f).map_err(|e| Fail::Usage(format!("{}: {e}", f.display())))
    };
    let scen = match &d.scenarios_file {
        Some(f) => Scenarios::from_json(&read(f)?).map_err(Fail::Usage)?,
        None => Scenarios::builtin(),
    };
    let exp = match &d.expectations {
        Some(f) => Expectations::from_json(&read(f)?).map_err(Fail::Usage)?,
        None => Expectations::builtin(),
    };
    Ok((scen, exp))
}

fn cmd_run(a: RunArgs) -> Result<i32, Fail> {
    let (scen, exp) = load_data(&a.data)?;
    let given_or_default = |given: &Option<String>, key: &str| match given {
        Some(s) => Ok(cli::list(s)),
        None => scen.default_list("run", key).map_err(Fail::Usage),
    };
    let archs = given_or_default(&a.archs, "archs")?;
    let variants: Vec<String> = given_or_default(&a.variants, "variants")?
        .iter()
        .map(|v| canon_variant(v).to_string())
        .collect();
    let scenarios = given_or_default(&a.scenarios, "scenarios")?;
    let env_on = |k: &str| std::env::var(k).is_ok_and(|v| v == "1");
    if a.trace {
        // Read by the plan (runner::plan_text) and by qemu/run-vm.sh.
        std::env::set_var("TRACE", "1");
    }
    let kernel_src = a
        .kernel_src
        .or_else(|| std::env::var("KERNEL_SRC").ok().filter(|s| !s.is_empty()));
    let patches = a
        .patches
        .or_else(|| std::env::var("PATCHES").ok().filter(|s| !s.is_empty()));
    if archs.is_empty() || variants.is_empty() || scenarios.is_empty() {
        return usage("run: empty --archs/--variants/--scenarios");
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
    let out = a.out.unwrap_or_else(|| top.join("out/report"));
    let logs = a.logs.unwrap_or_else(|| top.join("out/logs"));
    let progress = if a.json_progress {
        Progress::json()
    } else {
        Progress::human()
    };
    let opts = RunOpts {
        top,
        archs,
        variants,
        scenarios,
        repeat: a.repeat,
        duration: a.duration,
        jobs: a.jobs,
        shard: a.shard,
        kernel_src,
        patches,
        out: out.clone(),
        logs,
        deadline: a.deadline,
        isolate: a.isolate || env_on("ISOLATE"),
        build_first: a.build_first || env_on("BUILD_FIRST"),
        force: a.force || env_on("FORCE"),
        pack: a.pack,
        params: a.params,
        env: a.env.as_deref().map(cli::list).unwrap_or_default(),
        progress: progress.clone(),
    };
    let runs = runner::run_matrix(&opts, &scen, &exp);
    let rep = Report::new(runs, a.shard.map(|(i, n)| format!("{i}/{n}")));
    progress.human_line(&format!("\n{}", ept_host::report::verdict_table(&rep)));
    finish(&rep, &out, &progress)
}

/// Write the outputs, say what was written, and emit the `end` event.
fn finish(rep: &Report, out: &Path, progress: &Progress) -> Result<i32, Fail> {
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
    let code = rep.exit_code();
    progress.emit(Event::End {
        runs: rep.runs.len(),
        meet: rep.runs.len() - bad,
        mismatch: bad,
        errors: err,
        exit_code: code,
        out: out.display().to_string(),
        files,
    });
    Ok(code)
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

fn cmd_judge(a: JudgeArgs) -> Result<i32, Fail> {
    let (scen, exp) = load_data(&a.data)?;
    let baseline = match &a.baseline {
        Some(b) => {
            let t = std::fs::read(b)
                .map_err(|e| Fail::Infra(format!("--baseline {}: {e}", b.display())))?;
            let log = ept_host::log::ConsoleLog::parse(&String::from_utf8_lossy(&t));
            Some(judge::selftest_failures(&log))
        }
        None => None,
    };
    let mut runs = Vec::new();
    let mut infra = false;
    for p in &a.logs {
        let hints = runner::LogHints {
            arch: a.arch.clone(),
            variant: a.variant.clone(),
            scenario: a.scenario.clone(),
            baseline: baseline.clone(),
            boot: None,
            only_begun: false,
        };
        match runner::runs_from_log(Path::new(p), &hints, &scen, &exp) {
            Ok(rs) => {
                for r in rs {
                    if !a.json {
                        print_run(&r, a.quiet);
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
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep.runs).unwrap_or_default()
        );
    }
    if let Some(o) = &a.out {
        write_outputs(&rep, o).map_err(Fail::Infra)?;
    }
    Ok(if infra { 3 } else { rep.exit_code() })
}

fn cmd_defaults(a: DefaultsArgs) -> Result<i32, Fail> {
    let (scen, _) = load_data(&a.data)?;
    let (set, key) = match a.words.as_slice() {
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

fn cmd_report(a: ReportArgs) -> Result<i32, Fail> {
    let input = a.input.or(a.file).unwrap_or_else(default_report);
    let rep = Report::load(&input).map_err(Fail::Infra)?;
    let out = a.out.unwrap_or_else(|| {
        input
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    });
    finish(&rep, &out, &Progress::human())
}

fn cmd_compare(a: CompareArgs) -> Result<i32, Fail> {
    let rest = [a.a, a.b];
    let files = rest
        .iter()
        .all(|f| f.ends_with(".json") || Path::new(f).is_file());
    let text = if files && a.report.is_none() {
        let ra = Report::load(Path::new(&rest[0])).map_err(Fail::Infra)?;
        let rb = Report::load(Path::new(&rest[1])).map_err(Fail::Infra)?;
        compare::render(
            &format!("compare A={} B={}", rest[0], rest[1]),
            &compare::reports(&ra, &rb),
        )
    } else {
        let path = a.report.unwrap_or_else(default_report);
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

fn cmd_merge(a: MergeArgs) -> Result<i32, Fail> {
    let parts = a
        .files
        .iter()
        .map(|f| Report::load(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail::Infra)?;
    let rep = Report::merge(parts);
    let out = a.out.unwrap_or_else(|| {
        find_top()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("out/report")
    });
    finish(&rep, &out, &Progress::human())
}

/// `ept judge ... | head`: a closed stdout ends the program quietly with
/// the shell's SIGPIPE status, as the usual filters do, instead of a panic
/// and a backtrace (Rust ignores SIGPIPE, so `print!` panics on EPIPE).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    // clap prints its own usage errors (exit 2) and --help/--version (exit
    // 0); bare `ept` prints the help and exits 2.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let r = match cli.cmd {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Judge(a) => cmd_judge(a),
        Cmd::Defaults(a) => cmd_defaults(a),
        Cmd::Report(a) => cmd_report(a),
        Cmd::Compare(a) => cmd_compare(a),
        Cmd::Merge(a) => cmd_merge(a),
        Cmd::Bisect(a) => bisect_cmd::run(a),
        Cmd::BisectStep { state } => Ok(ept_host::bisect::bisect_step(&state)),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ept", &mut std::io::stdout());
            Ok(0)
        }
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
