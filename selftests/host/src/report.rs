//! report.json (the record of a matrix run) and report.md.

use crate::data::Verdict;
use crate::judge::{Finding, Metrics};
use crate::stats::{fmt_num, Spread};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One VM boot (or one cell that could not run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub cell: String,
    pub arch: String,
    pub variant: String,
    pub scenario: String,
    pub repeat: u32,
    pub verdict: Verdict,
    pub expected: Vec<Verdict>,
    pub meets: bool,
    pub reason: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub waits: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub metrics: Metrics,
    /// build-info.env as run-vm.sh wrote it into the log header: BASE_PKG,
    /// BASE_DEB_VERSION, BASE_KERNELVERSION, KERNEL_RELEASE, VARIANT_PATCHES, LOCK_TYPE, ...
    #[serde(default)]
    pub build: BTreeMap<String, String>,
    pub log: Option<String>,
    /// The boot the run shared with the cell's other runs (`ept run`).
    #[serde(default)]
    pub boot: Option<String>,
    /// Host seconds of the run (run begin to run end), or of the boot.
    pub elapsed_s: f64,
    /// run-vm.sh's exit status (None when it did not run).
    pub vm_rc: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Report {
    pub tool: String,
    pub generated_unix: u64,
    #[serde(default)]
    pub shards: Vec<String>,
    pub runs: Vec<Run>,
}

impl Report {
    pub fn new(runs: Vec<Run>, shard: Option<String>) -> Report {
        Report {
            tool: format!("ept {}", env!("CARGO_PKG_VERSION")),
            generated_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            shards: shard.into_iter().collect(),
            runs,
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn sort(&mut self) {
        self.runs.sort_by(|a, b| {
            (&a.arch, &a.variant, &a.scenario, a.repeat).cmp(&(
                &b.arch,
                &b.variant,
                &b.scenario,
                b.repeat,
            ))
        });
    }

    /// Combine reports: later reports replace runs of the same cell. When
    /// the runs come from more than one base kernel (e.g. 7.3 and 6.12),
    /// each variant and cell is qualified with its base (`rwlock@6.12`), so
    /// that the two trees keep their own rows instead of replacing each
    /// other.
    pub fn merge(parts: Vec<Report>) -> Report {
        let mut shards = Vec::new();
        let mut all = Vec::new();
        for p in parts {
            shards.extend(p.shards);
            all.extend(p.runs);
        }
        qualify_bases(&mut all);
        let mut by: BTreeMap<String, Run> = BTreeMap::new();
        for r in all {
            by.insert(r.cell.clone(), r);
        }
        let mut rep = Report::new(by.into_values().collect(), None);
        shards.sort();
        shards.dedup();
        rep.shards = shards;
        rep.sort();
        rep
    }

    pub fn all_meet(&self) -> bool {
        self.runs.iter().all(|r| r.meets)
    }

    pub fn any_error(&self) -> bool {
        self.runs.iter().any(|r| r.verdict == Verdict::Error)
    }

    /// The exit code for this report: 0 all cells meet, 3 some ERROR, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.any_error() {
            3
        } else if self.all_meet() {
            0
        } else {
            1
        }
    }
}

/// A run's base kernel series ("6.12" for 6.12.117), from its build info.
pub fn base_series(r: &Run) -> Option<String> {
    let v = r.build.get("BASE_KERNELVERSION")?;
    let mut it = v.split('.');
    Some(format!("{}.{}", it.next()?, it.next()?))
}

/// Qualifies variants and cells with their base series when the runs span
/// more than one base; runs without build info, or already qualified, are
/// left as they are.
pub fn qualify_bases(runs: &mut [Run]) {
    let bases: BTreeSet<String> = runs.iter().filter_map(base_series).collect();
    if bases.len() < 2 {
        return;
    }
    for r in runs.iter_mut() {
        if let (Some(b), false) = (base_series(r), r.variant.contains('@')) {
            r.variant = format!("{}@{b}", r.variant);
            r.cell = format!("{}@{b}", r.cell);
        }
    }
}

/// The short label of a group of runs' verdicts: "PASS", "HANG x2 STALL x1".
pub fn verdict_label(runs: &[&Run]) -> String {
    let mut count: BTreeMap<Verdict, usize> = BTreeMap::new();
    for r in runs {
        *count.entry(r.verdict).or_default() += 1;
    }
    let mut v: Vec<_> = count.into_iter().collect();
    v.sort_by_key(|(v, n)| (std::cmp::Reverse(*n), std::cmp::Reverse(v.rank())));
    if v.len() == 1 && runs.len() > 1 {
        return format!("{} x{}", v[0].0, v[0].1);
    }
    v.iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{k} x{n}")
            } else {
                k.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn uniq<'a>(it: impl Iterator<Item = &'a String>) -> Vec<String> {
    let s: BTreeSet<&String> = it.collect();
    s.into_iter().cloned().collect()
}

pub fn arches(rep: &Report) -> Vec<String> {
    uniq(rep.runs.iter().map(|r| &r.arch))
}
pub fn variants(rep: &Report) -> Vec<String> {
    uniq(rep.runs.iter().map(|r| &r.variant))
}
pub fn scenarios(rep: &Report) -> Vec<String> {
    uniq(rep.runs.iter().map(|r| &r.scenario))
}

pub fn select<'a>(
    rep: &'a Report,
    arch: &str,
    variant: &str,
    scenario: Option<&str>,
) -> Vec<&'a Run> {
    rep.runs
        .iter()
        .filter(|r| {
            r.arch == arch && r.variant == variant && scenario.is_none_or(|s| r.scenario == s)
        })
        .collect()
}

