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
    /// Boot one VM per (arch, variant, scenario, repeat), judge, report
    Run(RunArgs),
    /// Judge console logs: verdict + evidence
    Judge(JudgeArgs),
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The data files, for `run` and `judge`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Instead of the built-in selftests/host/expectations.json
    #[arg(long, value_name = "FILE")]
    pub expectations: Option<PathBuf>,
    /// Instead of the built-in selftests/host/scenarios.json
    #[arg(long = "scenarios-file", value_name = "FILE")]
    pub scenarios_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Architectures (comma or blank separated)
    #[arg(long, value_name = "LIST", default_value = "x86_64 riscv64")]
    pub archs: String,
    /// Kernel variants (aliases patched=spinlock,
    /// unpatched=rwlock)
    #[arg(
        long,
        value_name = "LIST",
        default_value = "spinlock rwlock lockless",
        verbatim_doc_comment
    )]
    pub variants: String,
    /// Scenarios [default: the `default` list of scenarios.json:
    /// smoke inversion stall throughput epoll-selftests cfs-stall;
    /// also soak, hung-task, cycles, debug-load]
    #[arg(long, value_name = "LIST", verbatim_doc_comment)]
    pub scenarios: Option<String>,
    /// Boots per cell
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
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
    /// Override every scenario's host deadline (seconds)
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
            (r.archs.as_str(), r.variants.as_str()),
            ("x86_64 riscv64", "spinlock rwlock lockless")
        );
        assert_eq!((r.repeat, r.jobs, r.shard), (1, 1, None));
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
        assert_eq!(r.archs, "x86_64");
        assert_eq!(list(&r.variants), ["patched", "unpatched"]);
        assert_eq!(r.shard, Some((2, 3)));
        assert_eq!(r.repeat, 5, "the last of a repeated option wins");
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
