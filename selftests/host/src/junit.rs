//! `out/report/junit.xml`: the report as JUnit XML, in the form GitLab
//! (`artifacts:reports:junit`) and Jenkins (the JUnit plugin) read.
//!
//! One `<testsuite>` per (arch, variant), named
//! `epoll_torture.<arch>.<variant>`, and one `<testcase>` per run, named
//! `<arch>.<variant>.<scenario>.r<N>` with that suite name as `classname`
//! and `time` = the run's wall time. A test case tells whether the run met
//! its expectation (expectations.json), not whether the kernel is good:
//! an rwlock INVERSION that was expected passes.
//!
//! - `<skipped>`: UNAVAILABLE or NOT_APPLICABLE;
//! - `<error>`: an ERROR run (the harness could not measure);
//! - `<failure>`: any other verdict that does not meet the expectation;
//!
//! with `message` = the verdict (and the expected ones) and the first
//! evidence line, `type` = the verdict, and the findings as text. The
//! console log excerpt (its last lines, or the findings' lines when the log
//! is not at hand) goes into the test case's `<system-out>`.

use crate::data::Verdict;
use crate::report::Run;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Console log lines kept in a test case's system-out.
pub const LOG_LINES: usize = 200;
/// Bound on one test case's system-out (characters).
pub const LOG_CHARS: usize = 32 * 1024;

/// Escape text for XML 1.0 content and attribute values. Characters XML
/// 1.0 cannot carry at all (control characters other than tab, newline
/// and carriage return, e.g. the ESC of a terminal sequence) are written
/// as the visible text `\xNN`.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' => o.push(c),
            '\r' => o.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// The deciding evidence of a run in one line: the first quoted line of the
/// first finding with the run's verdict (else of the first finding), else
/// that finding's heading, else the run's reason.
pub fn first_evidence(r: &Run) -> String {
    let f = r
        .findings
        .iter()
        .find(|f| f.verdict == r.verdict)
        .or(r.findings.first());
    match f {
        Some(f) => f
            .lines
            .iter()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| f.what.clone()),
        None => r.reason.clone(),
    }
    .trim()
    .to_string()
}

/// The run's findings as text: `VERDICT: what (xN)` and its quoted lines.
pub fn evidence_text(r: &Run) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.reason);
    for f in &r.findings {
        let _ = writeln!(s, "{f}");
        for l in &f.lines {
            let _ = writeln!(s, "    {l}");
        }
    }
    if !r.waits.is_empty() {
        let _ = writeln!(s, "who waits on whom:");
        for w in &r.waits {
            let _ = writeln!(s, "    {w}");
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The run's console log on this machine: its recorded path, else a file
/// of the same name in `<out>/../logs` (a CI merge job that downloaded the
/// shards' out/logs next to its out/report).
pub fn resolve_log(r: &Run, out_dir: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(r.log.as_ref()?);
    if p.is_file() {
        return Some(p);
    }
    let alt = out_dir.parent()?.join("logs").join(p.file_name()?);
    alt.is_file().then_some(alt)
}

/// The last `max_chars` characters of `s`, cut at a line start when
/// possible.
pub fn tail_chars(s: &str, max_chars: usize) -> &str {
    let n = s.chars().count();
    if n <= max_chars {
        return s;
    }
    let start = s
        .char_indices()
        .nth(n - max_chars)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let rest = &s[start..];
    match rest.find('\n') {
        Some(i) if i + 1 < rest.len() => &rest[i + 1..],
        _ => rest,
    }
}

/// A console log excerpt of a run: the last `max_lines` lines of its log
/// (bounded to `max_chars` characters), or its findings' lines when the
/// log cannot be read here.
pub fn log_excerpt(r: &Run, out_dir: &Path, max_lines: usize, max_chars: usize) -> String {
    if let Some(p) = resolve_log(r, out_dir) {
        if let Ok(b) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&b).replace('\0', "");
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(max_lines);
            let body = lines[from..].join("\n");
            let head = format!(
                "console log {} (last {} of {} lines)\n",
                p.display(),
                lines.len() - from,
                lines.len()
            );
            let room = max_chars.saturating_sub(head.chars().count());
            return head + tail_chars(&body, room);
        }
    }
    let mut s = String::from("console log not available here; the findings' lines:\n");
    for f in &r.findings {
        for l in &f.lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    tail_chars(&s, max_chars).to_string()
}

/// How a run shows in JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Failure,
    Error,
    Skipped,
}

