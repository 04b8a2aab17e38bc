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

/// One console line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// 1-based line number in the file.
    pub no: usize,
    /// Host elapsed seconds (`[+0012.345]`), when present.
    pub host_s: Option<f64>,
    /// The kernel's own printk time (`[   12.345678]`), when present.
    pub kernel_s: Option<f64>,
    /// The text after both timestamps.
    pub text: String,
}

/// A `# host: ...` note written by run-vm.sh.
#[derive(Debug, Clone, PartialEq)]
pub struct HostNote {
    pub no: usize,
    pub text: String,
    /// The `after Ns` value in the note, when it has one.
    pub after_s: Option<f64>,
}

/// A parsed console log.
#[derive(Debug, Clone, Default)]
pub struct ConsoleLog {
    /// `# KEY=value` header lines (build-info.env), quotes removed; plus
    /// `deadline`, `idle`, `steps` from the `# deadline=.. idle=.. steps=..` line.
    pub header: BTreeMap<String, String>,
    pub notes: Vec<HostNote>,
    pub lines: Vec<LogLine>,
}

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
    pub fn parse(text: &str) -> ConsoleLog {
        let mut log = ConsoleLog::default();
        for (i, raw) in text.lines().enumerate() {
            let no = i + 1;
            let raw = raw.trim_end_matches('\r');
            if let Some((h, rest)) = split_host_ts(raw) {
                let (k, text) = match split_kernel_ts(rest) {
                    Some((k, t)) => (Some(k), t),
                    None => (None, rest),
                };
                log.lines.push(LogLine {
                    no,
                    host_s: Some(h),
                    kernel_s: k,
                    text: text.to_string(),
                });
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
                let (k, text) = match split_kernel_ts(raw) {
                    Some((k, t)) => (Some(k), t),
                    None => (None, raw),
                };
                log.lines.push(LogLine {
                    no,
                    host_s: None,
                    kernel_s: k,
                    text: text.to_string(),
                });
            }
        }
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
