//! The scenario data: selftests/host/scenarios.json, every scenario declared
//! once (its kind, guest command line, deadline, boot sharing, kernel
//! needs, expected verdicts per variant) plus the default matrices and the
//! kernel feature names. Compiled in; `--scenarios-file FILE` overrides.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const SCENARIOS_JSON: &str = include_str!("../scenarios.json");

/// A verdict. The precedence (which verdict wins when a log shows several
/// things) is the order of `rank`: CRASH > HANG > STALL > LOST_WAKEUP >
/// FALSE_NEGATIVE > INVERSION > ERROR > FAIL > PASS. NOT_APPLICABLE (the
/// scenario's mechanism is absent from the kernel) and UNAVAILABLE (no
/// kernel for the variant) are given before a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    Inversion,
    FalseNegative,
    LostWakeup,
    Stall,
    Hang,
    Crash,
    NotApplicable,
    Unavailable,
}

impl Verdict {
    pub const ALL: [Verdict; 11] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Error,
        Verdict::Inversion,
        Verdict::FalseNegative,
        Verdict::LostWakeup,
        Verdict::Stall,
        Verdict::Hang,
        Verdict::Crash,
        Verdict::NotApplicable,
        Verdict::Unavailable,
    ];

    /// Higher wins.
    pub fn rank(self) -> u8 {
        match self {
            Verdict::Unavailable => 0,
            Verdict::NotApplicable => 1,
            Verdict::Pass => 2,
            Verdict::Fail => 3,
            Verdict::Error => 4,
            Verdict::Inversion => 5,
            Verdict::FalseNegative => 6,
            Verdict::LostWakeup => 7,
            Verdict::Stall => 8,
            Verdict::Hang => 9,
            Verdict::Crash => 10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Inversion => "INVERSION",
            Verdict::FalseNegative => "FALSE_NEGATIVE",
            Verdict::LostWakeup => "LOST_WAKEUP",
            Verdict::Stall => "STALL",
            Verdict::Hang => "HANG",
            Verdict::Crash => "CRASH",
            Verdict::NotApplicable => "NOT_APPLICABLE",
            Verdict::Unavailable => "UNAVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a scenario's run reports, so the judge knows what a complete run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The epoll_torture module's KTAP result is required.
    Module,
    /// A guest program's KTAP, every line prefixed `<ktap_prefix>: `.
    Ktap,
    /// The kernel's epoll selftests: TAP and EPT-SELFTEST lines.
    Kselftest,
    /// The kernel's KUnit KTAP (a test module loaded by the command).
    Kunit,
    /// Only the run's exit status.
    #[default]
    Rc,
}

/// The arguments that bound a run's time, and the rule that sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub rule: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    about: Option<String>,
    kind: Option<Kind>,
    ktap_prefix: Option<String>,
    command: Option<String>,
    budget: Option<Budget>,
    housekeeping: Option<bool>,
    setup: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    deadline_s: Option<u64>,
    uses_duration: Option<bool>,
    repeats: Option<u32>,
    share_boot: Option<bool>,
    order: Option<i32>,
    needs: Option<Vec<String>>,
    expect: Option<BTreeMap<String, Vec<Verdict>>>,
    expect_why: Option<String>,
    not_ok: Option<Verdict>,
    latency_threshold_us: Option<f64>,
    hang_after_s: Option<f64>,
    stall_min_s: Option<f64>,
    emulation_failures: Option<BTreeMap<String, String>>,
    selftests_gate: Option<bool>,
}

