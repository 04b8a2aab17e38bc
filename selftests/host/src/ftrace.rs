//! ftrace text in a console log (TRACE=1, docs/trace.md): typed records.
//!
//! Two sources, both parsed into [`Record`]s:
//! - the guest's dump (`selftests/scenarios/trace-dump.sh`): the `trace` /
//!   `snapshot` file text, each line prefixed `ftrace: `, between
//!   `EPT-TRACE-BEGIN reason=.. [lat_us=N] window_ms=.. end_s=..` and
//!   `EPT-TRACE-END`; timestamps in seconds (`12.345678:`);
//! - SysRq-z (`ftrace_dump()`, the host's hang path): kernel records between
//!   `Dumping ftrace buffer:` and the closing dash line, in the latency
//!   format (`comm-pid  CPU flags  NNNus : event: ...`, comm cut to 8
//!   characters, time in us since the buffer's start). Full task names come
//!   back from the sched_switch / sched_waking fields.

use crate::log::{ConsoleLog, LogLine};
use std::collections::BTreeMap;

/// The prefix of the judge's note that carries a window's root cause
/// (`root cause (worst): ...`, `root cause (hang): ...`).
pub const NOTE: &str = "root cause";

/// `TRACE=1` in the environment (`ept run --trace` sets it).
pub fn enabled() -> bool {
    std::env::var("TRACE").is_ok_and(|v| v == "1")
}

/// One trace event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The task that was current when the event fired (`<idle>` for pid 0).
    pub task: String,
    pub pid: u32,
    pub cpu: u32,
    /// Seconds (trace clock).
    pub ts: f64,
    pub event: String,
    /// `key=value` fields of the event; the rest of the text in `text`.
    pub fields: BTreeMap<String, String>,
    /// The event's own text after `event: `.
    pub text: String,
}

impl Record {
    pub fn field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
    pub fn num(&self, k: &str) -> Option<i64> {
        self.field(k).and_then(|v| v.parse().ok())
    }
}

/// Where a window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The guest's dump of the snapshot or frozen buffer.
    Guest,
    /// SysRq-z on a frozen guest.
    SysrqZ,
}

/// One dumped trace window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub source: Source,
    /// `worst` (a snapshot at a new worst call) or `hang`.
    pub reason: String,
    /// The worst call's latency (us) when reason is `worst`.
    pub lat_us: Option<u64>,
    pub window_ms: Option<u64>,
    /// The event text lines as the kernel wrote them (for `.trace.txt`).
    pub raw: Vec<String>,
    pub records: Vec<Record>,
}

/// `key=value` words of an event's text (values end at a space; `==>` and
/// other words are skipped). A value may contain `=` (kept whole).
pub fn fields(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for w in text.split_whitespace() {
        if let Some((k, v)) = w.split_once('=') {
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }
    m
}

/// `comm-pid` -> (comm, pid); the comm may itself contain `-`.
fn task_pid(s: &str) -> Option<(String, u32)> {
    let s = s.trim();
    let (comm, pid) = s.rsplit_once('-')?;
    Some((comm.to_string(), pid.parse().ok()?))
}

/// `event: text` after the timestamp.
fn event_text(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_start();
    let (ev, text) = rest.split_once(':')?;
    if ev.is_empty() || !ev.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((ev.to_string(), text.trim_start().to_string()))
}

/// A line of the `trace` file format:
/// `  ept_cons/0-123     [001] d..2.   12.345678: sched_switch: prev_comm=...`
/// (an optional `(tgid)` column before the CPU is accepted).
pub fn parse_line(line: &str) -> Option<Record> {
    let open = line.find(" [")?;
    let close = open + line[open..].find(']')?;
    let cpu: u32 = line[open + 2..close].trim().parse().ok()?;
    let mut head = line[..open].trim_end();
    if head.ends_with(')') {
        head = head[..head.rfind('(')?].trim_end();
    }
    let (task, pid) = task_pid(head)?;
    // After the CPU: optional flags, then "SECONDS.FRACTION:".
    let after = &line[close + 1..];
    let mut ts = None;
    let mut pos = 0;
    for w in after.split_whitespace() {
        let at = after[pos..].find(w).map(|i| i + pos)?;
        pos = at + w.len();
        if let Some(t) = w.strip_suffix(':') {
            if t.contains('.') && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
                ts = t.parse::<f64>().ok();
                break;
            }
        }
    }
    let ts = ts?;
    let (event, text) = event_text(&after[pos..])?;
    Some(Record {
        task,
        pid,
        cpu,
        ts,
        fields: fields(&text),
        event,
        text,
    })
}

