//! `ept bisect`: which patch of a series, or which commit of a git range,
//! flips a cell's verdict.
//!
//! A *step* measures one kernel (a prefix of the series, or a revision):
//! build it, boot it once per batch with `batch` runs of the scenario (like
//! `ept run --repeat N --pack N`), and decide with Wald's sequential
//! probability ratio test (SPRT) whether the kernel shows the bug:
//!
//!   H1 "detected": each run reports a bug with probability `p_detect`;
//!   H0 "clean":    each run reports a bug with probability `p_false`.
//!
//! A run reports a bug when its verdict is neither PASS nor an error
//! (ERROR, NOT_APPLICABLE, UNAVAILABLE are no evidence either way). After
//! each batch the log-likelihood ratio of all the step's runs is compared
//! with ln((1-β)/α) ("detected") and ln(β/(1-α)) ("clean"); in between,
//! another batch boots, up to `max_runs`. Undecided, too many errors or a
//! failed build: the step is skipped (`git bisect skip`, exit 125).
//!
//! The two ends are measured first and must differ ("old" = the verdict
//! class of the older end, "new" = the newer one); then a binary search
//! (series: here; git: `git bisect run` calling `ept bisect-step`) finds
//! the first kernel of class "new". Confidence: the product over the steps
//! of 1 - P(wrong decision), P(wrong) = 1/(1+LR) with LR the step's
//! realized likelihood ratio for its decision (a 50:50 prior per step).

use crate::data::{Expectations, Scenarios, Verdict};
use crate::progress::Progress;
use crate::runner::{self, RunOpts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The sequential test of one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sprt {
    /// P(decide "detected" | the kernel is clean), nominal.
    pub alpha: f64,
    /// P(decide "clean" | the kernel has the bug), nominal.
    pub beta: f64,
    /// Assumed per-run detection rate on a kernel with the bug.
    pub p_detect: f64,
    /// Assumed per-run false-detection rate on a clean kernel.
    pub p_false: f64,
    /// Runs per boot.
    pub batch: u32,
    /// Runs per step at most (then: undecided, skipped).
    pub max_runs: u32,
}

impl Default for Sprt {
    /// α = β = 0.01. Measured: inversion rwlock 20/20 runs per arch caught,
    /// spinlock 0/20 false; wake-up fn 10/10 on rwlock and spinlock-2025.
    /// Assumed below/above those: p_detect 0.8, p_false 0.05 (the 0/20
    /// rule-of-three bound is 0.15; 0.05 keeps a clean step at 3 runs). A
    /// step then needs 2 detections or 3 clean runs.
    fn default() -> Sprt {
        Sprt {
            alpha: 0.01,
            beta: 0.01,
            p_detect: 0.8,
            p_false: 0.05,
            batch: 3,
            max_runs: 12,
        }
    }
}

impl Sprt {
    pub fn validate(&self) -> Result<(), String> {
        let p = |x: f64| x > 0.0 && x < 1.0;
        if !(p(self.alpha) && p(self.beta) && p(self.p_detect) && p(self.p_false)) {
            return Err("bisect: --alpha, --beta, --p-detect, --p-false must be in (0, 1)".into());
        }
        if self.p_detect <= self.p_false {
            return Err("bisect: --p-detect must be above --p-false".into());
        }
        if self.batch == 0 || self.max_runs < self.batch {
            return Err("bisect: need 1 <= --batch <= --max-runs".into());
        }
        Ok(())
    }

    /// ln LR(H1 : H0) of `detected` detections and `clean` clean runs.
    pub fn llr(&self, detected: u32, clean: u32) -> f64 {
        detected as f64 * (self.p_detect / self.p_false).ln()
            + clean as f64 * ((1.0 - self.p_detect) / (1.0 - self.p_false)).ln()
    }

    /// Decide "detected" at or above this.
    pub fn upper(&self) -> f64 {
        ((1.0 - self.beta) / self.alpha).ln()
    }

    /// Decide "clean" at or below this.
    pub fn lower(&self) -> f64 {
        (self.beta / (1.0 - self.alpha)).ln()
    }

    /// (detections, clean runs) a step needs at least for each decision.
    pub fn min_runs(&self) -> (u32, u32) {
        let d = (self.upper() / self.llr(1, 0)).ceil() as u32;
        let c = (self.lower() / self.llr(0, 1)).ceil() as u32;
        (d, c)
    }

    pub fn describe(&self) -> String {
        let (d, c) = self.min_runs();
        format!(
            "SPRT alpha={} beta={} p_detect={} p_false={} (LLR +{:.2}/detection, {:.2}/clean run; \
             decide at >= {:.2} or <= {:.2}: >= {d} detections or >= {c} clean runs); \
             {} run(s) per boot, at most {} per step",
            self.alpha,
            self.beta,
            self.p_detect,
            self.p_false,
            self.llr(1, 0),
            self.llr(0, 1),
            self.upper(),
            self.lower(),
            self.batch,
            self.max_runs
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The kernel shows the bug (SPRT accepted H1).
    Detected,
    /// The kernel is clean (SPRT accepted H0).
    Clean,
    /// max_runs reached between the bounds.
    Undecided,
    /// Too many ERROR (or NOT_APPLICABLE/UNAVAILABLE) runs.
    Error,
    /// The kernel or image did not build.
    BuildFailed,
}

impl Outcome {
    pub fn decided(self) -> bool {
        matches!(self, Outcome::Detected | Outcome::Clean)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Detected => "detected",
            Outcome::Clean => "clean",
            Outcome::Undecided => "undecided",
            Outcome::Error => "error",
            Outcome::BuildFailed => "build-failed",
        })
    }
}

/// What a run's verdict counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunClass {
    Detected,
    Clean,
    NoEvidence,
}