pub fn outcome(r: &Run) -> Outcome {
    match r.verdict {
        Verdict::Unavailable | Verdict::NotApplicable => Outcome::Skipped,
        Verdict::Error => Outcome::Error,
        _ if !r.meets => Outcome::Failure,
        _ => Outcome::Pass,
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for Unix seconds.
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86400) as i64;
    let sod = unix % 86400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: f64,
}

impl Counts {
    fn add(&mut self, r: &Run) {
        self.tests += 1;
        self.time += r.elapsed_s.max(0.0);
        match outcome(r) {
            Outcome::Failure => self.failures += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Pass => {}
        }
    }

    fn attrs(&self) -> String {
        format!(
            r#"tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}""#,
            self.tests, self.failures, self.errors, self.skipped, self.time
        )
    }
}

/// Build-info keys shown as suite properties.
const PROPERTIES: [&str; 8] = [
    "BASE_PKG",
    "BASE_DEB_VERSION",
    "BASE_KERNELVERSION",
    "KERNEL_RELEASE",
    "LOCK_TYPE",
    "VARIANT_PATCHES",
    "TOOLCHAIN",
    "DEBUG",
];

/// The test case names of runs, in order: `arch.variant.scenario.rN`;
/// the k-th repetition of a name (several logs of one cell judged
/// together) gets ` (k)`, so every name is unique.
pub fn case_names(runs: &[Run]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    runs.iter()
        .map(|r| {
            let base = format!("{}.{}.{}.r{}", r.arch, r.variant, r.scenario, r.repeat);
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base} ({n})")
            }
        })
        .collect()
}