/// A line of `ftrace_dump()` (latency format):
/// `ept_cons-123      1d..2. 5123456us : sched_switch: prev_comm=...`.
pub fn parse_lat_line(line: &str) -> Option<Record> {
    let us = line.find("us")?;
    // "...NNNNus" then an optional mark character, then ": ".
    let before = &line[..us];
    let digits = before.len()
        - before
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .count();
    let ts_us: u64 = before[digits..].parse().ok()?;
    let head = before[..digits].trim_end();
    let colon = us + line[us..].find(": ")?;
    if colon > us + 4 {
        return None;
    }
    // head: "comm-pid  CPUflags"
    let (tp, cf) = head.rsplit_once(char::is_whitespace)?;
    let cpu_digits: String = cf.chars().take_while(char::is_ascii_digit).collect();
    let cpu: u32 = cpu_digits.parse().ok()?;
    let (task, pid) = task_pid(tp)?;
    let (event, text) = event_text(&line[colon + 1..])?;
    Some(Record {
        task,
        pid,
        cpu,
        ts: ts_us as f64 / 1e6,
        fields: fields(&text),
        event,
        text,
    })
}

/// Full task names from the events that carry them (sched_switch's
/// prev/next_comm, sched_waking's and sched_pi_setprio's comm), applied to
/// every record whose `task` is a cut-off prefix of its pid's name.
pub fn fix_names(recs: &mut [Record]) {
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for r in recs.iter() {
        for (c, p) in [
            ("prev_comm", "prev_pid"),
            ("next_comm", "next_pid"),
            ("comm", "pid"),
        ] {
            if let (Some(c), Some(p)) = (r.field(c), r.num(p)) {
                names.insert(p as u32, c.to_string());
            }
        }
    }
    for r in recs.iter_mut() {
        if r.pid == 0 {
            r.task = "<idle>".into();
        } else if let Some(n) = names.get(&r.pid) {
            if n.starts_with(&r.task) || r.task == "<...>" {
                r.task = n.clone();
            }
        }
    }
}

/// The trace lines of one kernel record of a SysRq-z dump. `ftrace_dump()`
/// prints a buffer's overrun as `CPU:N [LOST M EVENTS]` and the next event
/// in one record (a newline inside it; `\x0a` in the `/dev/kmsg` copy):
/// the event is kept, the overrun note is not a record.
fn dump_parts(t: &str) -> impl Iterator<Item = &str> {
    t.split('\n')
        .flat_map(|p| p.split("\\x0a"))
        .map(str::trim_end)
        .filter(|p| !(p.starts_with("CPU:") && p.contains("[LOST ")))
}

/// Every trace window of a run's lines, in log order.
pub fn windows(lines: &[LogLine]) -> Vec<Window> {
    let mut out = Vec::new();
    let mut cur: Option<Window> = None;
    let mut dump: Option<Window> = None;
    let mut dashes = 0;
    for l in lines {
        let t = l.text.as_str();
        if let Some(rest) = t.strip_prefix("EPT-TRACE-BEGIN ") {
            let kv = crate::log::kv_pairs(rest);
            cur = Some(Window {
                source: Source::Guest,
                reason: kv.get("reason").cloned().unwrap_or_default(),
                lat_us: kv.get("lat_us").and_then(|v| v.parse().ok()),
                window_ms: kv.get("window_ms").and_then(|v| v.parse().ok()),
                raw: vec![],
                records: vec![],
            });
            continue;
        }
        if t.starts_with("EPT-TRACE-END") {
            if let Some(mut w) = cur.take() {
                fix_names(&mut w.records);
                out.push(w);
            }
            continue;
        }
        if let Some(w) = cur.as_mut() {
            if let Some(ev) = t.strip_prefix("ftrace: ") {
                if let Some(r) = parse_line(ev) {
                    w.raw.push(ev.to_string());
                    w.records.push(r);
                }
            }
            continue;
        }
        if t.starts_with("Dumping ftrace buffer:") {
            dump = Some(Window {
                source: Source::SysrqZ,
                reason: "hang".into(),
                lat_us: None,
                window_ms: None,
                raw: vec![],
                records: vec![],
            });
            dashes = 0;
            continue;
        }
        if let Some(w) = dump.as_mut() {
            if t.trim_start().starts_with("-----") {
                dashes += 1;
                if dashes == 2 {
                    let mut w = dump.take().unwrap_or_else(|| unreachable!());
                    fix_names(&mut w.records);
                    out.push(w);
                }
                continue;
            }
            if t.contains("(ftrace buffer empty)") {
                dump = None;
                continue;
            }
            for part in dump_parts(t) {
                if let Some(r) = parse_lat_line(part) {
                    w.raw.push(part.to_string());
                    w.records.push(r);
                }
            }
            continue;
        }
        // A dump whose head was lost (the reader of /dev/kmsg overrun by
        // ftrace_dump(), seen on a frozen guest): its first kernel record in
        // the trace's own format starts it, past the header's dashes.
        if l.is_kernel() {
            let recs: Vec<(&str, Record)> = dump_parts(t)
                .filter_map(|p| parse_lat_line(p).map(|r| (p, r)))
                .collect();
            if !recs.is_empty() {
                dump = Some(Window {
                    source: Source::SysrqZ,
                    reason: "hang".into(),
                    lat_us: None,
                    window_ms: None,
                    raw: recs.iter().map(|(p, _)| p.to_string()).collect(),
                    records: recs.into_iter().map(|(_, r)| r).collect(),
                });
                dashes = 1;
            }
        }
    }
    // A dump cut off by the kill: keep what arrived.
    for mut w in [cur, dump].into_iter().flatten() {
        if !w.records.is_empty() {
            fix_names(&mut w.records);
            out.push(w);
        }
    }
    out
}