pub fn run_class(v: Verdict) -> RunClass {
    match v {
        Verdict::Pass => RunClass::Clean,
        Verdict::Error | Verdict::NotApplicable | Verdict::Unavailable => RunClass::NoEvidence,
        _ => RunClass::Detected,
    }
}

/// The SPRT state of a step's runs so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    pub outcome: Outcome,
    pub runs: u32,
    pub detected: u32,
    pub clean: u32,
    pub errors: u32,
    /// Verdict name -> runs.
    pub counts: BTreeMap<String, u32>,
    pub llr: f64,
    /// P(this decision is wrong) = 1/(1+LR) for the decision taken
    /// (None: no decision).
    pub p_wrong: Option<f64>,
}

/// Evaluate a step's verdicts. `more`: whether another batch may still
/// run (the step is not final); a step that cannot continue and is between
/// the bounds is Undecided. More than half of at least `batch` runs with
/// no evidence (ERROR...) make the step an Error.
pub fn evaluate(s: &Sprt, verdicts: &[Verdict]) -> Eval {
    let mut counts = BTreeMap::new();
    let (mut d, mut c, mut e) = (0u32, 0u32, 0u32);
    for v in verdicts {
        *counts.entry(v.to_string()).or_insert(0) += 1;
        match run_class(*v) {
            RunClass::Detected => d += 1,
            RunClass::Clean => c += 1,
            RunClass::NoEvidence => e += 1,
        }
    }
    let llr = s.llr(d, c);
    let n = verdicts.len() as u32;
    let outcome = if llr >= s.upper() {
        Outcome::Detected
    } else if llr <= s.lower() {
        Outcome::Clean
    } else if n >= s.batch && e * 2 > n {
        Outcome::Error
    } else {
        Outcome::Undecided
    };
    let p_wrong = match outcome {
        Outcome::Detected => Some(1.0 / (1.0 + llr.exp())),
        Outcome::Clean => Some(1.0 / (1.0 + (-llr).exp())),
        _ => None,
    };
    Eval {
        outcome,
        runs: n,
        detected: d,
        clean: c,
        errors: e,
        counts,
        llr,
        p_wrong,
    }
}

/// Whether a step with this evaluation boots another batch.
pub fn wants_more(s: &Sprt, ev: &Eval) -> bool {
    ev.outcome == Outcome::Undecided && ev.runs + s.batch <= s.max_runs
}

/// Where a measured kernel falls between the two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Old,
    New,
    Skip,
}

/// The side of an outcome given the old end's outcome.
pub fn side(outcome: Outcome, old: Outcome) -> Side {
    if !outcome.decided() {
        Side::Skip
    } else if outcome == old {
        Side::Old
    } else {
        Side::New
    }
}

/// Binary search over the prefixes lo..=hi of a series: `lo` is known
/// old, `hi` known new. Returns the first new prefix, or (all skipped
/// around it) the candidates that could be it.
pub fn search(
    mut lo: usize,
    mut hi: usize,
    probe: &mut dyn FnMut(usize) -> Side,
) -> Result<usize, Vec<usize>> {
    let mut skipped = BTreeSet::new();
    while hi > lo + 1 {
        let mid = (lo + hi) / 2;
        let Some(m) = (lo + 1..hi)
            .filter(|k| !skipped.contains(k))
            .min_by_key(|k| (k.abs_diff(mid), *k))
        else {
            return Err((lo + 1..=hi).collect());
        };
        match probe(m) {
            Side::Old => lo = m,
            Side::New => hi = m,
            Side::Skip => {
                skipped.insert(m);
            }
        }
    }
    Ok(hi)
}

/// One measured kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub n: usize,
    /// "old end", "new end" or "probe".
    pub role: String,
    /// Series: "prefix k" (patches 1..k); git: the short revision.
    pub what: String,
    /// The patch or commit this step adds last, and its subject.
    pub patch: String,
    pub subject: String,
    pub build_s: f64,
    /// Boots and runs, waits for the VM lock included.
    pub run_s: f64,
    /// Of run_s: waiting for the VM lock, and QEMU's own time (the logs'
    /// `# host:` lines).
    #[serde(default)]
    pub vm_wait_s: f64,
    #[serde(default)]
    pub qemu_s: f64,
    pub boots: u32,
    pub eval: Eval,
    /// old / new / skip (the ends: their own side).
    pub side: Side,
    /// Build failure or error reason.
    #[serde(default)]
    pub note: String,
    pub logs: Vec<String>,
}

pub fn step_line(s: &Step) -> String {
    let counts: Vec<String> = s
        .eval
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    format!(
        "bisect: step {:>2} {:<8} {:<28} build {:>5.0}s  run {:>4.0}s (VM lock wait {:.0}s, QEMU {:.0}s)  runs {:>2} ({})  boots {}  LLR {:+.2}  -> {}{}  [{}]{}",
        s.n,
        s.role,
        s.what,
        s.build_s,
        s.run_s,
        s.vm_wait_s,
        s.qemu_s,
        s.eval.runs,
        if counts.is_empty() {
            "-".into()
        } else {
            counts.join(", ")
        },
        s.boots,
        s.eval.llr,
        s.eval.outcome,
        s.eval
            .p_wrong
            .map(|p| format!(" (P wrong {p:.1e})"))
            .unwrap_or_default(),
        match s.side {
            Side::Old => "old",
            Side::New => "new",
            Side::Skip => "skip",
        },
        if s.note.is_empty() {
            String::new()
        } else {
            format!("  {}", s.note)
        }
    )
}