/// Throughput per thread count over runs: threads -> spread of events/ms.
pub fn throughput_by_threads(runs: &[&Run]) -> BTreeMap<u64, Spread> {
    let mut m: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for p in &r.metrics.throughput {
            m.entry(p.threads as u64).or_default().push(p.events_per_ms);
        }
    }
    m.into_iter().map(|(k, v)| (k, Spread::of(&v))).collect()
}

/// A metric's spread over runs.
pub fn metric_spread(runs: &[&Run], key: &str) -> Option<Spread> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.metrics.values.get(key).copied())
        .collect();
    if v.is_empty() {
        None
    } else {
        Some(Spread::of(&v))
    }
}

/// report.md: the verdict matrix, then latency, throughput and stalls.
/// The verdict matrix (arch x variant rows, one column per scenario) as a
/// Markdown table: `report.md` and the end of `ept run` show it.
pub fn verdict_table(rep: &Report) -> String {
    let mut s = String::new();
    let scen = scenarios(rep);
    let _ = write!(s, "| arch | variant |");
    for sc in &scen {
        let _ = write!(s, " {sc} |");
    }
    let _ = write!(s, "\n|---|---|");
    for _ in &scen {
        s.push_str("---|");
    }
    s.push('\n');
    for a in arches(rep) {
        for v in variants(rep) {
            if select(rep, &a, &v, None).is_empty() {
                continue;
            }
            let _ = write!(s, "| {a} | {v} |");
            for sc in &scen {
                let runs = select(rep, &a, &v, Some(sc));
                if runs.is_empty() {
                    s.push_str(" - |");
                    continue;
                }
                let mut cell = verdict_label(&runs);
                if runs.iter().any(|r| !r.meets) {
                    let exp: Vec<String> = runs[0].expected.iter().map(|v| v.to_string()).collect();
                    cell = format!("**{cell}** ! [{}]", exp.join("/"));
                }
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
        }
    }
    s
}

pub fn render_md(rep: &Report, svgs: &[String]) -> String {
    let mut s = String::new();
    let n_ok = rep.runs.iter().filter(|r| r.meets).count();
    let _ = writeln!(s, "# epoll-torture report\n");
    let _ = writeln!(
        s,
        "{} runs, {} meet their expected verdict, {} do not{}.\n",
        rep.runs.len(),
        n_ok,
        rep.runs.len() - n_ok,
        if rep.shards.is_empty() {
            String::new()
        } else {
            format!(" (shards: {})", rep.shards.join(", "))
        }
    );
    // Kernels.
    let mut kernels: BTreeMap<(String, String), &Run> = BTreeMap::new();
    for r in &rep.runs {
        if !r.build.is_empty() {
            kernels
                .entry((r.arch.clone(), r.variant.clone()))
                .or_insert(r);
        }
    }
    if !kernels.is_empty() {
        let _ = writeln!(s, "## Kernels\n\n| arch | variant | base | release | ep->lock | patches |\n|---|---|---|---|---|---|");
        for ((a, v), r) in &kernels {
            let b = &r.build;
            let g = |k: &str| b.get(k).cloned().unwrap_or_default();
            let _ = writeln!(
                s,
                "| {a} | {v} | {} {} | {} | {} | {} |",
                g("BASE_PKG"),
                g("BASE_DEB_VERSION"),
                g("KERNEL_RELEASE"),
                g("LOCK_TYPE"),
                if g("VARIANT_PATCHES").trim().is_empty() {
                    "(none)".into()
                } else {
                    g("VARIANT_PATCHES").trim().to_string()
                }
            );
        }
        s.push('\n');
    }
    // Verdict matrix.
    let scen = scenarios(rep);
    let _ = writeln!(s, "## Verdicts\n\nCell = verdict(s) over repeats; `!` = does not meet the expectation (expected in brackets).\n");
    s.push_str(&verdict_table(rep));
    s.push('\n');

    // Findings about a variant's design (scenario data marks them), which
    // pass the run but must not drown in the per-run notes.
    let findings: Vec<String> = rep
        .runs
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .filter(|n| n.starts_with("FINDING:"))
                .map(move |n| format!("- {}: {}", r.cell, n.trim_start_matches("FINDING: ")))
        })
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(s, "## Findings\n\n{}\n", findings.join("\n"));
    }

    // Latency.
    let lat: Vec<&Run> = rep
        .runs
        .iter()
        .filter(|r| r.metrics.values.contains_key("lat_max_us"))
        .collect();
    if !lat.is_empty() {
        let _ = writeln!(s, "## Latency (us; median over repeats, [min..max])\n\n| arch | scenario | variant | runs | p50 | p99 | max |\n|---|---|---|---|---|---|---|");
        for a in arches(rep) {
            for sc in &scen {
                for v in variants(rep) {
                    let runs: Vec<&Run> = select(rep, &a, &v, Some(sc))
                        .into_iter()
                        .filter(|r| r.metrics.values.contains_key("lat_max_us"))
                        .collect();
                    if runs.is_empty() {
                        continue;
                    }
                    let f = |k| {
                        metric_spread(&runs, k)
                            .map(|x| x.show())
                            .unwrap_or_else(|| "-".into())
                    };
                    let _ = writeln!(
                        s,
                        "| {a} | {sc} | {v} | {} | {} | {} | {} |",
                        runs.len(),
                        f("lat_p50_us"),
                        f("lat_p99_us"),
                        f("lat_max_us")
                    );
                }
            }
        }
        s.push('\n');
    }

    // Throughput, side by side like the seed's table.
    for a in arches(rep) {
        let vs: Vec<(String, BTreeMap<u64, Spread>)> = variants(rep)
            .into_iter()
            .map(|v| {
                let runs = select(rep, &a, &v, None);
                (v, throughput_by_threads(&runs))
            })
            .filter(|(_, m)| !m.is_empty())
            .collect();
        if vs.is_empty() {
            continue;
        }
        let threads: BTreeSet<u64> = vs.iter().flat_map(|(_, m)| m.keys().copied()).collect();
        let _ = writeln!(s, "## Throughput on {a} (events/ms, mean over repeats)\n");
        let _ = write!(s, "| threads |");
        for (v, _) in &vs {
            let _ = write!(s, " {v} |");
        }
        for (v, _) in vs.iter().skip(1) {
            let _ = write!(s, " {v} vs {} |", vs[0].0);
        }
        let _ = write!(s, "\n|---|");
        for _ in 0..(vs.len() * 2 - 1) {
            s.push_str("---|");
        }
        s.push('\n');
        for t in &threads {
            let _ = write!(s, "| {t} |");
            for (_, m) in &vs {
                let c = m
                    .get(t)
                    .map(|x| x.show_mean())
                    .unwrap_or_else(|| "-".into());
                let _ = write!(s, " {c} |");
            }
            for (_, m) in vs.iter().skip(1) {
                let c = match (vs[0].1.get(t), m.get(t)) {
                    (Some(b), Some(x)) if b.mean > 0.0 => {
                        format!("{:+.0}%", (x.mean / b.mean - 1.0) * 100.0)
                    }
                    _ => "-".into(),
                };
                let _ = write!(s, " {c} |");
            }
            s.push('\n');
        }
        s.push('\n');
    }

    // Stalls.
    let st: Vec<&Run> = rep
        .runs
        .iter()
        .filter(|r| r.metrics.values.contains_key("stalls"))
        .collect();
    if !st.is_empty() {
        let _ = writeln!(s, "## Workload stalls (gaps in heartbeat progress)\n\n| arch | variant | scenario | runs | stalls (sum) | longest (s) | still stalled at the end (s) |\n|---|---|---|---|---|---|---|");
        for a in arches(rep) {
            for v in variants(rep) {
                for sc in &scen {
                    let runs: Vec<&Run> = select(rep, &a, &v, Some(sc))
                        .into_iter()
                        .filter(|r| r.metrics.values.contains_key("stalls"))
                        .collect();
                    if runs.is_empty() {
                        continue;
                    }
                    let sum: f64 = runs.iter().map(|r| r.metrics.values["stalls"]).sum();
                    let mx = runs
                        .iter()
                        .filter_map(|r| r.metrics.values.get("stall_max_s"))
                        .fold(0.0f64, |a, b| a.max(*b));
                    let open = runs
                        .iter()
                        .filter_map(|r| r.metrics.values.get("stall_open_s"))
                        .fold(0.0f64, |a, b| a.max(*b));
                    let _ = writeln!(
                        s,
                        "| {a} | {v} | {sc} | {} | {} | {} | {} |",
                        runs.len(),
                        sum,
                        fmt_num(mx),
                        if open > 0.0 {
                            fmt_num(open)
                        } else {
                            "-".into()
                        }
                    );
                }
            }
        }
        s.push('\n');
    }

    // Epoll selftests timing.
    let sel: Vec<&Run> = rep
        .runs
        .iter()
        .filter(|r| r.metrics.selftests.iter().any(|t| t.seconds.is_some()))
        .collect();
    if !sel.is_empty() {
        let _ = writeln!(s, "## Kernel epoll selftests (seconds per test, or per binary in older logs)\n\n| arch | variant | repeat | test | rc | seconds |\n|---|---|---|---|---|---|");
        for r in sel {
            for t in &r.metrics.selftests {
                if let Some(sec) = t.seconds {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} |",
                        r.arch,
                        r.variant,
                        r.repeat,
                        t.name,
                        t.detail,
                        fmt_num(sec)
                    );
                }
            }
        }
        s.push('\n');
    }

    s.push_str(&host_load_table(rep));

    // TRACE=1 (docs/trace.md): every run's root cause, with its files.
    let traced: Vec<(&Run, &String)> = rep
        .runs
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .filter(|n| n.starts_with(crate::ftrace::NOTE))
                .map(move |n| (r, n))
        })
        .collect();
    if !traced.is_empty() {
        let _ = writeln!(s, "## Traces\n");
        for (r, n) in traced {
            let _ = writeln!(
                s,
                "- {} ({}): {} [timeline]({c}.timeline.svg), [trace]({c}.trace.txt)",
                r.cell,
                r.verdict,
                n,
                c = r.cell
            );
        }
        s.push('\n');
    }

    if !svgs.is_empty() {
        let _ = writeln!(s, "## Plots\n");
        for p in svgs {
            let _ = writeln!(s, "![{p}]({p})\n");
        }
    }

    // Per run details for every run that is not a plain expected PASS.
    let _ = writeln!(s, "## Runs\n");
    for r in &rep.runs {
        let exp: Vec<String> = r.expected.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(
            s,
            "### {} — {}{} ({:.0} s)\n",
            r.cell,
            r.verdict,
            if r.meets {
                String::new()
            } else {
                format!(" (expected {})", exp.join("/"))
            },
            r.elapsed_s
        );
        let _ = writeln!(s, "{}\n", r.reason);
        if let Some(l) = &r.log {
            let _ = writeln!(s, "log: `{l}`\n");
        }
        if r.verdict != Verdict::Pass || !r.meets {
            let mut quoted = String::new();
            for f in r
                .findings
                .iter()
                .filter(|f| f.verdict != Verdict::Pass)
                .take(6)
            {
                let _ = writeln!(quoted, "{f}");
                for l in &f.lines {
                    let _ = writeln!(quoted, "    {l}");
                }
            }
            if !quoted.is_empty() {
                let _ = writeln!(s, "```text\n{quoted}```\n");
            }
        }
        if !r.waits.is_empty() {
            let _ = writeln!(s, "Who waits on whom:\n");
            for w in &r.waits {
                let _ = writeln!(s, "- {w}");
            }
            s.push('\n');
        }
        for n in &r.notes {
            let _ = writeln!(s, "- note: {n}");
        }
    }
    s
}

