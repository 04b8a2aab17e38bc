//! Parsing of the console logs written by `qemu/run-vm.sh`.
//!
//! A log looks like this (see qemu/CONTRACT.md):
//!
//! ```text
//! # epoll-torture console log
//! # ARCH=x86_64                       <- build-info.env, one `# KEY=value` per line
//! # qemu: qemu-system-x86_64 ...
//! # deadline=600 idle=0 steps=x86_64-rwlock-stall-r1.sh
//! [+0001.234] [    0.000000] Linux version 7.2.0 ...   <- host elapsed, kernel time, text
//! [+0009.001] EPT: steps begin                         <- user space: no kernel time
//! # host: deadline 600s reached after 600s: asking for SysRq-w and SysRq-t
//! # host: HANG: killing QEMU after 621s
//! ```
//!
//! Lines are kept in order with both timestamps (either may be missing).

use std::collections::BTreeMap;

/// Which copies of a line the log had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Printed on the serial console (kernel records and user-space output).
    #[default]
    Console,
    /// A kernel record seen only as `ept-run --echo`'s `kmsg: ` copy (its
    /// console copy was lost, or the log ended before it was printed).
    Kmsg,
    /// A kernel record seen on the console and as a `kmsg: ` copy: one record.
    Both,
}

/// One console line; after parsing, one kernel record is one line however
/// many copies of it the log had (see [`ConsoleLog::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// 1-based line number in the file (of the earlier copy of a record).
    pub no: usize,
    /// Host elapsed seconds (`[+0012.345]`), when present (the earlier copy's).
    pub host_s: Option<f64>,
    /// The kernel's own printk time (`[   12.345678]`), when present.
    pub kernel_s: Option<f64>,
    /// The text after both timestamps (and after `kmsg: `).
    pub text: String,
    pub source: Source,
}

impl LogLine {
    /// A kernel record (a console line with the kernel's time, or a `kmsg:`
    /// echo), as opposed to user-space output.
    pub fn is_kernel(&self) -> bool {
        self.kernel_s.is_some() || self.source != Source::Console
    }
}

/// A `# host: ...` note written by run-vm.sh.
#[derive(Debug, Clone, PartialEq)]
pub struct HostNote {
    pub no: usize,
    pub text: String,
    /// The `after Ns` value in the note, when it has one.
    pub after_s: Option<f64>,
}

/// How the copies of kernel records were folded (see [`ConsoleLog::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoStats {
    /// `kmsg:` echoes matched to their console copy.
    pub merged: usize,
    /// `kmsg:` echoes without a console copy (kept as records).
    pub kmsg_only: usize,
    /// Console lines repeating an earlier record (same kernel time and
    /// text, e.g. `dmesg` output of the steps): dropped.
    pub console_repeats: usize,
}

/// A parsed console log.
#[derive(Debug, Clone, Default)]
pub struct ConsoleLog {
    /// `# KEY=value` header lines (build-info.env), quotes removed; plus
    /// `deadline`, `idle`, `steps` (or `plan`) from the `# deadline=.. idle=.. steps=..` line.
    pub header: BTreeMap<String, String>,
    pub notes: Vec<HostNote>,
    /// Every record once, in log order.
    pub lines: Vec<LogLine>,
    pub echo: EchoStats,
}

/// Host seconds within which an old-format echo (`kmsg: text`, no kernel
/// time) and a console line with the same text are taken as one record.
pub const ECHO_MATCH_WINDOW_S: f64 = 5.0;

/// Parse `[+SSSS.mmm] ` at the start of `s`; returns (seconds, rest).
pub fn split_host_ts(s: &str) -> Option<(f64, &str)> {
    let rest = s.strip_prefix("[+")?;
    let end = rest.find(']')?;
    let num = &rest[..end];
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let after = &rest[end + 1..];
    Some((v, after.strip_prefix(' ').unwrap_or(after)))
}