/// The result of a bisect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bisect {
    pub mode: String,
    pub arch: String,
    pub scenario: String,
    /// Series: the patch files; git: "GOOD..BAD" and the source tree.
    pub range: String,
    pub sprt: Sprt,
    pub sprt_text: String,
    pub old: Option<Outcome>,
    pub new: Option<Outcome>,
    /// found, ends-agree, ends-undecided, ambiguous, error
    pub status: String,
    pub culprit: Option<String>,
    pub culprit_subject: Option<String>,
    /// Ambiguous: the candidates (skipped kernels around the flip).
    pub candidates: Vec<String>,
    /// Product over the steps of 1 - P(wrong decision).
    pub confidence: Option<f64>,
    /// Product over the steps of 1 - (alpha or beta): the nominal bound.
    pub nominal_confidence: Option<f64>,
    pub steps: Vec<Step>,
    pub wall_s: f64,
    pub message: String,
}

/// (confidence, nominal) of decided steps.
pub fn confidence(s: &Sprt, steps: &[Step]) -> (f64, f64) {
    let mut c = 1.0;
    let mut nom = 1.0;
    for st in steps {
        if let Some(p) = st.eval.p_wrong {
            c *= 1.0 - p;
            nom *= 1.0
                - match st.eval.outcome {
                    Outcome::Detected => s.alpha,
                    _ => s.beta,
                };
        }
    }
    (c, nom)
}

pub fn render_md(b: &Bisect) -> String {
    let mut s = format!(
        "# ept bisect: {} / {} ({})\n\n- range: {}\n- test: {}\n- status: **{}**{}\n",
        b.arch,
        b.scenario,
        b.mode,
        b.range,
        b.sprt_text,
        b.status,
        if b.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", b.message)
        }
    );
    if let (Some(o), Some(n)) = (b.old, b.new) {
        s += &format!("- old end: {o}, new end: {n}\n");
    }
    if let Some(c) = &b.culprit {
        s += &format!(
            "- **culprit: {c}** \"{}\"\n",
            b.culprit_subject.as_deref().unwrap_or("")
        );
    }
    if !b.candidates.is_empty() {
        s += &format!("- candidates: {}\n", b.candidates.join(", "));
    }
    if let (Some(c), Some(n)) = (b.confidence, b.nominal_confidence) {
        s += &format!(
            "- confidence: {:.6} (product of 1 - P(wrong) over the steps; nominal 1 - alpha/beta per step: {:.4})\n",
            c, n
        );
    }
    s += &format!("- wall time: {:.0} s\n\n", b.wall_s);
    s += "| step | role | kernel | adds | build s | run s (VM lock wait, QEMU) | boots | runs | verdicts | LLR | decision | P(wrong) | side |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for st in &b.steps {
        let counts: Vec<String> = st
            .eval
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        s += &format!(
            "| {} | {} | {} | {} | {:.0} | {:.0} ({:.0}, {:.0}) | {} | {} | {} | {:+.2} | {}{} | {} | {:?} |\n",
            st.n,
            st.role,
            st.what,
            if st.patch.is_empty() {
                "-".to_string()
            } else {
                format!("{} \"{}\"", st.patch, st.subject)
            },
            st.build_s,
            st.run_s,
            st.vm_wait_s,
            st.qemu_s,
            st.boots,
            st.eval.runs,
            if counts.is_empty() {
                "-".into()
            } else {
                counts.join(", ")
            },
            st.eval.llr,
            st.eval.outcome,
            if st.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", st.note.replace('|', "/"))
            },
            st.eval
                .p_wrong
                .map(|p| format!("{p:.1e}"))
                .unwrap_or_else(|| "-".into()),
            st.side
        );
    }
    s
}

/// The subject of a patch file (a folded `Subject:` header, `[PATCH ..]`
/// dropped), else its file name.
pub fn patch_subject(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut subj: Option<String> = None;
    for l in text.lines() {
        match &mut subj {
            None => {
                if let Some(r) = l.strip_prefix("Subject:") {
                    subj = Some(r.trim().to_string());
                }
            }
            Some(s) => {
                if l.starts_with(' ') || l.starts_with('\t') {
                    s.push(' ');
                    s.push_str(l.trim());
                } else {
                    break;
                }
            }
        }
    }
    let s = subj.unwrap_or_default();
    let s = match s.strip_prefix('[') {
        Some(r) if s.starts_with("[PATCH") => r.split_once(']').map_or(s.as_str(), |x| x.1),
        _ => s.as_str(),
    }
    .trim()
    .to_string();
    if s.is_empty() {
        path.file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default()
    } else {
        s
    }
}

/// `git bisect run`'s output: the first bad commit, or the candidates
/// when only skipped commits are left.
pub fn parse_git_bisect(out: &str) -> Result<String, Vec<String>> {
    for l in out.lines() {
        if let Some((sha, _)) = l.split_once(" is the first bad commit") {
            let sha = sha.trim();
            if sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(sha.to_string());
            }
        }
    }
    let mut cands = Vec::new();
    let mut on = false;
    for l in out.lines() {
        if l.contains("The first bad commit could be any of") {
            on = true;
            continue;
        }
        if on {
            let w = l.split_whitespace().next().unwrap_or("");
            if w.len() >= 7 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                cands.push(w.to_string());
            } else {
                on = false;
            }
        }
    }
    Err(cands)
}

// ---------------------------------------------------------------------
// Measuring a kernel (the part that builds and boots).

/// Everything a step needs to build and run a kernel; serialized as the
/// state file `ept bisect-step` reads in git mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ctx {
    pub top: PathBuf,
    pub arch: String,
    pub scenario: String,
    pub sprt: Sprt,
    pub out: PathBuf,
    pub deadline: Option<u64>,
    pub scenarios_file: Option<PathBuf>,
    pub expectations: Option<PathBuf>,
    /// Git mode: the bisect's own clone, the old end's outcome, the steps
    /// file (one JSON Step per line).
    #[serde(default)]
    pub tree: Option<PathBuf>,
    #[serde(default)]
    pub old: Option<Outcome>,
    #[serde(default)]
    pub steps_file: Option<PathBuf>,
}