/// Everything the runner and the judge need to know about one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    pub name: String,
    pub about: String,
    pub kind: Kind,
    /// `ept-wakeup` for a guest program's KTAP (kind ktap); `epoll_torture`
    /// for the module.
    pub ktap_prefix: Option<String>,
    /// The guest command line of one run (busybox sh).
    pub command: String,
    pub budget: Budget,
    pub housekeeping: bool,
    /// Shell lines run before the command (in the run's subshell).
    pub setup: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Host deadline of one run, without DURATION.
    pub deadline_s: u64,
    pub uses_duration: bool,
    /// Runs per cell when `--repeat` is not given.
    pub repeats: u32,
    pub share_boot: bool,
    pub order: i32,
    /// Kernel features the scenario needs (`name`, `!name`, `name=value`).
    pub needs: Vec<String>,
    /// Why the expected verdicts are what they are.
    pub expect_why: String,
    pub not_ok: Verdict,
    pub latency_threshold_us: Option<f64>,
    pub hang_after_s: f64,
    pub stall_min_s: f64,
    /// Kernel selftests known to fail under emulation on the unmodified
    /// kernel too, keyed `test` or `arch:test` (-> why). Reported, not
    /// failed; with a baseline, only if the baseline failed them as well.
    pub emulation_failures: BTreeMap<String, String>,
    /// Selftests that failed on the unmodified kernel (spinlock) of the same
    /// arch and base in the same run: test -> "timeout" | "fail". `None`
    /// when judged without a baseline.
    pub baseline_failures: Option<BTreeMap<String, String>>,
    /// Whether kernel selftest failures fail the run (false: reported only,
    /// e.g. the debug boot, whose criterion is "no splat").
    pub selftests_gate: bool,
}

impl ScenarioSpec {
    /// The full command line of one run: the command, its budget arguments
    /// and, for the module, the user's extra parameters ($EPT_PARAMS).
    pub fn command_line(&self) -> String {
        let mut c = self.command.trim().to_string();
        if !self.budget.args.trim().is_empty() {
            c.push(' ');
            c.push_str(self.budget.args.trim());
        }
        if self.kind == Kind::Module && c.starts_with("ept-run ") {
            c.push_str(" $EPT_PARAMS");
        }
        c
    }

    /// The run's host deadline with DURATION added when the scenario uses it.
    pub fn run_deadline(&self, duration: Option<u64>) -> u64 {
        self.deadline_s
            + if self.uses_duration {
                duration.unwrap_or(0)
            } else {
                0
            }
    }
}

/// One default matrix (`ept defaults [SET] KEY`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Environment of the set's `ept run` (`BASE=6.12`, `DEBUG=1`).
    pub env: Option<Vec<String>>,
    pub archs: Option<Vec<String>>,
    pub variants: Option<Vec<String>>,
    pub scenarios: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawScenarios {
    defaults: BTreeMap<String, Matrix>,
    #[serde(default)]
    features: BTreeMap<String, String>,
    boot_allowance_s: Option<u64>,
    expect_default: Option<Vec<Verdict>>,
    spec_defaults: RawSpec,
    scenarios: BTreeMap<String, RawSpec>,
}

#[derive(Debug, Clone)]
pub struct Scenarios {
    /// The default scenarios of `ept run` (defaults.run.scenarios).
    pub default: Vec<String>,
    sets: BTreeMap<String, Matrix>,
    /// Kernel feature name -> what it means.
    pub features: BTreeMap<String, String>,
    /// Host seconds a boot gets on top of its runs' deadlines.
    pub boot_allowance_s: u64,
    defaults: RawSpec,
    known: BTreeMap<String, RawSpec>,
    expect_default: Vec<Verdict>,
}