/// Parse the kernel's `[   12.345678] ` at the start of `s`; returns (seconds, rest).
pub fn split_kernel_ts(s: &str) -> Option<(f64, &str)> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let num = rest[..end].trim_start();
    if num.is_empty() || !num.contains('.') || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let after = &rest[end + 1..];
    Some((v, after.strip_prefix(' ').unwrap_or(after)))
}

/// Where a kernel record (`[ SSSS.uuuuuu] `, printk's six decimals) starts
/// inside `s` after some other text, if it does.
fn embedded_kernel_record(s: &str) -> Option<usize> {
    if s.starts_with("kmsg: ") {
        return None;
    }
    let mut from = 1;
    while let Some(j) = s.get(from..)?.find('[') {
        let i = from + j;
        let rest = &s[i + 1..];
        if let Some(end) = rest.find(']') {
            let num = rest[..end].trim_start();
            if let Some((int, frac)) = num.split_once('.') {
                if !int.is_empty()
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() == 6
                    && frac.bytes().all(|b| b.is_ascii_digit())
                    && rest[end + 1..].starts_with(' ')
                {
                    return Some(i);
                }
            }
        }
        from = i + 1;
    }
    None
}

/// Parse `key=value` pairs separated by blanks (values cannot contain blanks).
pub fn kv_pairs(s: &str) -> BTreeMap<String, String> {
    s.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            if k.is_empty() {
                return None;
            }
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// The first number after `after ` in a host note ("reached after 600s").
fn after_seconds(text: &str) -> Option<f64> {
    let i = text.find("after ")?;
    let digits: String = text[i + 6..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

impl ConsoleLog {
    /// Parse a log and fold the copies of each kernel record into one line.
    ///
    /// `ept-run --echo` copies kernel records as `kmsg: [  12.345678] text`
    /// (new) or `kmsg: text` (old). An echo with a kernel time is the
    /// console line with the same kernel time and text. An old echo is the
    /// first unmatched console line with the same text whose host time, or
    /// whose kernel time on the host clock (a console stalled behind a hung
    /// CPU prints late), is within [`ECHO_MATCH_WINDOW_S`]; either copy may
    /// come first. A console line repeating an earlier record exactly (same
    /// kernel time and text) is dropped. The folded line keeps the earlier
    /// copy's position and host time.
    pub fn parse(text: &str) -> ConsoleLog {
        let mut log = ConsoleLog::default();
        for (i, raw) in text.lines().enumerate() {
            let no = i + 1;
            let raw = raw.trim_end_matches('\r');
            if let Some((h, rest)) = split_host_ts(raw) {
                // A kernel record printed into the middle of a user-space
                // line (the serial console has no line discipline between
                // the two): two records.
                match embedded_kernel_record(rest) {
                    Some(i) => {
                        log.lines.push(line(no, Some(h), &rest[..i]));
                        log.lines.push(line(no, Some(h), &rest[i..]));
                    }
                    None => log.lines.push(line(no, Some(h), rest)),
                }
            } else if let Some(note) = raw.strip_prefix("# host: ") {
                log.notes.push(HostNote {
                    no,
                    text: note.to_string(),
                    after_s: after_seconds(note),
                });
            } else if let Some(h) = raw.strip_prefix("# ") {
                if h.starts_with("deadline=") {
                    for (k, v) in kv_pairs(h) {
                        log.header.insert(k, v);
                    }
                } else if let Some((k, v)) = h.split_once('=') {
                    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                        // Logs from before the rename call it PATCHES.
                        let k = if k == "PATCHES" { "VARIANT_PATCHES" } else { k };
                        log.header.insert(k.to_string(), unquote(v));
                    }
                } else if let Some(q) = h.strip_prefix("qemu: ") {
                    log.header.insert("QEMU_CMD".into(), q.to_string());
                }
            } else if !raw.is_empty() {
                // A console line without a host stamp (e.g. a log captured
                // another way): keep it, kernel time only.
                log.lines.push(line(no, None, raw));
            }
        }
        let (lines, stats) = fold_copies(std::mem::take(&mut log.lines));
        log.lines = lines;
        log.echo = stats;
        log
    }

    /// The host time of the last console line.
    pub fn last_host_s(&self) -> Option<f64> {
        self.lines.iter().rev().find_map(|l| l.host_s)
    }

    /// The host note that says the deadline (or idle limit) was hit.
    pub fn hang_note(&self) -> Option<&HostNote> {
        self.notes
            .iter()
            .find(|n| n.text.contains("reached after") || n.text.starts_with("HANG"))
    }

    /// The host note that says QEMU exited by itself.
    pub fn exit_note(&self) -> Option<&HostNote> {
        self.notes
            .iter()
            .find(|n| n.text.starts_with("QEMU exited"))
    }
}

/// One stamped line: a `kmsg: ` echo or a console line.
fn line(no: usize, host_s: Option<f64>, rest: &str) -> LogLine {
    let (source, body) = match rest.strip_prefix("kmsg: ") {
        Some(b) => (Source::Kmsg, b),
        None => (Source::Console, rest),
    };
    let (kernel_s, text) = match split_kernel_ts(body) {
        Some((k, t)) => (Some(k), t),
        None => (None, body),
    };
    let text = match source {
        Source::Kmsg => unescape_kmsg(text),
        _ => text.to_string(),
    };
    LogLine {
        no,
        host_s,
        kernel_s,
        text,
        source,
    }
}

/// /dev/kmsg escapes unprintable bytes as `\xNN` (a tab is `\x09`); the
/// console prints them as they are.
fn unescape_kmsg(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_string();
    }
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Kernel time in microseconds, the resolution printk prints.
fn kernel_us(k: f64) -> i64 {
    (k * 1e6).round() as i64
}

/// Fold echoes into their console copies and drop repeated console records.
fn fold_copies(raw: Vec<LogLine>) -> (Vec<LogLine>, EchoStats) {
    use std::collections::HashMap;
    let mut stats = EchoStats::default();
    let mut keep = vec![true; raw.len()];
    // Console kernel records by (kernel time, text); later repeats dropped.
    let mut by_key: HashMap<(i64, &str), usize> = HashMap::new();
    // Console kernel records by text, in log order (for old echoes).
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    // The host clock minus the kernel clock: the smallest difference any
    // console line shows (a line cannot be printed before it was logged).
    let mut offset: Option<f64> = None;
    for (i, l) in raw.iter().enumerate() {
        let (Source::Console, Some(k)) = (l.source, l.kernel_s) else {
            continue;
        };
        if let Some(h) = l.host_s {
            offset = Some(offset.map_or(h - k, |o: f64| o.min(h - k)));
        }
        match by_key.entry((kernel_us(k), l.text.as_str())) {
            std::collections::hash_map::Entry::Occupied(_) => {
                keep[i] = false;
                stats.console_repeats += 1;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                by_text.entry(l.text.as_str()).or_default().push(i);
            }
        }
    }
    // partner[console index] = echo index
    let mut partner: Vec<Option<usize>> = vec![None; raw.len()];
    for (e, l) in raw.iter().enumerate() {
        if l.source != Source::Kmsg {
            continue;
        }
        let found = match l.kernel_s {
            Some(k) => by_key
                .get(&(kernel_us(k), l.text.as_str()))
                .copied()
                .filter(|c| partner[*c].is_none()),
            None => by_text.get(l.text.as_str()).and_then(|cands| {
                cands
                    .iter()
                    .copied()
                    .find(|&c| partner[c].is_none() && near(&raw[c], l.host_s, offset))
            }),
        };
        match found {
            Some(c) => {
                partner[c] = Some(e);
                keep[e] = false;
                stats.merged += 1;
            }
            None => stats.kmsg_only += 1,
        }
    }
    let mut out: Vec<LogLine> = Vec::with_capacity(raw.len());
    for (i, mut l) in raw.iter().cloned().enumerate() {
        if !keep[i] {
            continue;
        }
        if let Some(e) = partner[i] {
            let echo = &raw[e];
            l.no = l.no.min(echo.no);
            l.host_s = match (l.host_s, echo.host_s) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            l.source = Source::Both;
        }
        out.push(l);
    }
    out.sort_by_key(|l| l.no);
    (out, stats)
}

/// Whether console line `c` can be the copy of an echo seen at `echo_h`.
fn near(c: &LogLine, echo_h: Option<f64>, offset: Option<f64>) -> bool {
    let Some(h) = echo_h else {
        return false;
    };
    let by_host = c
        .host_s
        .is_some_and(|x| (x - h).abs() <= ECHO_MATCH_WINDOW_S);
    let by_kernel = match (c.kernel_s, offset) {
        (Some(k), Some(o)) => (k + o - h).abs() <= ECHO_MATCH_WINDOW_S,
        _ => false,
    };
    by_host || by_kernel
}

/// Render a line for quoting as evidence: `+12.3s [k 10.1s] text`.
pub fn quote(l: &LogLine) -> String {
    let mut s = String::new();
    if let Some(h) = l.host_s {
        s.push_str(&format!("[+{h:.1}s] "));
    }
    if let Some(k) = l.kernel_s {
        s.push_str(&format!("[{k:.3}] "));
    }
    s.push_str(l.text.trim_end());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_kernel_timestamps() {
        let (h, r) = split_host_ts("[+0012.345] [   12.345678] rcu: INFO: x").unwrap();
        assert!((h - 12.345).abs() < 1e-9);
        let (k, t) = split_kernel_ts(r).unwrap();
        assert!((k - 12.345678).abs() < 1e-9);
        assert_eq!(t, "rcu: INFO: x");
    }

    #[test]
    fn not_timestamps() {
        assert!(split_host_ts("[ 1.0] x").is_none());
        assert!(split_kernel_ts("[<ffffffff8100>] foo+0x1/0x2").is_none());
        assert!(split_kernel_ts("[abc] x").is_none());
        assert!(split_kernel_ts("[   12] x").is_none());
        assert!(split_host_ts("[+0001.000]").is_some());
    }

    #[test]
    fn kv() {
        let m = kv_pairs("# metrics scenario=inversion max_us=20100 =x y= z");
        assert_eq!(m["scenario"], "inversion");
        assert_eq!(m["max_us"], "20100");
        assert_eq!(m["y"], "");
        assert!(!m.contains_key("z"));
    }

    // Lines from fixtures/x86_64-spinlock-stall.log (old echoes, no kernel
    // time) and the same records as the new `kmsg: [time] text` echoes.
    const CONSOLE_HB: &str = "[+0010.761] [    6.631495] epoll_torture: # heartbeat scenario=stall t_ms=2008 progress=3432";
    const ECHO_HB: &str =
        "[+0010.758] kmsg: epoll_torture: # heartbeat scenario=stall t_ms=2008 progress=3432";
    const CONSOLE_OK: &str = "[+0038.907] [   34.756110] epoll_torture: ok 1 stall";
    const ECHO_OK: &str = "[+0038.886] kmsg: epoll_torture: ok 1 stall";

    #[test]
    fn a_kernel_record_inside_a_user_line_is_its_own_line() {
        // Real: debug-load on x86_64 rwlock, a selftest's TAP header and the
        // module's result on one console line.
        let log = ConsoleLog::parse(
            "[+0057.879] TAP version 13[   55.351506] epoll_torture: ok 1 throughput\n\
             [+0058.000] x[1] y [2.5] z\n",
        );
        let t: Vec<_> = log
            .lines
            .iter()
            .map(|l| (l.kernel_s, l.text.as_str()))
            .collect();
        assert_eq!(
            t,
            [
                (None, "TAP version 13"),
                (Some(55.351506), "epoll_torture: ok 1 throughput"),
                (None, "x[1] y [2.5] z"),
            ]
        );
    }

    fn parse(lines: &[&str]) -> ConsoleLog {
        ConsoleLog::parse(&(lines.join("\n") + "\n"))
    }

    #[test]
    fn old_echo_folded_either_order_keeping_the_earlier_host_time() {
        for lines in [
            [ECHO_HB, CONSOLE_HB, ECHO_OK, CONSOLE_OK],
            [CONSOLE_HB, ECHO_HB, CONSOLE_OK, ECHO_OK],
        ] {
            let l = parse(&lines);
            assert_eq!(l.lines.len(), 2, "{lines:?}");
            assert_eq!(l.echo.merged, 2);
            let hb = &l.lines[0];
            assert_eq!(hb.source, Source::Both);
            assert_eq!(hb.host_s, Some(10.758));
            assert_eq!(hb.kernel_s, Some(6.631495));
            assert_eq!(hb.no, 1);
            assert!(hb.is_kernel());
            assert_eq!(l.lines[1].host_s, Some(38.886));
        }
    }

    #[test]
    fn old_echo_too_far_from_any_copy_is_its_own_record() {
        // The same text 30 s later on the host and in kernel time: not a copy.
        let late =
            "[+0040.758] kmsg: epoll_torture: # heartbeat scenario=stall t_ms=2008 progress=3432";
        let l = parse(&[CONSOLE_OK, CONSOLE_HB, late]);
        assert_eq!(l.lines.len(), 3);
        assert_eq!((l.echo.merged, l.echo.kmsg_only), (0, 1));
        let echo = &l.lines[2];
        assert_eq!((echo.source, echo.kernel_s), (Source::Kmsg, None));
        assert!(echo.is_kernel());
    }

    #[test]
    fn new_echo_matched_by_kernel_time_and_text() {
        let new_hb = "[+0010.758] kmsg: [    6.631495] epoll_torture: # heartbeat scenario=stall t_ms=2008 progress=3432";
        // Same text, another kernel time: another record.
        let other = "[+0010.759] kmsg: [    8.631551] epoll_torture: # heartbeat scenario=stall t_ms=2008 progress=3432";
        let l = parse(&[new_hb, CONSOLE_HB, other]);
        assert_eq!((l.echo.merged, l.echo.kmsg_only), (1, 1));
        assert_eq!(l.lines.len(), 2);
        assert_eq!(l.lines[0].source, Source::Both);
        assert_eq!(l.lines[0].host_s, Some(10.758));
        assert_eq!(
            (l.lines[1].source, l.lines[1].kernel_s),
            (Source::Kmsg, Some(8.631551))
        );
    }

    #[test]
    fn kmsg_escapes_and_console_repeats() {
        // /dev/kmsg prints a tab as \x09 (fixtures/x86_64-rwlock-stall.log).
        let c = "[+0023.240] [   21.286500] rcu: \t(t=10000 jiffies g=1117 q=1 ncpus=2)";
        let e = "[+0023.241] kmsg: rcu: \\x09(t=10000 jiffies g=1117 q=1 ncpus=2)";
        // `dmesg` output of the steps repeats a record with its own time.
        let again = "[+0030.000] [   21.286500] rcu: \t(t=10000 jiffies g=1117 q=1 ncpus=2)";
        let l = parse(&[c, e, again]);
        assert_eq!(l.lines.len(), 1);
        assert_eq!(l.echo.merged, 1);
        assert_eq!(l.echo.console_repeats, 1);
        assert_eq!(unescape_kmsg("a\\x5cb\\xZZ"), "a\\b\\xZZ");
    }

    #[test]
    fn after_s() {
        assert_eq!(
            after_seconds("deadline 40s reached after 41s: asking"),
            Some(41.0)
        );
        assert_eq!(after_seconds("QEMU exited after 7s"), Some(7.0));
        assert_eq!(after_seconds("nothing"), None);
    }
}