/// A kernel to measure: Debian's base (or `kernel_src`) plus `patches`.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    pub kernel_src: Option<String>,
    /// Comma-separated patch files; None: no patches.
    pub patches: Option<String>,
    /// The variant name the cell gets.
    pub variant: String,
}

fn data(ctx: &Ctx) -> Result<(Scenarios, Expectations), String> {
    let read = |f: &Path| std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()));
    let scen = match &ctx.scenarios_file {
        Some(f) => Scenarios::from_json(&read(f)?)?,
        None => Scenarios::builtin(),
    };
    let exp = match &ctx.expectations {
        Some(f) => Expectations::from_json(&read(f)?)?,
        None => Expectations::builtin(),
    };
    Ok((scen, exp))
}

fn tail(path: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = t.lines().rev().take(n).collect();
    v.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// (VM-lock wait, QEMU seconds) from a console log's `# host:` lines.
pub fn host_times(log: &str) -> (f64, f64) {
    let num = |l: &str, pre: &str, post: &str| -> Option<f64> {
        l.split_once(pre)?.1.split_once(post)?.0.trim().parse().ok()
    };
    let (mut w, mut q) = (0.0, 0.0);
    for l in log.lines().filter(|l| l.starts_with("# host: ")) {
        if let Some(x) = num(l, "waited ", "s for the VM lock") {
            w += x;
        } else if let Some(x) = num(l, "QEMU exited after ", "s") {
            q += x;
        } else if let Some(x) = num(l, "killing QEMU after ", "s") {
            q += x;
        }
    }
    (w, q)
}

/// Build, then boot batches until the SPRT decides. `dir`: the step's
/// output directory.
pub fn measure(ctx: &Ctx, k: &Kernel, dir: &Path, mut step: Step) -> Step {
    let _ = std::fs::create_dir_all(dir);
    let env = |cmd: &mut Command| {
        cmd.env_remove("PATCHES").env_remove("KERNEL_SRC");
        if let Some(s) = &k.kernel_src {
            cmd.env("KERNEL_SRC", s);
        }
        if let Some(p) = &k.patches {
            cmd.env("PATCHES", p);
        }
    };
    // The build (kernel, module, guest programs, image) on its own, timed.
    let blog = dir.join("build.log");
    let t0 = Instant::now();
    let built = std::fs::File::create(&blog)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            let mut cmd = Command::new("bash");
            cmd.arg(ctx.top.join("qemu/mkimage.sh"))
                .arg(&ctx.arch)
                .arg(&k.variant)
                .current_dir(&ctx.top)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(f);
            env(&mut cmd);
            cmd.status().map_err(|e| e.to_string())
        });
    step.build_s = t0.elapsed().as_secs_f64();
    match built {
        Ok(st) if st.success() => {}
        Ok(st) => {
            step.eval = evaluate(&ctx.sprt, &[]);
            step.eval.outcome = Outcome::BuildFailed;
            step.side = Side::Skip;
            step.note = format!(
                "build failed (rc {:?}; {}): {}",
                st.code(),
                blog.display(),
                tail(&blog, 2)
            );
            return step;
        }
        Err(e) => {
            step.eval = evaluate(&ctx.sprt, &[]);
            step.eval.outcome = Outcome::BuildFailed;
            step.side = Side::Skip;
            step.note = format!("cannot run qemu/mkimage.sh: {e}");
            return step;
        }
    }
    let (scen, exp) = match data(ctx) {
        Ok(x) => x,
        Err(e) => {
            step.eval = evaluate(&ctx.sprt, &[]);
            step.eval.outcome = Outcome::Error;
            step.note = e;
            return step;
        }
    };
    // Runs: `batch` per boot, until the SPRT decides.
    std::env::remove_var("PATCHES");
    std::env::remove_var("KERNEL_SRC");
    let t1 = Instant::now();
    let mut verdicts = Vec::new();
    let mut reasons = Vec::new();
    loop {
        step.boots += 1;
        let bdir = dir.join(format!("boot{}", step.boots));
        let o = RunOpts {
            top: ctx.top.clone(),
            archs: vec![ctx.arch.clone()],
            variants: vec![k.variant.clone()],
            scenarios: vec![ctx.scenario.clone()],
            repeat: Some(ctx.sprt.batch),
            duration: None,
            jobs: 1,
            shard: None,
            kernel_src: k.kernel_src.clone(),
            patches: k.patches.clone(),
            out: bdir.clone(),
            logs: bdir.join("logs"),
            deadline: ctx.deadline,
            isolate: false,
            build_first: false,
            force: false,
            pack: ctx.sprt.batch,
            params: None,
            env: vec![],
            progress: Progress::capture().0,
        };
        let runs = runner::run_matrix(&o, &scen, &exp);
        for r in &runs {
            verdicts.push(r.verdict);
            if let Some(l) = &r.log {
                if !step.logs.contains(l) {
                    step.logs.push(l.clone());
                }
            }
            if run_class(r.verdict) == RunClass::NoEvidence {
                reasons.push(r.reason.chars().take(120).collect::<String>());
            }
        }
        let rep = crate::report::Report::new(runs, None);
        let _ = crate::write_outputs(&rep, &bdir);
        step.eval = evaluate(&ctx.sprt, &verdicts);
        if !wants_more(&ctx.sprt, &step.eval) {
            break;
        }
    }
    step.run_s = t1.elapsed().as_secs_f64();
    for l in &step.logs {
        let (w, q) = host_times(&std::fs::read_to_string(l).unwrap_or_default());
        step.vm_wait_s += w;
        step.qemu_s += q;
    }
    if let Some(r) = reasons.first() {
        step.note = format!("{} run(s) without evidence, e.g.: {r}", reasons.len());
    }
    step
}