impl Scenarios {
    pub fn from_json(text: &str) -> Result<Scenarios, String> {
        let raw: RawScenarios =
            serde_json::from_str(text).map_err(|e| format!("scenarios file: {e}"))?;
        let run = raw
            .defaults
            .get("run")
            .ok_or("scenarios file: no defaults.run")?;
        let default = run
            .scenarios
            .clone()
            .ok_or("scenarios file: no defaults.run.scenarios")?;
        let s = Scenarios {
            default,
            sets: raw.defaults,
            features: raw.features,
            boot_allowance_s: raw.boot_allowance_s.unwrap_or(120),
            defaults: raw.spec_defaults,
            known: raw.scenarios,
            expect_default: raw.expect_default.unwrap_or_else(|| vec![Verdict::Pass]),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        for (set, m) in &self.sets {
            for sc in m.scenarios.iter().flatten() {
                if !self.is_known(sc) {
                    return Err(format!(
                        "scenarios file: defaults.{set} names unknown scenario {sc}"
                    ));
                }
            }
        }
        for (name, s) in &self.known {
            if s.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return Err(format!("scenarios file: scenario {name} has no command"));
            }
            for n in s.needs.iter().flatten() {
                let f = n.trim_start_matches('!');
                let f = f.split_once('=').map_or(f, |(k, _)| k);
                if !self.features.contains_key(f) {
                    return Err(format!(
                        "scenarios file: scenario {name} needs unknown feature {f} (known: {})",
                        self.features.keys().cloned().collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            for k in s.expect.iter().flat_map(|e| e.keys()) {
                ExpectKey::parse(k).map_err(|e| format!("scenarios file: {name}: {e}"))?;
            }
        }
        Ok(())
    }

    pub fn builtin() -> Scenarios {
        Scenarios::from_json(SCENARIOS_JSON).expect("built-in scenarios.json is valid")
    }

    /// The names of the default sets (run, quick, check, ...).
    pub fn set_names(&self) -> Vec<String> {
        self.sets.keys().cloned().collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.known.keys().cloned().collect()
    }

    pub fn is_known(&self, name: &str) -> bool {
        self.known.contains_key(name)
    }

    /// A default list: `key` is archs, variants, scenarios or env; `set` is
    /// run, quick, check, check-cross, check-6.12, check-debug or evidence
    /// (a set without the key falls back to run; env to nothing).
    pub fn default_list(&self, set: &str, key: &str) -> Result<Vec<String>, String> {
        if key == "env" {
            let m = self
                .sets
                .get(set)
                .ok_or_else(|| format!("unknown defaults set {set}"))?;
            return Ok(m.env.clone().unwrap_or_default());
        }
        let pick = |m: &Matrix| match key {
            "archs" => Ok(m.archs.clone()),
            "variants" => Ok(m.variants.clone()),
            "scenarios" => Ok(m.scenarios.clone()),
            _ => Err(format!(
                "unknown defaults key {key} (archs, variants, scenarios, env)"
            )),
        };
        let m = self.sets.get(set).ok_or_else(|| {
            format!(
                "unknown defaults set {set} (have: {})",
                self.sets.keys().cloned().collect::<Vec<_>>().join(" ")
            )
        })?;
        if let Some(v) = pick(m)? {
            return Ok(v);
        }
        let run = self.sets.get("run").ok_or("no defaults.run")?;
        pick(run)?.ok_or_else(|| format!("no defaults.run.{key}"))
    }

    /// The spec of a scenario; an unknown name gets the defaults.
    pub fn spec(&self, name: &str) -> ScenarioSpec {
        let s = self.known.get(name).cloned().unwrap_or_default();
        let d = &self.defaults;
        let kind = s.kind.or(d.kind).unwrap_or_default();
        ScenarioSpec {
            name: name.to_string(),
            about: s.about.unwrap_or_default(),
            kind,
            ktap_prefix: s
                .ktap_prefix
                .or_else(|| (kind == Kind::Module).then(|| "epoll_torture".to_string())),
            command: s
                .command
                .unwrap_or_else(|| format!("sh /ept/scenarios/{name}.sh")),
            budget: s.budget.unwrap_or_default(),
            housekeeping: s.housekeeping.or(d.housekeeping).unwrap_or(false),
            setup: s.setup.unwrap_or_default(),
            env: s.env.unwrap_or_default(),
            deadline_s: s.deadline_s.or(d.deadline_s).unwrap_or(300),
            uses_duration: s.uses_duration.or(d.uses_duration).unwrap_or(false),
            repeats: s.repeats.or(d.repeats).unwrap_or(1).max(1),
            share_boot: s.share_boot.or(d.share_boot).unwrap_or(true),
            order: s.order.or(d.order).unwrap_or(50),
            needs: s.needs.unwrap_or_default(),
            expect_why: s.expect_why.unwrap_or_default(),
            not_ok: s.not_ok.or(d.not_ok).unwrap_or(Verdict::Inversion),
            latency_threshold_us: s.latency_threshold_us.or(d.latency_threshold_us),
            hang_after_s: s.hang_after_s.or(d.hang_after_s).unwrap_or(30.0),
            stall_min_s: s.stall_min_s.or(d.stall_min_s).unwrap_or(1.0),
            emulation_failures: s.emulation_failures.unwrap_or_default(),
            baseline_failures: None,
            selftests_gate: s.selftests_gate.or(d.selftests_gate).unwrap_or(true),
        }
    }

    /// The expectations of every scenario (the `expect` maps).
    pub fn expectations(&self) -> Expectations {
        let mut by = BTreeMap::new();
        for (name, s) in &self.known {
            let mut rules = Vec::new();
            for (k, v) in s.expect.iter().flatten() {
                if let Ok(key) = ExpectKey::parse(k) {
                    rules.push((key, v.clone()));
                }
            }
            by.insert(name.clone(), rules);
        }
        Expectations {
            by_scenario: by,
            default: self.expect_default.clone(),
            legacy: None,
        }
    }
}

/// Why a scenario cannot apply to a kernel: the first unmet need, with the
/// feature's meaning. `features` is the cell's FEATURES list
/// (`name` or `name=value` words); `None` = every need is met.
pub fn unmet_need(
    spec: &ScenarioSpec,
    features: &[String],
    meaning: &BTreeMap<String, String>,
) -> Option<String> {
    let has = |f: &str| features.iter().any(|x| x == f);
    for n in &spec.needs {
        let (want, f) = match n.strip_prefix('!') {
            Some(f) => (false, f),
            None => (true, n.as_str()),
        };
        let name = f.split_once('=').map_or(f, |(k, _)| k);
        if has(f) != want {
            let what = meaning.get(name).cloned().unwrap_or_default();
            let actual = features
                .iter()
                .find(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) == name)
                .cloned();
            return Some(if want {
                format!(
                    "needs {f}, which this kernel lacks{}: {what}",
                    actual.map(|a| format!(" (has {a})")).unwrap_or_default()
                )
            } else {
                format!("needs a kernel without {f}, and this one has it: {what}")
            });
        }
    }
    None
}

/// A key of a scenario's `expect` map: `[arch:]variant[@base]`, variant `*` = any.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectKey {
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub base: Option<String>,
}

impl ExpectKey {
    pub fn parse(k: &str) -> Result<ExpectKey, String> {
        let (arch, rest) = match k.split_once(':') {
            Some((a, r)) => (Some(a.to_string()), r),
            None => (None, k),
        };
        let (variant, base) = match rest.split_once('@') {
            Some((v, b)) => (v, Some(b.to_string())),
            None => (rest, None),
        };
        if variant.is_empty() || arch.as_deref() == Some("") || base.as_deref() == Some("") {
            return Err(format!("bad expect key {k:?} (want [arch:]variant[@base])"));
        }
        Ok(ExpectKey {
            arch,
            variant: (variant != "*").then(|| canon_variant(variant).to_string()),
            base,
        })
    }

    /// Specificity when it matches: base first, then variant, then arch.
    fn score(&self, arch: &str, variant: &str, base: &str) -> Option<usize> {
        let mut s = 0;
        if let Some(b) = &self.base {
            if !(base == b || base.starts_with(&format!("{b}."))) {
                return None;
            }
            s += 1000 + b.len();
        }
        if let Some(v) = &self.variant {
            if v != variant {
                return None;
            }
            s += 10;
        }
        if let Some(a) = &self.arch {
            if a != arch {
                return None;
            }
            s += 1;
        }
        Some(s)
    }
}

/// Expected verdicts per run, from the scenarios' `expect` maps.
#[derive(Debug, Clone)]
pub struct Expectations {
    by_scenario: BTreeMap<String, Vec<(ExpectKey, Vec<Verdict>)>>,
    default: Vec<Verdict>,
    /// An expectations file of the old layout (`--expectations FILE`):
    /// ordered rules, the first whose fields all match wins.
    legacy: Option<Vec<LegacyRule>>,
}

/// A rule of the old expectations.json (before it was folded into
/// scenarios.json): fields variant, scenario, arch, base.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyRule {
    variant: Option<String>,
    scenario: Option<String>,
    arch: Option<String>,
    base: Option<String>,
    expect: Vec<Verdict>,
}

#[derive(Debug, Clone, Deserialize)]
struct LegacyFile {
    default: Vec<Verdict>,
    rules: Vec<LegacyRule>,
}

impl Expectations {
    /// From a scenarios file's text (the expectations live in it), or from
    /// an expectations file of the old layout (`{"default": [...],
    /// "rules": [...]}`, first matching rule wins).
    pub fn from_json(text: &str) -> Result<Expectations, String> {
        if let Ok(l) = serde_json::from_str::<LegacyFile>(text) {
            return Ok(Expectations {
                by_scenario: BTreeMap::new(),
                default: l.default,
                legacy: Some(l.rules),
            });
        }
        Ok(Scenarios::from_json(text)?.expectations())
    }

