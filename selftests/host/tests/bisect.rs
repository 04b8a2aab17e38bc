//! `ept bisect`'s decision logic against recorded bisects: every
//! fixtures/bisect/*.json is the bisect.json of a real run (docs/bisect.md,
//! qemu/bisect-demo.sh), copied unchanged. Each step's verdict counts must
//! give the recorded decision again, the binary search replayed over the
//! recorded steps must probe the same kernels and name the same culprit,
//! and the confidence must follow from the steps.

use ept_host::bisect::{
    confidence, evaluate, render_md, search, side, Bisect, Outcome, Side, Sprt,
};
use ept_host::data::Verdict;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn recorded() -> Vec<(String, Bisect)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bisect");
    let mut v: Vec<(String, Bisect)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            let b: Bisect =
                serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), b)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn verdicts(counts: &BTreeMap<String, u32>) -> Vec<Verdict> {
    let mut v = Vec::new();
    for (name, n) in counts {
        let verdict = Verdict::parse(name).unwrap_or_else(|| panic!("verdict {name}"));
        v.extend(std::iter::repeat_n(verdict, *n as usize));
    }
    v
}

#[test]
fn recorded_steps_decide_the_same_again() {
    let all = recorded();
    assert!(!all.is_empty(), "no recorded bisect in fixtures/bisect/");
    for (name, b) in &all {
        for st in &b.steps {
            if st.eval.outcome == Outcome::BuildFailed {
                continue;
            }
            let e = evaluate(&b.sprt, &verdicts(&st.eval.counts));
            assert_eq!(e.outcome, st.eval.outcome, "{name} step {}", st.n);
            assert!((e.llr - st.eval.llr).abs() < 1e-9, "{name} step {}", st.n);
        }
    }
}

#[test]
fn recorded_bisects_find_the_same_culprit_again() {
    for (name, b) in recorded() {
        assert_eq!(b.status, "found", "{name}");
        let old = b.steps[0].eval.outcome;
        let (new_o, sprt): (Outcome, Sprt) = (b.steps[1].eval.outcome, b.sprt);
        assert!(
            old.decided() && new_o.decided() && old != new_o,
            "{name}: ends"
        );
        if b.mode == "series" {
            // Replay: the probe of prefix k answers what step "prefix k" recorded.
            let prefix = |s: &str| {
                s.strip_prefix("prefix ")
                    .and_then(|k| k.parse::<usize>().ok())
            };
            let lo = prefix(&b.steps[0].what).unwrap();
            let hi = prefix(&b.steps[1].what).unwrap();
            let rec: BTreeMap<usize, Outcome> = b
                .steps
                .iter()
                .filter_map(|s| Some((prefix(&s.what)?, s.eval.outcome)))
                .collect();
            let mut probed = vec![];
            let got = search(lo, hi, &mut |k| {
                probed.push(k);
                side(
                    *rec.get(&k)
                        .unwrap_or_else(|| panic!("{name}: prefix {k} never measured")),
                    old,
                )
            });
            let want: Vec<usize> = b.steps[2..]
                .iter()
                .filter_map(|s| prefix(&s.what))
                .collect();
            assert_eq!(probed, want, "{name}: the same probes in the same order");
            let k = got.unwrap_or_else(|c| panic!("{name}: ambiguous {c:?}"));
            let culprit = &b
                .steps
                .iter()
                .find(|s| prefix(&s.what) == Some(k))
                .unwrap()
                .patch;
            assert_eq!(Some(culprit), b.culprit.as_ref(), "{name}");
        } else {
            // Git: the culprit is the first probe on the new side with no
            // probe of an earlier... (git chose the order); check the
            // probes' sides against their outcomes.
            for s in &b.steps[2..] {
                let want = side(s.eval.outcome, old);
                assert_eq!(s.side, want, "{name} step {}", s.n);
            }
            let c = b.culprit.as_ref().unwrap();
            assert!(
                b.steps.iter().any(|s| &s.what == c && s.side == Side::New),
                "{name}: the culprit was measured on the new side"
            );
        }
        let (c, n) = confidence(&sprt, &b.steps);
        assert!((c - b.confidence.unwrap()).abs() < 1e-9, "{name}");
        assert!((n - b.nominal_confidence.unwrap()).abs() < 1e-9, "{name}");
        assert!(c > 0.95, "{name}: confidence {c}");
        assert!(render_md(&b).contains(&format!("**culprit: {}**", b.culprit.as_ref().unwrap())));
    }
}