/// The per-run table of times and host load: which boot a run shared, its
/// own time, and the host's load over that boot. The load column is the
/// 1-minute load average at the boot's start and end; QEMU CPU/wall is
/// QEMU's CPU time over the boot's wall time (2 = both vCPUs busy all
/// along); vCPU starved % is the run-queue wait summed over QEMU's threads
/// over (wall time x 2 vCPUs): above the judge's limit
/// (`rules::VCPU_STARVED_LIMIT_PCT`) the run is flagged, since its timings
/// then say more about the host than about the kernel. Runs without a boot
/// (NOT_APPLICABLE, UNAVAILABLE) are left out.
pub fn host_load_table(rep: &Report) -> String {
    let limit = crate::rules::VCPU_STARVED_LIMIT_PCT;
    let runs: Vec<&Run> = rep.runs.iter().filter(|r| r.log.is_some()).collect();
    if runs.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "## Runs, boots and host load\n\n`load1` is the host's 1-minute load average at the boot's start and end; \
         `QEMU CPU/wall` is QEMU's CPU time over the boot's wall time (2 = both vCPUs busy all along); \
         `vCPU starved` is the run-queue wait of QEMU's threads over wall time x 2 vCPUs. A run whose vCPUs \
         were starved beyond {limit:.0} % is flagged: its timings say more about the host than about the kernel.\n\n\
         | run | boot | run s | verdict | load1 start → end | QEMU CPU/wall | vCPU starved | |\n|---|---|---|---|---|---|---|---|\n"
    );
    let num = |r: &Run, k: &str| r.metrics.values.get(k).copied();
    for r in runs {
        let load = match (num(r, "host_load1_start"), num(r, "host_load1_end")) {
            (Some(a), Some(b)) => format!("{} → {}", fmt_num(a), fmt_num(b)),
            (Some(a), None) => format!("{} → ?", fmt_num(a)),
            _ => "-".into(),
        };
        let cpu = num(r, "qemu_cpu_per_wall").map_or("-".into(), fmt_num);
        let (starved, flag) = match num(r, "vcpu_starved_pct") {
            Some(p) => (
                format!("{} %", fmt_num(p)),
                if p > limit { "**starved**" } else { "" },
            ),
            None => ("-".into(), ""),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {load} | {cpu} | {starved} | {flag} |",
            r.cell,
            r.boot.as_deref().unwrap_or("-"),
            r.elapsed_s,
            r.verdict
        );
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cell: &str, base: &str, verdict: Verdict) -> Run {
        Run {
            cell: cell.into(),
            arch: "x86_64".into(),
            variant: "rwlock".into(),
            scenario: "cfs-stall".into(),
            repeat: 1,
            verdict,
            expected: vec![verdict],
            meets: true,
            reason: String::new(),
            findings: vec![],
            waits: vec![],
            notes: vec![],
            metrics: Metrics::default(),
            build: [("BASE_KERNELVERSION".to_string(), base.to_string())].into(),
            log: None,
            boot: None,
            elapsed_s: 1.0,
            vm_rc: Some(0),
        }
    }

    #[test]
    fn host_load_column_flags_starved_runs() {
        let mut a = run("x86_64-rwlock-stall-r1", "7.3.4", Verdict::Hang);
        a.log = Some("l".into());
        a.boot = Some("x86_64-rwlock-r1".into());
        for (k, v) in [
            ("host_load1_start", 0.5),
            ("host_load1_end", 2.25),
            ("qemu_cpu_per_wall", 1.47),
            ("vcpu_starved_pct", 24.0),
        ] {
            a.metrics.values.insert(k.into(), v);
        }
        let mut b = a.clone();
        b.cell = "x86_64-rwlock-smoke-r1".into();
        b.metrics.values.insert("vcpu_starved_pct".into(), 3.5);
        let mut na = run(
            "x86_64-spinlock-cfs-stall-r1",
            "7.3.4",
            Verdict::NotApplicable,
        );
        na.log = None;
        let rep = Report::new(vec![a, b, na], None);
        let t = host_load_table(&rep);
        assert!(t.contains("| x86_64-rwlock-stall-r1 | x86_64-rwlock-r1 | 1 | HANG | 0.500 → 2.25 | 1.47 | 24 % | **starved** |"), "{t}");
        assert!(t.contains("| x86_64-rwlock-smoke-r1 | x86_64-rwlock-r1 | 1 | HANG | 0.500 → 2.25 | 1.47 | 3.50 % |  |"), "{t}");
        assert!(!t.contains("cfs-stall"), "runs without a boot have no load");
        assert!(render_md(&rep, &[]).contains("## Runs, boots and host load"));
        assert!(host_load_table(&Report::new(vec![], None)).is_empty());
    }

    #[test]
    fn merge_keeps_two_bases_apart_and_replaces_within_one() {
        let cell = "x86_64-rwlock-cfs-stall-r1";
        let a = Report::new(vec![run(cell, "7.3.4", Verdict::Pass)], None);
        let b = Report::new(vec![run(cell, "6.12.117", Verdict::Hang)], None);
        let m = Report::merge(vec![a.clone(), b]);
        let v: Vec<(&str, Verdict)> = m
            .runs
            .iter()
            .map(|r| (r.variant.as_str(), r.verdict))
            .collect();
        assert_eq!(
            v,
            [
                ("rwlock@6.12", Verdict::Hang),
                ("rwlock@7.3", Verdict::Pass)
            ]
        );
        let again = Report::new(vec![run(cell, "7.3.4", Verdict::Stall)], None);
        let m = Report::merge(vec![a, again]);
        assert_eq!(m.runs.len(), 1);
        assert_eq!(
            (m.runs[0].variant.as_str(), m.runs[0].verdict),
            ("rwlock", Verdict::Stall)
        );
    }
}