fn new_step(n: usize, role: &str, what: &str, patch: &str, subject: &str, s: &Sprt) -> Step {
    Step {
        n,
        role: role.into(),
        what: what.into(),
        patch: patch.into(),
        subject: subject.into(),
        build_s: 0.0,
        run_s: 0.0,
        vm_wait_s: 0.0,
        qemu_s: 0.0,
        boots: 0,
        eval: evaluate(s, &[]),
        side: Side::Skip,
        note: String::new(),
        logs: vec![],
    }
}

fn finish(mut b: Bisect, t0: Instant) -> Bisect {
    b.wall_s = t0.elapsed().as_secs_f64();
    if b.culprit.is_some() {
        let (c, n) = confidence(&b.sprt, &b.steps);
        b.confidence = Some(c);
        b.nominal_confidence = Some(n);
    }
    b
}

fn blank(ctx: &Ctx, mode: &str, range: String) -> Bisect {
    Bisect {
        mode: mode.into(),
        arch: ctx.arch.clone(),
        scenario: ctx.scenario.clone(),
        range,
        sprt: ctx.sprt,
        sprt_text: ctx.sprt.describe(),
        old: None,
        new: None,
        status: "error".into(),
        culprit: None,
        culprit_subject: None,
        candidates: vec![],
        confidence: None,
        nominal_confidence: None,
        steps: vec![],
        wall_s: 0.0,
        message: String::new(),
    }
}

/// Check the ends: Ok((old, new)) when both decided and different.
fn ends(b: &mut Bisect, old: &Step, new: &Step) -> bool {
    let (o, n) = (old.eval.outcome, new.eval.outcome);
    if !o.decided() || !n.decided() {
        b.status = "ends-undecided".into();
        b.message = format!("the ends must be decided: old end {o}, new end {n}");
        return false;
    }
    b.old = Some(o);
    b.new = Some(n);
    if o == n {
        b.status = "ends-agree".into();
        b.message = format!("both ends are {o}: no flip to find in this range");
        return false;
    }
    true
}