    pub fn builtin() -> Expectations {
        Scenarios::builtin().expectations()
    }

    /// Expected verdicts for a run. `base` is BASE_KERNELVERSION when known.
    /// A variant qualified with its base (`rwlock@6.12`, as `ept merge`
    /// writes it) is matched with that base.
    pub fn expected(&self, arch: &str, variant: &str, scenario: &str, base: &str) -> Vec<Verdict> {
        let (variant, base) = match variant.split_once('@') {
            Some((v, b)) if base.is_empty() => (v, b),
            Some((v, _)) => (v, base),
            None => (variant, base),
        };
        let variant = canon_variant(variant);
        if let Some(rules) = &self.legacy {
            let base_ok = |b: &str| base == b || base.starts_with(&format!("{b}."));
            return rules
                .iter()
                .find(|r| {
                    r.variant
                        .as_deref()
                        .is_none_or(|v| canon_variant(v) == variant)
                        && r.scenario.as_deref().is_none_or(|s| s == scenario)
                        && r.arch.as_deref().is_none_or(|a| a == arch)
                        && r.base.as_deref().is_none_or(base_ok)
                })
                .map(|r| r.expect.clone())
                .unwrap_or_else(|| self.default.clone());
        }
        let mut best: Option<(usize, &Vec<Verdict>)> = None;
        for (k, v) in self.by_scenario.get(scenario).into_iter().flatten() {
            if let Some(s) = k.score(arch, variant, base) {
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, v));
                }
            }
        }
        best.map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.default.clone())
    }
}

