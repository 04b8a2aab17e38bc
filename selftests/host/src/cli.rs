//! `ept`'s command line (clap derive). The semantics of every flag are
//! those of the hand-rolled parser it replaced: `--opt value` and
//! `--opt=value`, options before or after the operands, the last of a
//! repeated option wins, and lists (`--archs`, `--variants`,
//! `--scenarios`) are comma or blank separated.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Verdicts (highest wins): CRASH > HANG > STALL > LOST_WAKEUP > FALSE_NEGATIVE >
INVERSION > ERROR > FAIL > PASS > NOT_APPLICABLE > UNAVAILABLE.
UNAVAILABLE = the variant has no patches for this base; NOT_APPLICABLE = the
scenario's mechanism is absent from this kernel (neither is a failure).

Outputs (run, judge --out, report, merge): report.json, report.md, SVG plots,
junit.xml, kcidb.json.

Exit status: 0 every run meets its expected verdict, 1 some do not,
2 usage error, 3 infrastructure error (an ERROR run, a build failure, an
unreadable file).";

#[derive(Debug, Parser)]
#[command(
    name = "ept",
    version,
    about = "epoll-torture host tool: run the VM matrix, judge console logs, report",
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Build, boot and judge the matrix (a cell's runs share boots), report
    Run(RunArgs),
    /// Judge console logs: a verdict + evidence per run
    Judge(JudgeArgs),
    /// Print a default list of scenarios.json: `ept defaults [SET] KEY`
    ///
    /// KEY: archs, variants, scenarios or env; SET: run (the default),
    /// quick, check, check-cross, check-6.12, check-debug, evidence.
    /// `ept defaults sets` lists the sets.
    #[command(verbatim_doc_comment)]
    Defaults(DefaultsArgs),
    /// Render report.md, SVG plots, junit.xml and kcidb.json from report.json
    Report(ReportArgs),
    /// Two variants of one report, or the same cells in two reports
    ///
    /// `ept compare [--report FILE] VAR_A VAR_B`: two variants of one report.
    /// `ept compare A.json B.json`: the same cells in two reports.
    #[command(verbatim_doc_comment)]
    Compare(CompareArgs),
    /// Combine shard reports and re-render
    Merge(MergeArgs),
    /// Find the patch of a series, or the commit of a git range, that flips
    /// a cell's verdict (repeats per step with a sequential test)
    ///
    /// Series: `ept bisect --arch A --scenario S --series DIR [--from K]`
    /// (or --patches LIST / $PATCHES): the first prefix 1..k whose verdict
    /// differs from prefix `--from` (default 0, the base). Git:
    /// `ept bisect --arch A --scenario S --kernel-src REPO --good G --bad B`
    /// runs `git bisect run` in its own clone under the cache.
    #[command(verbatim_doc_comment)]
    Bisect(BisectArgs),
    /// (internal) one `git bisect run` step of `ept bisect`
    #[command(name = "bisect-step", hide = true)]
    BisectStep {
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The data files, for `run` and `judge`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Expectations instead of those in scenarios.json (a scenarios.json,
    /// or an old expectations.json: ordered rules, first match wins)
    #[arg(long, value_name = "FILE")]
    pub expectations: Option<PathBuf>,
    /// Instead of the built-in selftests/host/scenarios.json
    #[arg(long = "scenarios-file", value_name = "FILE")]
    pub scenarios_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Architectures (comma or blank separated)
    /// [default: `ept defaults archs`]
    #[arg(long, value_name = "LIST", verbatim_doc_comment)]
    pub archs: Option<String>,
    /// Kernel variants (aliases patched=spinlock,
    /// unpatched=rwlock) [default: `ept defaults variants`]
    #[arg(long, value_name = "LIST", verbatim_doc_comment)]
    pub variants: Option<String>,
    /// Scenarios [default: `ept defaults scenarios`;
    /// scenarios.json knows more: kunit, soak, hung-task, cycles, debug-load]
    #[arg(long, value_name = "LIST", verbatim_doc_comment)]
    pub scenarios: Option<String>,
    /// Runs per scenario [default: the scenario's `repeats`, 1]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// One boot per run [default: a cell's shareable runs of one
    /// repeat index share a boot, hang-prone last; also ISOLATE=1]
    #[arg(long, verbatim_doc_comment)]
    pub isolate: bool,
    /// Trace the worst call and hangs: timeline SVG, root cause,
    /// <cell>.trace.txt (also TRACE=1; docs/trace.md)
    #[arg(long, verbatim_doc_comment)]
    pub trace: bool,
    /// Build every kernel before the first boot, so that no boot shares
    /// the host with a build [default: boot a cell while the next builds;
    /// also BUILD_FIRST=1]
    #[arg(long, verbatim_doc_comment)]
    pub build_first: bool,
    /// Runs of N consecutive repeat indices share a boot
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pack: u32,
    /// Also run what the kernel's FEATURES say cannot apply
    /// (NOT_APPLICABLE otherwise; also FORCE=1)
    #[arg(long, verbatim_doc_comment)]
    pub force: bool,
    /// Extra module parameters for every module run ($EPT_PARAMS)
    #[arg(long, value_name = "K=V ...")]
    pub params: Option<String>,
    /// Variables exported in every plan (LINGER=12, PIN=none, ...)
    #[arg(long, value_name = "K=V ...", value_parser = env_list)]
    pub env: Option<String>,
    /// DURATION=S in the guest (soak, cfs-stall, hung-task);
    /// added to the deadline of scenarios that use it
    #[arg(long, value_name = "S", verbatim_doc_comment)]
    pub duration: Option<u64>,
    /// VMs in parallel (the guests have 2 vCPUs each)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// Run only the i-th of n contiguous slices of the cell list
    #[arg(long, value_name = "i/n", value_parser = ept_host::runner::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Passed to qemu/*.sh as KERNEL_SRC [default: $KERNEL_SRC]
    #[arg(long = "kernel-src", value_name = "DIR")]
    pub kernel_src: Option<String>,
    /// Passed to qemu/*.sh as PATCHES (comma-separated files)
    /// [default: $PATCHES]
    #[arg(long, value_name = "LIST", verbatim_doc_comment)]
    pub patches: Option<String>,
    /// Report directory [default: out/report]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Console logs [default: out/logs]
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// Override every run's host deadline (seconds)
    #[arg(long, value_name = "S")]
    pub deadline: Option<u64>,
    #[arg(
        long = "json-progress",
        help = "One JSON object per line on stdout (see docs/ci.md);\nthe human lines go to stderr"
    )]
    pub json_progress: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct DefaultsArgs {
    /// [SET] KEY
    #[arg(value_name = "SET KEY", required = true, num_args = 1..=2)]
    pub words: Vec<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--env "A=1 B=2"`: NAME=value words (split with `list`).
fn env_list(s: &str) -> Result<String, String> {
    if let Some(bad) = list(s).iter().find(|kv| {
        kv.split_once('=').is_none_or(|(k, _)| {
            k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }) {
        return Err(format!("{bad}: want NAME=value"));
    }
    Ok(s.to_string())
}

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Console logs
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<String>,
    /// Default: from the log's plan=/steps= header or its file name
    #[arg(long, value_name = "S", verbatim_doc_comment)]
    pub scenario: Option<String>,
    /// Default: from the log header (ARCH=)
    #[arg(long, value_name = "A")]
    pub arch: Option<String>,
    /// Default: from the log header (VARIANT=)
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,
    /// Print the runs as JSON
    #[arg(long)]
    pub json: bool,
    /// Also write a report (json, md, svg, junit.xml, kcidb.json)
    /// of the judged logs
    #[arg(long, value_name = "DIR", verbatim_doc_comment)]
    pub out: Option<PathBuf>,
    /// One line per log
    #[arg(short, long)]
    pub quiet: bool,
    /// The unmodified kernel's (spinlock) selftest log of the same
    /// arch and base: a known emulation failure excuses a test only
    /// if the baseline failed it too
    #[arg(long, value_name = "LOG", verbatim_doc_comment)]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report to render [default: out/report/report.json]
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The same as --in
    #[arg(value_name = "REPORT.json")]
    pub file: Option<PathBuf>,
    /// Output directory [default: the report's directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A variant of --report, or a report.json
    #[arg(value_name = "A")]
    pub a: String,
    /// A variant of --report, or a report.json
    #[arg(value_name = "B")]
    pub b: String,
    /// The report whose variants A and B are compared
    /// [default: out/report/report.json]
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard reports
    #[arg(value_name = "REPORT.json", required = true)]
    pub files: Vec<PathBuf>,
    /// Output directory [default: out/report]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The cell's architecture
    #[arg(long, value_name = "A", default_value = "x86_64")]
    pub arch: String,
    /// The cell's scenario (inversion, wakeup, ...)
    #[arg(long, value_name = "S")]
    pub scenario: String,
    /// Series mode: patch files in order [default: $PATCHES]
    #[arg(long, value_name = "LIST")]
    pub patches: Option<String>,
    /// Series mode: every *.patch of DIR, in name order
    #[arg(long, value_name = "DIR", conflicts_with = "patches")]
    pub series: Option<PathBuf>,
    /// Series mode: the old end, prefix K (patches 1..K) [default: 0]
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub from: usize,
    /// Series mode: the new end [default: the whole series]
    #[arg(long, value_name = "K")]
    pub to: Option<usize>,
    /// A kernel tree: the git repository (git mode) or the base of the
    /// series [default: $KERNEL_SRC]; never written to
    #[arg(long = "kernel-src", value_name = "DIR", verbatim_doc_comment)]
    pub kernel_src: Option<String>,
    /// Git mode: the old end's revision [default: $GOOD]
    #[arg(long, value_name = "REV")]
    pub good: Option<String>,
    /// Git mode: the new end's revision [default: $BAD]
    #[arg(long, value_name = "REV")]
    pub bad: Option<String>,
    /// P(deciding "detected" on a clean kernel) per step
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub alpha: f64,
    /// P(deciding "clean" on a kernel with the bug) per step
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub beta: f64,
    /// Assumed per-run detection rate on a kernel with the bug
    #[arg(long = "p-detect", value_name = "P", default_value_t = 0.8)]
    pub p_detect: f64,
    /// Assumed per-run false-detection rate on a clean kernel
    #[arg(long = "p-false", value_name = "P", default_value_t = 0.05)]
    pub p_false: f64,
    /// Runs per boot
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub batch: u32,
    /// Runs per step at most (then the step is skipped)
    #[arg(long = "max-runs", value_name = "N", default_value_t = 12)]
    pub max_runs: u32,
    /// Override every run's host deadline (seconds)
    #[arg(long, value_name = "S")]
    pub deadline: Option<u64>,
    /// Output directory [default: out/bisect/ARCH-SCENARIO[-git]]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON on stdout (else the markdown report)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// A comma or blank separated list.
pub fn list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(|x| x.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ept").chain(args.iter().copied()))
    }

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lists() {
        assert_eq!(list("a,b c\t d,,"), ["a", "b", "c", "d"]);
        assert!(list(" , ").is_empty());
    }

    #[test]
    fn run_defaults_and_both_value_forms() {
        let Cmd::Run(r) = parse(&["run"]).unwrap().cmd else {
            panic!()
        };
        assert_eq!(
            (r.archs, r.variants),
            (None, None),
            "defaults from the data"
        );
        assert_eq!((r.repeat, r.jobs, r.shard, r.pack), (None, 1, None, 1));
        assert!(!r.isolate && !r.force && r.env.is_none() && r.params.is_none());
        assert!(!r.json_progress && r.scenarios.is_none());
        let Cmd::Run(r) = parse(&[
            "run",
            "--archs=x86_64",
            "--variants",
            "patched,unpatched",
            "--shard",
            "2/3",
            "--repeat=4",
            "--repeat",
            "5",
            "--json-progress",
            "--expectations=e.json",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert_eq!(r.archs.as_deref(), Some("x86_64"));
        assert_eq!(
            list(r.variants.as_deref().unwrap()),
            ["patched", "unpatched"]
        );
        assert_eq!(r.shard, Some((2, 3)));
        assert_eq!(r.repeat, Some(5), "the last of a repeated option wins");
        assert!(r.json_progress);
        assert_eq!(r.data.expectations, Some(PathBuf::from("e.json")));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["run", "--repeat", "0"][..],
            &["run", "--jobs=0"],
            &["run", "--repeat", "x"],
            &["run", "--shard", "4/3"],
            &["run", "--pack", "0"],
            &["run", "--env", "LINGER"],
            &["run", "--env", "A-B=1"],
            &["defaults"],
            &["defaults", "a", "b", "c"],
            &["run", "--bogus"],
            &["run", "extra"],
            &["judge"],
            &["judge", "--json-progress", "a.log"],
            &["compare", "a"],
            &["merge"],
            &["report", "--expectations", "x"],
            &["completions", "tcsh"],
            &["frobnicate"],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["run", "-h"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["-V"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn run_boot_options() {
        let Cmd::Run(r) = parse(&[
            "run",
            "--isolate",
            "--force",
            "--pack=4",
            "--params",
            "a=1 b=2",
            "--env",
            "LINGER=12,PIN=none",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert!(r.isolate && r.force);
        assert_eq!(r.pack, 4);
        assert_eq!(r.params.as_deref(), Some("a=1 b=2"));
        assert_eq!(list(&r.env.unwrap()), ["LINGER=12", "PIN=none"]);
        let Cmd::Defaults(d) = parse(&["defaults", "check", "archs"]).unwrap().cmd else {
            panic!()
        };
        assert_eq!(d.words, ["check", "archs"]);
    }

    #[test]
    fn bisect_options() {
        let Cmd::Bisect(b) = parse(&[
            "bisect",
            "--scenario=wakeup",
            "--series",
            "qemu/series/x",
            "--from=1",
            "--batch",
            "4",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert_eq!((b.arch.as_str(), b.scenario.as_str()), ("x86_64", "wakeup"));
        assert_eq!((b.from, b.to, b.batch, b.max_runs), (1, None, 4, 12));
        assert_eq!(
            (b.alpha, b.beta, b.p_detect, b.p_false),
            (0.01, 0.01, 0.8, 0.05)
        );
        assert!(parse(&["bisect"]).is_err(), "--scenario is required");
        assert!(parse(&["bisect", "--scenario=x", "--series=a", "--patches=b"]).is_err());
        let Cmd::BisectStep { state } = parse(&["bisect-step", "--state", "s.json"]).unwrap().cmd
        else {
            panic!()
        };
        assert_eq!(state, PathBuf::from("s.json"));
    }

    #[test]
    fn judge_operands_and_options_mix() {
        let Cmd::Judge(j) = parse(&["judge", "a.log", "-q", "b.log", "--scenario=smoke"])
            .unwrap()
            .cmd
        else {
            panic!()
        };
        assert_eq!(j.logs, ["a.log", "b.log"]);
        assert!(j.quiet && !j.json);
        assert_eq!(j.scenario.as_deref(), Some("smoke"));
    }
}