/// junit.xml for a report; `out_dir` is where it is written (to find the
/// console logs of a merged report).
pub fn render(rep: &crate::report::Report, out_dir: &Path) -> String {
    let names = case_names(&rep.runs);
    let mut suites: BTreeMap<(String, String), Vec<(&Run, &String)>> = BTreeMap::new();
    for (r, n) in rep.runs.iter().zip(&names) {
        suites
            .entry((r.arch.clone(), r.variant.clone()))
            .or_default()
            .push((r, n));
    }
    let mut total = Counts::default();
    for r in &rep.runs {
        total.add(r);
    }
    let e = xml_escape;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, r#"<testsuites name="epoll-torture" {}>"#, total.attrs());
    for ((arch, variant), runs) in &suites {
        let mut c = Counts::default();
        for (r, _) in runs {
            c.add(r);
        }
        let class = format!("epoll_torture.{arch}.{variant}");
        let _ = writeln!(
            s,
            r#"  <testsuite name="{}" {} timestamp="{}">"#,
            e(&class),
            c.attrs(),
            iso8601(rep.generated_unix)
        );
        if let Some(b) = runs.iter().map(|(r, _)| &r.build).find(|b| !b.is_empty()) {
            s.push_str("    <properties>\n");
            for k in PROPERTIES {
                if let Some(v) = b.get(k) {
                    let _ = writeln!(s, r#"      <property name="{k}" value="{}"/>"#, e(v.trim()));
                }
            }
            s.push_str("    </properties>\n");
        }
        for (r, name) in runs {
            let _ = writeln!(
                s,
                r#"    <testcase name="{}" classname="{}" time="{:.3}">"#,
                e(name),
                e(&class),
                r.elapsed_s.max(0.0)
            );
            let exp: Vec<String> = r.expected.iter().map(|v| v.to_string()).collect();
            let first = first_evidence(r);
            match outcome(r) {
                Outcome::Pass => {}
                Outcome::Skipped => {
                    let _ = writeln!(
                        s,
                        r#"      <skipped message="{}"/>"#,
                        e(&format!("{}: {}", r.verdict, r.reason))
                    );
                }
                o => {
                    let tag = if o == Outcome::Error {
                        "error"
                    } else {
                        "failure"
                    };
                    let _ = writeln!(
                        s,
                        r#"      <{tag} message="{}" type="{}">{}</{tag}>"#,
                        e(&format!(
                            "{} (expected {}): {}",
                            r.verdict,
                            exp.join("/"),
                            first
                        )),
                        r.verdict,
                        e(tail_chars(&evidence_text(r), LOG_CHARS))
                    );
                }
            }
            let _ = writeln!(
                s,
                "      <system-out>{}</system-out>",
                e(&log_excerpt(r, out_dir, LOG_LINES, LOG_CHARS))
            );
            s.push_str("    </testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Finding;
    use crate::report::Report;

    fn run(scenario: &str, verdict: Verdict, expected: Verdict) -> Run {
        Run {
            cell: format!("x86_64-rwlock-{scenario}-r1"),
            arch: "x86_64".into(),
            variant: "rwlock".into(),
            scenario: scenario.into(),
            repeat: 1,
            verdict,
            expected: vec![expected],
            meets: verdict == expected
                || matches!(verdict, Verdict::Unavailable | Verdict::NotApplicable),
            reason: format!("why <{verdict}>"),
            findings: vec![Finding {
                verdict,
                what: "the heading".into(),
                lines: vec![
                    "[+0001.000] first & \"evidence\"\u{1b}[0m".into(),
                    "second".into(),
                ],
                count: 2,
            }],
            waits: vec![],
            notes: vec![],
            metrics: Default::default(),
            build: [("KERNEL_RELEASE".to_string(), "7.3.4".to_string())].into(),
            log: Some("/nonexistent/x.log".into()),
            elapsed_s: 12.5,
            vm_rc: Some(0),
            boot: None,
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1b}[0m\r\n\t"),
            "a&lt;b&gt;&amp;&quot;c&apos;\\x1b[0m&#13;\n\t"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(iso8601(1_764_600_000), "2025-12-01T14:40:00");
    }

    #[test]
    fn tail_is_bounded_and_starts_a_line() {
        let s = "aaaa\nbbbb\ncccc\n";
        assert_eq!(tail_chars(s, 100), s);
        assert_eq!(tail_chars(s, 7), "cccc\n");
        assert!(tail_chars("äöüäöü", 3).chars().count() <= 3);
    }

    #[test]
    fn one_case_per_run_with_outcomes() {
        let rep = Report::new(
            vec![
                run("inversion", Verdict::Inversion, Verdict::Inversion),
                run("stall", Verdict::Pass, Verdict::Stall),
                run("smoke", Verdict::Error, Verdict::Pass),
                run("cfs-stall", Verdict::NotApplicable, Verdict::Pass),
            ],
            None,
        );
        let x = render(&rep, Path::new("/nonexistent/out/report"));
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"epoll-torture\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"50.000\">"), "{x}");
        assert_eq!(x.matches("<testcase ").count(), 4);
        assert!(x.contains(r#"<testcase name="x86_64.rwlock.inversion.r1" classname="epoll_torture.x86_64.rwlock" time="12.500">"#));
        assert!(x.contains(
            r#"<failure message="PASS (expected STALL): [+0001.000] first &amp; &quot;evidence&quot;\x1b[0m" type="PASS">"#
        ), "{x}");
        assert!(x.contains(r#"<error message="ERROR (expected PASS): [+0001.000] first"#));
        assert!(x.contains(r#"<skipped message="NOT_APPLICABLE: why &lt;NOT_APPLICABLE&gt;"/>"#));
        // The log is not here: the findings' lines stand in for it.
        assert!(x.contains("<system-out>console log not available here"));
        assert!(x.contains(r#"<property name="KERNEL_RELEASE" value="7.3.4"/>"#));
        assert!(!x.contains('\u{1b}'));
    }

    #[test]
    fn repeated_names_are_numbered() {
        let r = run("smoke", Verdict::Pass, Verdict::Pass);
        let mut r2 = r.clone();
        r2.repeat = 2;
        assert_eq!(
            case_names(&[r.clone(), r2, r.clone(), r]),
            [
                "x86_64.rwlock.smoke.r1",
                "x86_64.rwlock.smoke.r2",
                "x86_64.rwlock.smoke.r1 (2)",
                "x86_64.rwlock.smoke.r1 (3)"
            ]
        );
    }

    #[test]
    fn log_tail_from_the_logs_dir_next_to_the_report() {
        let d = std::env::temp_dir().join(format!("ept-junit-{}", std::process::id()));
        std::fs::create_dir_all(d.join("logs")).unwrap();
        let text: String = (1..=300).map(|i| format!("line {i}\n")).collect();
        std::fs::write(d.join("logs/x.log"), text).unwrap();
        let r = run("smoke", Verdict::Pass, Verdict::Pass);
        let ex = log_excerpt(&r, &d.join("report"), 200, 100_000);
        assert!(ex.contains("(last 200 of 300 lines)"), "{ex}");
        assert!(ex.contains("\nline 101\n") && ex.ends_with("line 300"));
        assert!(!ex.contains("line 100\n"));
        let short = log_excerpt(&r, &d.join("report"), 200, 300);
        assert!(short.chars().count() <= 300 && short.ends_with("line 300"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