/// Series mode: patches 1..=n on the base (or `kernel_src`); the old end
/// is prefix `from`, the new end prefix `to`.
pub fn run_series(
    ctx: &Ctx,
    kernel_src: Option<String>,
    patches: &[PathBuf],
    from: usize,
    to: usize,
    progress: &dyn Fn(&str),
) -> Bisect {
    let t0 = Instant::now();
    let names: Vec<String> = patches
        .iter()
        .map(|p| {
            p.file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        })
        .collect();
    let mut b = blank(
        ctx,
        "series",
        format!(
            "prefix {from} (old end) .. prefix {to} (new end) of {}{}",
            patches
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            kernel_src
                .as_deref()
                .map(|s| format!(" on KERNEL_SRC={s}"))
                .unwrap_or_else(|| " on the Debian base".into())
        ),
    );
    progress(&format!(
        "bisect: {}/{} series mode: {}; {}",
        ctx.arch, ctx.scenario, b.range, b.sprt_text
    ));
    let mut cache: BTreeMap<usize, Step> = BTreeMap::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut measure_prefix = |k: usize, role: &str, steps: &mut Vec<Step>| -> Step {
        if let Some(s) = cache.get(&k) {
            return s.clone();
        }
        let (patch, subject) = if k == 0 {
            ("(base)".to_string(), "the base as it is".to_string())
        } else {
            (names[k - 1].clone(), patch_subject(&patches[k - 1]))
        };
        let kern = Kernel {
            kernel_src: kernel_src.clone(),
            patches: (k > 0).then(|| {
                patches[..k]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            // Debian's base without patches is the `spinlock` variant; a
            // user tree without patches is built as it is.
            variant: if k == 0 && kernel_src.is_none() {
                "spinlock".into()
            } else {
                format!("bisect-p{k}")
            },
        };
        let st = new_step(
            steps.len() + 1,
            role,
            &format!("prefix {k}"),
            &patch,
            &subject,
            &ctx.sprt,
        );
        let dir = ctx.out.join(format!("step{}-prefix{k}", steps.len() + 1));
        let st = measure(ctx, &kern, &dir, st);
        cache.insert(k, st.clone());
        st
    };
    let mut old = measure_prefix(from, "old end", &mut steps);
    old.side = Side::Old;
    progress(&step_line(&old));
    steps.push(old.clone());
    let mut new = measure_prefix(to, "new end", &mut steps);
    new.side = Side::New;
    progress(&step_line(&new));
    steps.push(new.clone());
    if !ends(&mut b, &old, &new) {
        b.steps = steps;
        progress(&format!("bisect: {}: {}", b.status, b.message));
        return finish(b, t0);
    }
    let old_o = old.eval.outcome;
    let found = {
        let steps_ref = &mut steps;
        let mut probe = |k: usize| -> Side {
            let mut st = measure_prefix(k, "probe", steps_ref);
            st.side = side(st.eval.outcome, old_o);
            progress(&step_line(&st));
            let s = st.side;
            steps_ref.push(st);
            s
        };
        search(from, to, &mut probe)
    };
    b.steps = steps;
    match found {
        Ok(k) => {
            b.status = "found".into();
            b.culprit = Some(names[k - 1].clone());
            b.culprit_subject = Some(patch_subject(&patches[k - 1]));
        }
        Err(c) => {
            b.status = "ambiguous".into();
            b.message = "skipped prefixes hide the flip".into();
            b.candidates = c.iter().map(|k| names[k - 1].clone()).collect();
        }
    }
    let b = finish(b, t0);
    progress(&summary_line(&b));
    b
}

pub fn summary_line(b: &Bisect) -> String {
    match &b.culprit {
        Some(c) => format!(
            "bisect: culprit {c} \"{}\" ({} -> {}); confidence {:.6}; {} steps, {} runs, {:.0} s",
            b.culprit_subject.as_deref().unwrap_or(""),
            b.old.map(|o| o.to_string()).unwrap_or_default(),
            b.new.map(|o| o.to_string()).unwrap_or_default(),
            b.confidence.unwrap_or(0.0),
            b.steps.len(),
            b.steps.iter().map(|s| s.eval.runs).sum::<u32>(),
            b.wall_s
        ),
        None => format!(
            "bisect: {} {} {}",
            b.status,
            b.message,
            b.candidates.join(" ")
        ),
    }
}

// ---------------------------------------------------------------------
// Git mode.

pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git -C {} {}: {}",
            dir.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn hash_hex(s: &str) -> String {
    // FNV-1a 64: stable across Rust versions, unlike DefaultHasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The bisect's own clone of the user's repository: `git clone --shared
/// --no-checkout` (reads the user's objects through alternates; nothing
/// is ever written into the user's repository), under the cache.
pub fn bisect_clone(cache: &Path, user: &Path) -> Result<PathBuf, String> {
    let user = user
        .canonicalize()
        .map_err(|e| format!("{}: {e}", user.display()))?;
    let dir = cache
        .join("bisect")
        .join(format!(
            "git-{}",
            &hash_hex(&user.display().to_string())[..12]
        ))
        .join("tree");
    if !dir.join(".git").exists() {
        std::fs::create_dir_all(dir.parent().unwrap()).map_err(|e| e.to_string())?;
        let st = Command::new("git")
            .args(["clone", "--quiet", "--shared", "--no-checkout"])
            .arg(&user)
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("git clone: {e}"))?;
        if !st.success() {
            return Err(format!("git clone --shared {} failed", user.display()));
        }
    } else {
        // A leftover bisect of an interrupted run.
        let _ = git(&dir, &["bisect", "reset"]);
    }
    Ok(dir)
}

fn commit_step(ctx: &Ctx, tree: &Path, n: usize, role: &str) -> Step {
    let sha = git(tree, &["rev-parse", "HEAD"]).unwrap_or_default();
    let short = sha.chars().take(12).collect::<String>();
    let subject = git(tree, &["log", "-1", "--format=%s", "HEAD"]).unwrap_or_default();
    let st = new_step(n, role, &short, &short, &subject, &ctx.sprt);
    let dir = ctx.out.join(format!("step{n}-{short}"));
    let kern = Kernel {
        kernel_src: Some(tree.display().to_string()),
        patches: None,
        variant: "bisect".into(),
    };
    measure(ctx, &kern, &dir, st)
}

/// Git mode: the ends, then `git bisect run ept bisect-step` in the clone.
pub fn run_git(
    ctx: &Ctx,
    cache: &Path,
    user: &Path,
    good: &str,
    bad: &str,
    exe: &Path,
    progress: &dyn Fn(&str),
) -> Bisect {
    let t0 = Instant::now();
    let mut b = blank(
        ctx,
        "git",
        format!("{good} (old end) .. {bad} (new end) in {}", user.display()),
    );
    let fail = |mut b: Bisect, m: String| {
        b.status = "error".into();
        b.message = m;
        finish(b, t0)
    };
    // Revisions are resolved in the user's repository (read-only).
    let rev = |r: &str| git(user, &["rev-parse", "--verify", &format!("{r}^{{commit}}")]);
    let (g, bd) = match (rev(good), rev(bad)) {
        (Ok(g), Ok(b)) => (g, b),
        (Err(e), _) | (_, Err(e)) => return fail(b, e),
    };
    let tree = match bisect_clone(cache, user) {
        Ok(t) => t,
        Err(e) => return fail(b, e),
    };
    progress(&format!(
        "bisect: {}/{} git mode: {} = {}, {} = {}; clone {}; {}",
        ctx.arch,
        ctx.scenario,
        good,
        g,
        bad,
        bd,
        tree.display(),
        b.sprt_text
    ));
    let mut steps = Vec::new();
    for (n, (sha, role)) in [(&g, "old end"), (&bd, "new end")].iter().enumerate() {
        if let Err(e) = git(&tree, &["checkout", "--quiet", "--detach", sha]) {
            b.steps = steps;
            return fail(b, e);
        }
        let mut st = commit_step(ctx, &tree, n + 1, role);
        st.side = if n == 0 { Side::Old } else { Side::New };
        progress(&step_line(&st));
        steps.push(st);
    }
    if !ends(&mut b, &steps[0], &steps[1]) {
        b.steps = steps;
        progress(&format!("bisect: {}: {}", b.status, b.message));
        return finish(b, t0);
    }
    // The state `ept bisect-step` reads.
    let steps_file = ctx.out.join("steps.jsonl");
    let _ = std::fs::write(&steps_file, "");
    let mut sctx = ctx.clone();
    sctx.tree = Some(tree.clone());
    sctx.old = b.old;
    sctx.steps_file = Some(steps_file.clone());
    let state = ctx.out.join("state.json");
    if let Err(e) = std::fs::write(&state, serde_json::to_string_pretty(&sctx).unwrap()) {
        b.steps = steps;
        return fail(b, format!("{}: {e}", state.display()));
    }
    let run = git(&tree, &["bisect", "start", &bd, &g]).and_then(|_| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&tree)
            .args(["bisect", "run"])
            .arg(exe)
            .arg("bisect-step")
            .arg("--state")
            .arg(&state)
            .current_dir(&tree)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("git bisect run: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    });
    let log = git(&tree, &["bisect", "log"]).unwrap_or_default();
    let _ = std::fs::write(ctx.out.join("git-bisect.log"), &log);
    let _ = git(&tree, &["bisect", "reset"]);
    let text = std::fs::read_to_string(&steps_file).unwrap_or_default();
    for l in text.lines() {
        if let Ok(mut s) = serde_json::from_str::<Step>(l) {
            s.n = steps.len() + 1;
            steps.push(s);
        }
    }
    b.steps = steps;
    let out = match run {
        Ok(o) => o,
        Err(e) => return fail(b, e),
    };
    let _ = std::fs::write(ctx.out.join("git-bisect-run.out"), &out);
    match parse_git_bisect(&out) {
        Ok(sha) => {
            b.status = "found".into();
            b.culprit_subject = git(&tree, &["log", "-1", "--format=%s", &sha]).ok();
            b.culprit = Some(sha.chars().take(12).collect());
        }
        Err(c) if !c.is_empty() => {
            b.status = "ambiguous".into();
            b.message = "only skipped commits are left around the flip".into();
            b.candidates = c.iter().map(|s| s.chars().take(12).collect()).collect();
        }
        Err(_) => {
            b.status = "error".into();
            b.message = format!(
                "git bisect run did not name a commit: {}",
                out.lines().last().unwrap_or("")
            );
        }
    }
    let b = finish(b, t0);
    progress(&summary_line(&b));
    b
}

/// `ept bisect-step --state FILE`: measure the clone's HEAD; exit 0 (old
/// side: `git bisect good`), 1 (new side: bad) or 125 (skip).
pub fn bisect_step(state: &Path) -> i32 {
    // What git exports to `bisect run` commands is not for the kernel
    // build (scripts/setlocalversion) or our own git calls.
    for k in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"] {
        std::env::remove_var(k);
    }
    let ctx: Ctx = match std::fs::read_to_string(state)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ept bisect-step: {}: {e}", state.display());
            return 125;
        }
    };
    let (Some(tree), Some(old), Some(steps_file)) = (&ctx.tree, ctx.old, &ctx.steps_file) else {
        eprintln!("ept bisect-step: {}: not a git-mode state", state.display());
        return 125;
    };
    let done = std::fs::read_to_string(steps_file)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    // Steps 1 and 2 are the ends.
    let mut st = commit_step(&ctx, tree, done + 3, "probe");
    st.side = side(st.eval.outcome, old);
    eprintln!("{}", step_line(&st));
    if let Ok(line) = serde_json::to_string(&st) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(steps_file)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    match st.side {
        Side::Old => 0,
        Side::New => 1,
        Side::Skip => 125,
    }
}

