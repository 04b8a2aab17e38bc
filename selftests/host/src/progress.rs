//! `ept run --json-progress`: one JSON object per line on stdout for each
//! step of a matrix run, for CI log parsers and wrappers. The human
//! progress lines go to stderr while it is on (stdout carries only JSON).
//!
//! Every line has `event` (which step; the names below are stable), `v`
//! (the schema version, 1) and `time` (Unix seconds, float), then the
//! event's fields:
//!
//! | event | fields |
//! |---|---|
//! | `start` | `cells`, `jobs`, `shard` (`"i/n"` or null), `out`, `logs` |
//! | `build_start` | `arch`, `variant`, `log` |
//! | `build_end` | `arch`, `variant`, `status` (`ok`, `unavailable`, `failed`), `elapsed_s`, `detail` (null when ok) |
//! | `boot_start` | `cell`, `arch`, `variant`, `scenario`, `repeat`, `deadline_s`, `log` |
//! | `boot_end` | `cell`, `elapsed_s`, `vm_rc` (run-vm.sh's exit status or null), `log` (null when none was written) |
//! | `verdict` | `cell`, `arch`, `variant`, `scenario`, `repeat`, `verdict`, `expected`, `meets`, `reason`, `elapsed_s`, `done`, `total` |
//! | `end` | `runs`, `meet`, `mismatch`, `errors`, `exit_code`, `out`, `files` |
//!
//! A run that never boots (build failed, variant unavailable, no scenario
//! script) has a `verdict` event and no `boot_*` events. Fields are only
//! ever added, never renamed or removed, within one `v`.

use crate::data::Verdict;
use crate::report::Run;
use serde::Serialize;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// The schema version every line carries as `v`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        cells: usize,
        jobs: usize,
        shard: Option<String>,
        out: String,
        logs: String,
    },
    BuildStart {
        arch: String,
        variant: String,
        log: String,
    },
    BuildEnd {
        arch: String,
        variant: String,
        status: String,
        elapsed_s: f64,
        detail: Option<String>,
    },
    BootStart {
        cell: String,
        arch: String,
        variant: String,
        scenario: String,
        repeat: u32,
        deadline_s: u64,
        log: String,
    },
    BootEnd {
        cell: String,
        elapsed_s: f64,
        vm_rc: Option<i32>,
        log: Option<String>,
    },
    Verdict {
        cell: String,
        arch: String,
        variant: String,
        scenario: String,
        repeat: u32,
        verdict: Verdict,
        expected: Vec<Verdict>,
        meets: bool,
        reason: String,
        elapsed_s: f64,
        done: usize,
        total: usize,
    },
    End {
        runs: usize,
        meet: usize,
        mismatch: usize,
        errors: usize,
        exit_code: i32,
        out: String,
        files: Vec<String>,
    },
}

impl Event {
    /// The `verdict` event of a finished run (`done` of `total`).
    pub fn verdict(done: usize, total: usize, r: &Run) -> Event {
        Event::Verdict {
            cell: r.cell.clone(),
            arch: r.arch.clone(),
            variant: r.variant.clone(),
            scenario: r.scenario.clone(),
            repeat: r.repeat,
            verdict: r.verdict,
            expected: r.expected.clone(),
            meets: r.meets,
            reason: r.reason.clone(),
            elapsed_s: round3(r.elapsed_s),
            done,
            total,
        }
    }
}

/// Seconds rounded to milliseconds (keeps the lines short).
pub fn round3(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    event: &'a Event,
    v: u32,
    time: f64,
}

/// One JSON line for `ev` (no trailing newline).
pub fn to_line(ev: &Event, time: f64) -> String {
    serde_json::to_string(&Line {
        event: ev,
        v: SCHEMA_VERSION,
        time: round3(time),
    })
    .unwrap_or_default()
}

/// Where `ept run` reports progress: human lines (stdout, or stderr when
/// JSON is on) and, with `--json-progress`, the JSON events on stdout.
/// The default is human lines only. Cloning shares the sink.
#[derive(Clone, Default)]
pub struct Progress {
    json: bool,
    /// Captured lines instead of stdout (tests).
    sink: Option<Arc<Mutex<Vec<String>>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("json", &self.json)
            .field("captured", &self.sink.is_some())
            .finish()
    }
}

impl Progress {
    /// Human lines on stdout only (today's behaviour).
    pub fn human() -> Progress {
        Progress::default()
    }

    /// JSON events on stdout, human lines on stderr.
    pub fn json() -> Progress {
        Progress {
            json: true,
            sink: None,
        }
    }

    /// JSON events into the returned buffer (tests).
    pub fn capture() -> (Progress, Arc<Mutex<Vec<String>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (
            Progress {
                json: true,
                sink: Some(Arc::clone(&buf)),
            },
            buf,
        )
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Emit one event (a no-op without --json-progress).
    pub fn emit(&self, ev: Event) {
        if !self.json {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let line = to_line(&ev, now);
        match &self.sink {
            Some(s) => s.lock().unwrap_or_else(|e| e.into_inner()).push(line),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    /// A human progress line: stdout, or stderr when stdout carries JSON.
    pub fn human_line(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_event_v_and_time() {
        let l = to_line(
            &Event::BuildEnd {
                arch: "x86_64".into(),
                variant: "rwlock".into(),
                status: "ok".into(),
                elapsed_s: 1.23456,
                detail: None,
            },
            1700000000.12345,
        );
        assert_eq!(
            l,
            r#"{"event":"build_end","arch":"x86_64","variant":"rwlock","status":"ok","elapsed_s":1.23456,"detail":null,"v":1,"time":1700000000.123}"#
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["event"], "build_end");
    }

    #[test]
    fn event_names_are_stable() {
        let names: Vec<String> = [
            Event::Start {
                cells: 1,
                jobs: 1,
                shard: Some("1/2".into()),
                out: "o".into(),
                logs: "l".into(),
            },
            Event::BuildStart {
                arch: "a".into(),
                variant: "v".into(),
                log: "l".into(),
            },
            Event::BootStart {
                cell: "c".into(),
                arch: "a".into(),
                variant: "v".into(),
                scenario: "s".into(),
                repeat: 1,
                deadline_s: 9,
                log: "l".into(),
            },
            Event::BootEnd {
                cell: "c".into(),
                elapsed_s: 1.0,
                vm_rc: Some(0),
                log: None,
            },
            Event::End {
                runs: 1,
                meet: 1,
                mismatch: 0,
                errors: 0,
                exit_code: 0,
                out: "o".into(),
                files: vec![],
            },
        ]
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&to_line(e, 0.0)).unwrap();
            v["event"].as_str().unwrap().to_string()
        })
        .collect();
        assert_eq!(
            names,
            ["start", "build_start", "boot_start", "boot_end", "end"]
        );
    }

    #[test]
    fn capture_only_when_json() {
        let (p, buf) = Progress::capture();
        p.emit(Event::BuildStart {
            arch: "a".into(),
            variant: "v".into(),
            log: "l".into(),
        });
        assert_eq!(buf.lock().unwrap().len(), 1);
        assert!(buf.lock().unwrap()[0].starts_with(r#"{"event":"build_start""#));
        assert!(!Progress::human().is_json());
    }
}