/// Whether a verdict meets the expected list.
pub fn meets(verdict: Verdict, expected: &[Verdict]) -> bool {
    matches!(verdict, Verdict::Unavailable | Verdict::NotApplicable) || expected.contains(&verdict)
}

/// Canonical variant name: users say patched/unpatched (as in qemu/lib.sh).
pub fn canon_variant(v: &str) -> &str {
    match v {
        "patched" => "spinlock",
        "unpatched" => "rwlock",
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_file_parses() {
        let s = Scenarios::builtin();
        assert_eq!(s.default_list("check-6.12", "env").unwrap(), ["BASE=6.12"]);
        assert!(s.default_list("run", "env").unwrap().is_empty());
        for set in [
            "run",
            "quick",
            "check",
            "check-cross",
            "check-6.12",
            "check-debug",
            "evidence",
        ] {
            for k in ["archs", "variants", "scenarios"] {
                let l = s.default_list(set, k).unwrap();
                assert!(!l.is_empty(), "{set}.{k}");
            }
        }
        assert_eq!(s.default, s.default_list("run", "scenarios").unwrap());
        assert!(s.default_list("nosuch", "archs").is_err());
        assert!(s.default_list("run", "colours").is_err());
        assert_eq!(s.spec("inversion").kind, Kind::Module);
        assert_eq!(
            s.spec("inversion").ktap_prefix.as_deref(),
            Some("epoll_torture")
        );
        assert_eq!(s.spec("wakeup").kind, Kind::Ktap);
        assert_eq!(s.spec("wakeup").ktap_prefix.as_deref(), Some("ept-wakeup"));
        assert_eq!(s.spec("kunit").kind, Kind::Kunit);
        assert_eq!(s.spec("epoll-selftests").kind, Kind::Kselftest);
        assert!(s.spec("soak").uses_duration);
        assert_eq!(s.spec("soak").run_deadline(Some(900)), 1200);
        assert_eq!(s.spec("stall").run_deadline(Some(900)), 240);
        assert_eq!(s.spec("nosuch").deadline_s, 300);
        assert_eq!(s.spec("nosuch").command, "sh /ept/scenarios/nosuch.sh");
    }

    #[test]
    fn command_lines() {
        let s = Scenarios::builtin();
        assert_eq!(
            s.spec("kunit").command_line(),
            "insmod /lib/modules/epoll_torture_kunit.ko; rmmod epoll_torture_kunit"
        );
        let inv = s.spec("inversion").command_line();
        assert!(
            inv.starts_with("ept-run --dups 4 --timeout 120 inversion"),
            "{inv}"
        );
        assert!(inv.ends_with(" $EPT_PARAMS"), "{inv}");
        let mut w = s.spec("wakeup");
        w.budget.args = "--max-misses 3".into();
        assert!(w.command_line().ends_with("--max-misses 3"));
        assert!(!w.command_line().contains("EPT_PARAMS"));
    }

    /// In a shared boot the hang-prone runs go last, and the runs that move
    /// kernel threads (housekeeping) after those that were measured without.
    #[test]
    fn shared_boot_order() {
        let s = Scenarios::builtin();
        let shared: Vec<ScenarioSpec> = s
            .names()
            .iter()
            .map(|n| s.spec(n))
            .filter(|x| x.share_boot)
            .collect();
        let max_plain = shared
            .iter()
            .filter(|x| !x.housekeeping)
            .map(|x| x.order)
            .max()
            .unwrap();
        for x in shared.iter().filter(|x| x.housekeeping) {
            assert!(
                x.order > max_plain,
                "{} runs before a plain scenario",
                x.name
            );
        }
        let last = shared.iter().max_by_key(|x| x.order).unwrap();
        assert_eq!(last.name, "cfs-stall");
        assert!(s.spec("stall").order > s.spec("epoll-selftests").order);
        for n in ["hung-task", "cycles", "debug-load"] {
            assert!(
                !s.spec(n).share_boot,
                "{n} changes the boot for the runs after it"
            );
        }
    }

    #[test]
    fn needs_and_features() {
        let s = Scenarios::builtin();
        let f = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        let k73 = f("module kunit preempt_rt cfs_throttle_deferred ep_seqcount ep_lock=spinlock_t");
        let k612 = f("kunit preempt_rt ep_seqcount ep_lock=rwlock_t");
        let cfs = s.spec("cfs-stall");
        let why = unmet_need(&cfs, &k73, &s.features).unwrap();
        assert!(why.contains("without cfs_throttle_deferred"), "{why}");
        assert!(why.contains("throttle_cfs_rq_work"), "{why}");
        assert_eq!(unmet_need(&cfs, &k612, &s.features), None);
        let inv = s.spec("inversion");
        assert_eq!(unmet_need(&inv, &k73, &s.features), None);
        assert!(unmet_need(&inv, &k612, &s.features)
            .unwrap()
            .contains("needs module"));
        let mut x = s.spec("inversion");
        x.needs = vec!["ep_lock=rwlock_t".into()];
        let why = unmet_need(&x, &k73, &s.features).unwrap();
        assert!(why.contains("(has ep_lock=spinlock_t)"), "{why}");
        assert_eq!(unmet_need(&x, &k612, &s.features), None);
        // A need naming no known feature is refused when the file loads.
        let bad = SCENARIOS_JSON.replace("\"!cfs_throttle_deferred\"", "\"!cfs_throttle_defered\"");
        assert!(Scenarios::from_json(&bad)
            .unwrap_err()
            .contains("cfs_throttle_defered"));
    }

    #[test]
    fn expect_keys() {
        assert_eq!(
            ExpectKey::parse("riscv64:rwlock@6.12").unwrap(),
            ExpectKey {
                arch: Some("riscv64".into()),
                variant: Some("rwlock".into()),
                base: Some("6.12".into())
            }
        );
        assert_eq!(ExpectKey::parse("*").unwrap().variant, None);
        assert_eq!(
            ExpectKey::parse("unpatched").unwrap().variant.as_deref(),
            Some("rwlock")
        );
        assert!(ExpectKey::parse("rwlock@").is_err());
        assert!(ExpectKey::parse(":rwlock").is_err());
    }

    /// The rules that expectations.json had, kept (it is folded into
    /// scenarios.json), plus the new variant and scenario.
    #[test]
    fn expectations() {
        use Verdict::*;
        let e = Expectations::builtin();
        assert_eq!(
            e.expected("x86_64", "rwlock", "inversion", "7.2.12"),
            [Inversion]
        );
        assert_eq!(
            e.expected("x86_64", "unpatched", "stall", "7.2.12"),
            [Hang, Stall]
        );
        assert_eq!(
            e.expected("riscv64", "rwlock", "epoll-selftests", "7.2"),
            [Pass]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "6.12.117"),
            [Hang, Stall]
        );
        assert_eq!(
            e.expected("x86_64", "spinlock", "cfs-stall", "6.12.117"),
            [Pass, Fail]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "7.2.12"),
            [Pass]
        );
        assert_eq!(e.expected("x86_64", "rwlock", "cfs-stall", "6.120"), [Pass]);
        // ept merge's qualified variants carry their base.
        assert_eq!(
            e.expected("x86_64", "rwlock@6.12", "cfs-stall", ""),
            [Hang, Stall]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "soak", "7.3"),
            [Hang, Stall, Inversion]
        );
        assert_eq!(e.expected("x86_64", "rwlock", "hung-task", "7.3"), [Stall]);
        // The merged v3 (lockless) has no selftest finding: PASS like the rest.
        assert_eq!(
            e.expected("x86_64", "lockless", "epoll-selftests", "7.3.4"),
            [Pass]
        );
        for v in ["spinlock", "patched", "lockless", "spinlock-2025"] {
            for s in [
                "inversion",
                "stall",
                "throughput",
                "soak",
                "smoke",
                "cfs-stall",
                "kunit",
            ] {
                assert_eq!(e.expected("x86_64", v, s, "7.2"), [Pass], "{v} {s}");
            }
        }
        // The wake-up bug class.
        for v in ["rwlock", "spinlock-2025"] {
            assert_eq!(e.expected("riscv64", v, "wakeup", "7.3.4"), [FalseNegative]);
        }
        assert_eq!(
            e.expected("x86_64", "lockless", "wakeup", "7.3.4"),
            [LostWakeup]
        );
        assert_eq!(e.expected("riscv64", "spinlock", "wakeup", "7.3.4"), [Pass]);
        // Unknown scenarios: the file's default.
        assert_eq!(e.expected("x86_64", "rwlock", "nosuch", "7.3"), [Pass]);
    }

    #[test]
    fn old_expectations_files_still_work() {
        use Verdict::*;
        let e = Expectations::from_json(
            r#"{"default": ["PASS"], "rules": [
                {"variant": "rwlock", "scenario": "cfs-stall", "base": "6.12", "expect": ["HANG"]},
                {"variant": "unpatched", "expect": ["INVERSION"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "6.12.9"),
            [Hang]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "7.3"),
            [Inversion]
        );
        assert_eq!(e.expected("x86_64", "spinlock", "stall", "7.3"), [Pass]);
    }

    #[test]
    fn most_specific_key_wins() {
        use Verdict::*;
        let text = SCENARIOS_JSON.replace(
            "\"expect\": { \"rwlock\": [\"INVERSION\"], \"*\": [\"PASS\"] }",
            "\"expect\": { \"rwlock\": [\"INVERSION\"], \"*\": [\"PASS\"], \"riscv64:*\": [\"ERROR\"], \
             \"riscv64:rwlock\": [\"HANG\"], \"*@6\": [\"FAIL\"], \"rwlock@6.12\": [\"STALL\"] }",
        );
        let e = Expectations::from_json(&text).unwrap();
        assert_eq!(
            e.expected("x86_64", "rwlock", "inversion", "7.3"),
            [Inversion]
        );
        assert_eq!(e.expected("riscv64", "rwlock", "inversion", "7.3"), [Hang]);
        assert_eq!(
            e.expected("riscv64", "spinlock", "inversion", "7.3"),
            [Error]
        );
        assert_eq!(
            e.expected("riscv64", "spinlock", "inversion", "6.1.2"),
            [Fail]
        );
        assert_eq!(
            e.expected("riscv64", "rwlock", "inversion", "6.12.1"),
            [Stall]
        );
    }

    #[test]
    fn precedence() {
        let mut v = Verdict::ALL.to_vec();
        v.sort_by_key(|v| std::cmp::Reverse(v.rank()));
        let names: Vec<_> = v.iter().map(|v| v.name()).collect();
        assert_eq!(
            names,
            [
                "CRASH",
                "HANG",
                "STALL",
                "LOST_WAKEUP",
                "FALSE_NEGATIVE",
                "INVERSION",
                "ERROR",
                "FAIL",
                "PASS",
                "NOT_APPLICABLE",
                "UNAVAILABLE"
            ]
        );
        assert_eq!(Verdict::parse("hang"), Some(Verdict::Hang));
        assert!(meets(Verdict::Unavailable, &[Verdict::Pass]));
        assert!(meets(Verdict::NotApplicable, &[Verdict::Hang]));
    }
}