/// The patch files of a series directory, in order.
pub fn series_patches(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("{}: no *.patch", dir.display()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    #[test]
    fn default_sprt_needs_two_detections_or_three_clean_runs() {
        let s = Sprt::default();
        s.validate().unwrap();
        assert_eq!(s.min_runs(), (2, 3));
        assert!((s.upper() - 4.595).abs() < 0.01 && (s.lower() + 4.595).abs() < 0.01);
    }

    #[test]
    fn validate_rejects_nonsense() {
        for bad in [
            Sprt {
                alpha: 0.0,
                ..Sprt::default()
            },
            Sprt {
                p_detect: 0.01,
                ..Sprt::default()
            },
            Sprt {
                batch: 0,
                ..Sprt::default()
            },
            Sprt {
                max_runs: 2,
                ..Sprt::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decisions_from_recorded_outcomes() {
        let s = Sprt::default();
        // rwlock inversion, 20/20 caught: decided after two runs.
        let e = evaluate(&s, &[Inversion, Inversion]);
        assert_eq!(e.outcome, Outcome::Detected);
        assert!(e.p_wrong.unwrap() < 0.01);
        // spinlock, 0/20: three clean runs decide.
        assert_eq!(evaluate(&s, &[Pass, Pass]).outcome, Outcome::Undecided);
        let e = evaluate(&s, &[Pass, Pass, Pass]);
        assert_eq!(e.outcome, Outcome::Clean);
        assert_eq!(e.counts.get("PASS"), Some(&3));
        // wake-up fn: FALSE_NEGATIVE counts as a detection.
        assert_eq!(
            evaluate(&s, &[FalseNegative, FalseNegative]).outcome,
            Outcome::Detected
        );
        // 2 of 3: LLR 2 x 2.77 - 1.56 = 3.99 < 4.60, one more batch.
        assert_eq!(
            evaluate(&s, &[FalseNegative, Pass, FalseNegative]).outcome,
            Outcome::Undecided
        );
        // One detection among clean runs: not clear, another batch.
        let e = evaluate(&s, &[Inversion, Pass, Pass]);
        assert_eq!(e.outcome, Outcome::Undecided);
        assert!(wants_more(&s, &e));
        // ...and with three more clean runs it is clean.
        let e = evaluate(&s, &[Inversion, Pass, Pass, Pass, Pass, Pass]);
        assert_eq!(e.outcome, Outcome::Clean);
        // ERROR runs are no evidence; mostly errors: Error (skip).
        let e = evaluate(&s, &[Error, Error, Pass]);
        assert_eq!((e.outcome, e.errors), (Outcome::Error, 2));
        assert!(!wants_more(&s, &e));
        // A flip-flopping kernel ends undecided at max_runs.
        let ff: Vec<Verdict> = (0..12)
            .map(|i| if i % 3 == 0 { Inversion } else { Pass })
            .collect();
        let e = evaluate(&s, &ff);
        assert_eq!(e.outcome, Outcome::Undecided);
        assert!(!wants_more(&s, &e));
    }

    #[test]
    fn host_times_from_a_log() {
        let log = "# host: waited 324s for the VM lock\n[+0001.0] x\n# host: QEMU exited after 95s\n# host: HANG: killing QEMU after 272s\n";
        assert_eq!(host_times(log), (324.0, 367.0));
        assert_eq!(host_times(""), (0.0, 0.0));
    }

    #[test]
    fn sides() {
        assert_eq!(side(Outcome::Detected, Outcome::Detected), Side::Old);
        assert_eq!(side(Outcome::Clean, Outcome::Detected), Side::New);
        assert_eq!(side(Outcome::Undecided, Outcome::Detected), Side::Skip);
        assert_eq!(side(Outcome::BuildFailed, Outcome::Clean), Side::Skip);
    }

    /// Prefix outcomes recorded on the eventpoll-history series (x86_64):
    /// inversion detected at prefix 1 only; fn at prefixes 1 and 2.
    #[test]
    fn search_over_recorded_series() {
        let inversion = [
            Outcome::Clean,
            Outcome::Detected,
            Outcome::Clean,
            Outcome::Clean,
        ];
        let fnw = [
            Outcome::Clean,
            Outcome::Detected,
            Outcome::Detected,
            Outcome::Clean,
        ];
        for (rec, want) in [(inversion, 2), (fnw, 3)] {
            let mut probed = vec![];
            let r = search(1, 3, &mut |k| {
                probed.push(k);
                side(rec[k], rec[1])
            });
            assert_eq!(r, Ok(want));
            assert_eq!(probed, [2]);
        }
    }

    #[test]
    fn search_handles_skips_and_long_series() {
        // 16 patches, flip at 11: four probes.
        let mut n = 0;
        let r = search(0, 16, &mut |k| {
            n += 1;
            if k >= 11 {
                Side::New
            } else {
                Side::Old
            }
        });
        assert_eq!((r, n), (Ok(11), 4));
        // A skipped probe: its neighbour is tried instead.
        let mut probed = vec![];
        let r = search(0, 8, &mut |k| {
            probed.push(k);
            match k {
                4 => Side::Skip,
                k if k >= 7 => Side::New,
                _ => Side::Old,
            }
        });
        assert_eq!(r, Ok(7));
        assert_eq!(probed, [4, 3, 5, 6, 7]);
        // A skipped kernel next to the flip: it could be either.
        let r = search(0, 8, &mut |k| match k {
            4 => Side::Skip,
            k if k >= 5 => Side::New,
            _ => Side::Old,
        });
        assert_eq!(r, Err(vec![4, 5]));
        // Everything between skipped: the candidates.
        let r = search(1, 4, &mut |_| Side::Skip);
        assert_eq!(r, Err(vec![2, 3, 4]));
    }

    #[test]
    fn confidence_multiplies_the_steps() {
        let s = Sprt::default();
        let mk = |v: &[Verdict]| Step {
            eval: evaluate(&s, v),
            ..new_step(1, "probe", "x", "", "", &s)
        };
        let steps = vec![
            mk(&[Inversion, Inversion, Inversion]),
            mk(&[Pass, Pass, Pass]),
            mk(&[Error]),
        ];
        let (c, nom) = confidence(&s, &steps);
        let p1 = steps[0].eval.p_wrong.unwrap();
        let p2 = steps[1].eval.p_wrong.unwrap();
        assert!((c - (1.0 - p1) * (1.0 - p2)).abs() < 1e-12);
        assert!((nom - 0.99 * 0.99).abs() < 1e-12);
        assert!(c > 0.99);
    }

    #[test]
    fn subjects_and_git_output() {
        let d = std::env::temp_dir().join(format!("ept-bisect-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("0002-x.patch");
        std::fs::write(
            &p,
            "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 2/3] eventpoll: replace the rwlock\n with a spinlock\n\nbody\n",
        )
        .unwrap();
        assert_eq!(
            patch_subject(&p),
            "eventpoll: replace the rwlock with a spinlock"
        );
        std::fs::write(d.join("0001-a.patch"), "no header\n").unwrap();
        std::fs::write(d.join("notes.txt"), "").unwrap();
        let ps = series_patches(&d).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(patch_subject(&ps[0]), "0001-a.patch");
        let _ = std::fs::remove_dir_all(&d);
        let out = "running ept\nc0ffee0123456789abcdef0123456789abcdef01 is the first bad commit\ncommit c0ffee\n";
        assert_eq!(
            parse_git_bisect(out),
            Ok("c0ffee0123456789abcdef0123456789abcdef01".into())
        );
        let amb = "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\naaaaaaa1\nbbbbbbb2\nWe cannot bisect more!\n";
        assert_eq!(
            parse_git_bisect(amb),
            Err(vec!["aaaaaaa1".into(), "bbbbbbb2".into()])
        );
        assert_eq!(parse_git_bisect("nothing"), Err(vec![]));
    }

    #[test]
    fn report_renders_the_table() {
        let s = Sprt::default();
        let mut st = new_step(1, "probe", "prefix 2", "0002-x.patch", "subj", &s);
        st.eval = evaluate(&s, &[Pass, Pass, Pass]);
        st.side = Side::New;
        let mut b = blank(
            &Ctx {
                top: "/t".into(),
                arch: "x86_64".into(),
                scenario: "inversion".into(),
                sprt: s,
                out: "/o".into(),
                deadline: None,
                scenarios_file: None,
                expectations: None,
                tree: None,
                old: None,
                steps_file: None,
            },
            "series",
            "r".into(),
        );
        b.steps = vec![st];
        b.status = "found".into();
        b.culprit = Some("0002-x.patch".into());
        b.culprit_subject = Some("subj".into());
        let b = finish(b, Instant::now());
        let md = render_md(&b);
        assert!(md.contains("**culprit: 0002-x.patch** \"subj\""), "{md}");
        assert!(md.contains("| 1 | probe | prefix 2 | 0002-x.patch \"subj\" |"));
        assert!(md.contains("PASS 3"));
        let j: Bisect = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(
            (&j.culprit, &j.steps[0].eval.counts),
            (&b.culprit, &b.steps[0].eval.counts)
        );
    }
}