/// Every window of a whole log.
pub fn log_windows(log: &ConsoleLog) -> Vec<Window> {
    windows(&log.lines)
}

/// The window as ftrace text that trace-cmd and Perfetto read (the `trace`
/// file format with its header; a SysRq-z window is rewritten into it).
pub fn to_text(w: &Window) -> String {
    let mut s = String::from("# tracer: nop\n#\n");
    s.push_str(&format!(
        "# epoll-torture trace window: reason={} source={}{}{}\n",
        w.reason,
        match w.source {
            Source::Guest => "guest",
            Source::SysrqZ => "sysrq-z",
        },
        w.lat_us.map(|l| format!(" lat_us={l}")).unwrap_or_default(),
        w.window_ms
            .map(|m| format!(" window_ms={m}"))
            .unwrap_or_default()
    ));
    s.push_str("#           TASK-PID     CPU#  TIMESTAMP  FUNCTION\n");
    s.push_str("#              | |         |       |         |\n");
    match w.source {
        Source::Guest => {
            for l in &w.raw {
                s.push_str(l);
                s.push('\n');
            }
        }
        Source::SysrqZ => {
            for r in &w.records {
                s.push_str(&format!(
                    "{:>16}-{:<7} [{:03}] ..... {:12.6}: {}: {}\n",
                    r.task.replace(' ', "_"),
                    r.pid,
                    r.cpu,
                    r.ts,
                    r.event,
                    r.text
                ));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_file_line() {
        let r = parse_line("      ept_cons/0-123     [001] d..2.    12.345678: sched_switch: prev_comm=ept_cons/0 prev_pid=123 prev_prio=69 prev_state=D ==> next_comm=swapper/1 next_pid=0 next_prio=120").unwrap();
        assert_eq!((r.task.as_str(), r.pid, r.cpu), ("ept_cons/0", 123, 1));
        assert!((r.ts - 12.345678).abs() < 1e-9);
        assert_eq!(r.event, "sched_switch");
        assert_eq!(r.field("prev_state"), Some("D"));
        assert_eq!(r.num("next_prio"), Some(120));
        let r = parse_line("kworker/0:1-events-7 (    7) [000] .....  1.000001: contention_begin: 00000000deadbeef (flags=WRITE|RT)").unwrap();
        assert_eq!((r.task.as_str(), r.pid), ("kworker/0:1-events", 7));
        assert_eq!(r.text, "00000000deadbeef (flags=WRITE|RT)");
        assert!(parse_line("no trace here").is_none());
    }

    #[test]
    fn lat_line() {
        let r = parse_lat_line("ept_cons-123      1d..2. 5123456us : sched_switch: prev_comm=ept_cons/0 prev_pid=123 prev_prio=69 prev_state=D ==> next_comm=swapper/1 next_pid=0 next_prio=120").unwrap();
        assert_eq!((r.task.as_str(), r.pid, r.cpu), ("ept_cons", 123, 1));
        assert!((r.ts - 5.123456).abs() < 1e-9);
        let mut v = vec![r];
        fix_names(&mut v);
        assert_eq!(v[0].task, "ept_cons/0");
        assert!(parse_lat_line("  <idle>-0         0dN.3.   17us!: sched_waking: comm=ktimers/0 pid=15 prio=98 target_cpu=000").is_some());
    }
}
