//! The data files: scenarios.json (default list, deadlines, thresholds) and
//! expectations.json (expected verdict per variant/scenario). Both are
//! compiled in; `--expectations FILE` / `--scenarios-file FILE` override.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const SCENARIOS_JSON: &str = include_str!("../scenarios.json");
pub const EXPECTATIONS_JSON: &str = include_str!("../expectations.json");

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

/// What a scenario's steps report, so the judge knows what a complete run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The epoll_torture module's KTAP result is required.
    Module,
    /// The kernel's epoll selftests: TAP and EPT-SELFTEST lines.
    Kselftest,
    /// Only the steps' exit status.
    #[default]
    Rc,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawSpec {
    deadline_s: Option<u64>,
    kind: Option<Kind>,
    not_ok: Option<Verdict>,
    latency_threshold_us: Option<f64>,
    hang_after_s: Option<f64>,
    stall_min_s: Option<f64>,
    uses_duration: Option<bool>,
    emulation_failures: Option<BTreeMap<String, String>>,
    selftests_gate: Option<bool>,
}

/// Everything the runner and the judge need to know about one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    pub name: String,
    pub deadline_s: u64,
    pub kind: Kind,
    pub not_ok: Verdict,
    pub latency_threshold_us: Option<f64>,
    pub hang_after_s: f64,
    pub stall_min_s: f64,
    pub uses_duration: bool,
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

#[derive(Debug, Clone, Deserialize)]
struct RawScenarios {
    default: Vec<String>,
    defaults: RawSpec,
    scenarios: BTreeMap<String, RawSpec>,
}

#[derive(Debug, Clone)]
pub struct Scenarios {
    pub default: Vec<String>,
    defaults: RawSpec,
    known: BTreeMap<String, RawSpec>,
}

impl Scenarios {
    pub fn from_json(text: &str) -> Result<Scenarios, String> {
        let raw: RawScenarios =
            serde_json::from_str(text).map_err(|e| format!("scenarios file: {e}"))?;
        Ok(Scenarios {
            default: raw.default,
            defaults: raw.defaults,
            known: raw.scenarios,
        })
    }

    pub fn builtin() -> Scenarios {
        Scenarios::from_json(SCENARIOS_JSON).expect("built-in scenarios.json is valid")
    }

    pub fn names(&self) -> Vec<String> {
        self.known.keys().cloned().collect()
    }

    pub fn is_known(&self, name: &str) -> bool {
        self.known.contains_key(name)
    }

    /// The spec of a scenario; an unknown name gets the defaults.
    pub fn spec(&self, name: &str) -> ScenarioSpec {
        let s = self.known.get(name).cloned().unwrap_or_default();
        let d = &self.defaults;
        ScenarioSpec {
            name: name.to_string(),
            deadline_s: s.deadline_s.or(d.deadline_s).unwrap_or(300),
            kind: s.kind.or(d.kind).unwrap_or_default(),
            not_ok: s.not_ok.or(d.not_ok).unwrap_or(Verdict::Inversion),
            latency_threshold_us: s.latency_threshold_us.or(d.latency_threshold_us),
            hang_after_s: s.hang_after_s.or(d.hang_after_s).unwrap_or(30.0),
            stall_min_s: s.stall_min_s.or(d.stall_min_s).unwrap_or(1.0),
            uses_duration: s.uses_duration.or(d.uses_duration).unwrap_or(false),
            emulation_failures: s.emulation_failures.unwrap_or_default(),
            baseline_failures: None,
            selftests_gate: s.selftests_gate.or(d.selftests_gate).unwrap_or(true),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Rule {
    variant: Option<String>,
    scenario: Option<String>,
    arch: Option<String>,
    base: Option<String>,
    expect: Vec<Verdict>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expectations {
    default: Vec<Verdict>,
    rules: Vec<Rule>,
}

impl Expectations {
    pub fn from_json(text: &str) -> Result<Expectations, String> {
        serde_json::from_str(text).map_err(|e| format!("expectations file: {e}"))
    }

    pub fn builtin() -> Expectations {
        Expectations::from_json(EXPECTATIONS_JSON).expect("built-in expectations.json is valid")
    }

    /// Expected verdicts for a run. `base` is BASE_KERNELVERSION when known.
    pub fn expected(&self, arch: &str, variant: &str, scenario: &str, base: &str) -> Vec<Verdict> {
        let variant = canon_variant(variant);
        for r in &self.rules {
            let ok = r.variant.as_deref().is_none_or(|v| v == variant)
                && r.scenario.as_deref().is_none_or(|s| s == scenario)
                && r.arch.as_deref().is_none_or(|a| a == arch)
                && r.base
                    .as_deref()
                    .is_none_or(|b| base == b || base.starts_with(&format!("{b}.")));
            if ok {
                return r.expect.clone();
            }
        }
        self.default.clone()
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
    fn builtin_files_parse() {
        let s = Scenarios::builtin();
        for d in &s.default {
            assert!(s.is_known(d), "default scenario {d} has no spec");
        }
        assert_eq!(s.spec("inversion").kind, Kind::Module);
        assert_eq!(s.spec("epoll-selftests").kind, Kind::Kselftest);
        assert!(s.spec("soak").uses_duration);
        assert_eq!(s.spec("nosuch").deadline_s, 300);
    }

    #[test]
    fn expectations_from_the_brief() {
        let e = Expectations::builtin();
        assert_eq!(
            e.expected("x86_64", "rwlock", "inversion", "7.2.12"),
            vec![Verdict::Inversion]
        );
        assert_eq!(
            e.expected("x86_64", "unpatched", "stall", "7.2.12"),
            vec![Verdict::Hang, Verdict::Stall]
        );
        assert_eq!(
            e.expected("riscv64", "rwlock", "epoll-selftests", "7.2"),
            vec![Verdict::Pass]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "6.12.117"),
            vec![Verdict::Hang, Verdict::Stall]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "7.2.12"),
            vec![Verdict::Pass]
        );
        assert_eq!(
            e.expected("x86_64", "rwlock", "cfs-stall", "6.120"),
            vec![Verdict::Pass]
        );
        for v in ["spinlock", "patched", "lockless"] {
            for s in [
                "inversion",
                "stall",
                "throughput",
                "soak",
                "smoke",
                "cfs-stall",
            ] {
                assert_eq!(
                    e.expected("x86_64", v, s, "7.2"),
                    vec![Verdict::Pass],
                    "{v} {s}"
                );
            }
        }
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
    }
}
