//! "Who waits on whom": task dumps from SysRq-w / SysRq-t (sent by run-vm.sh
//! before it kills a hung guest) and from hung-task reports.
//!
//! A dumped task looks like this on x86_64 (riscv64 prints `[<addr>] ` before
//! each frame and no `<TASK>` markers):
//!
//! ```text
//! task:ept-consumer    state:D stack:0     pid:120   tgid:120   ppid:1      flags:0x00004002
//! Call Trace:
//!  <TASK>
//!  __schedule+0x3a1/0xd40
//!  schedule_rtlock+0x1d/0x40
//!  rwbase_write_lock+0x10c/0x1d0
//!  ep_poll+0x2c5/0x8e0
//!  do_epoll_wait+0x98/0xc0
//!  </TASK>
//! ```

use crate::log::LogLine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub state: String,
    pub pid: Option<u64>,
    pub ppid: Option<u64>,
    /// Function names, innermost first (offsets and `? ` unreliable marks removed).
    pub frames: Vec<String>,
    /// Log line number of the `task:` line.
    pub line: usize,
}

/// Parse a `task:NAME state:S ... pid:N ...` line (text after the timestamps).
pub fn parse_task_line(text: &str) -> Option<(String, String, Option<u64>)> {
    parse_task_line_full(text).map(|(n, s, p, _)| (n, s, p))
}

/// As parse_task_line, with the parent pid.
pub fn parse_task_line_full(text: &str) -> Option<(String, String, Option<u64>, Option<u64>)> {
    let i = text.find("task:")?;
    let rest = &text[i + 5..];
    let st = rest.find(" state:")?;
    let name = rest[..st].trim().to_string();
    let after = &rest[st + 7..];
    let state: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
    let pid = after
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid:"))
        .and_then(|p| p.parse().ok());
    let ppid = after
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ppid:"))
        .and_then(|p| p.parse().ok());
    if name.is_empty() || state.is_empty() {
        return None;
    }
    Some((name, state, pid, ppid))
}

/// Parse a stack frame: ` __schedule+0x3a1/0xd40`, ` ? foo+0x1/0x2 [mod]`,
/// `[<ffffffff80a0b1c2>] __schedule+0x2a4/0x8e0` (riscv). Returns the function.
pub fn parse_frame(text: &str) -> Option<String> {
    let mut t = text.trim();
    if let Some(r) = t.strip_prefix("[<") {
        let end = r.find(">]")?;
        t = r[end + 2..].trim_start();
    }
    // `? func`: an unreliable guess from stack garbage, not a real frame.
    if t.starts_with("? ") {
        return Some(String::new());
    }
    let plus = t.find("+0x")?;
    let func = &t[..plus];
    let off = &t[plus + 1..];
    let off = off.split_whitespace().next()?;
    if !off.contains('/') {
        return None;
    }
    if func.is_empty()
        || !func
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')
    {
        return None;
    }
    Some(func.to_string())
}

/// Lines inside a trace that are neither frames nor the end of it.
fn is_trace_chrome(t: &str) -> bool {
    let t = t.trim();
    if t.is_empty()
        || matches!(
            t,
            "Call Trace:" | "<TASK>" | "</TASK>" | "<IRQ>" | "</IRQ>" | "<NMI>" | "</NMI>"
        )
    {
        return true;
    }
    // x86 user-space registers: "RIP: 0033:0x4a1b2c", "RAX: ... RBX: ...",
    // "Code: ..."; riscv: "epc : ...", " ra : ...", "status: ...".
    if let Some((k, _)) = t.split_once(':') {
        let k = k.trim();
        if (2..=8).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return true;
        }
        if matches!(
            k,
            "Code" | "epc" | "ra" | "sp" | "gp" | "status" | "badaddr" | "cause"
        ) {
            return true;
        }
    }
    false
}

/// All dumped tasks, in log order.
pub fn parse_tasks(lines: &[LogLine]) -> Vec<Task> {
    let mut out: Vec<Task> = Vec::new();
    let mut cur: Option<Task> = None;
    for l in lines {
        if let Some((name, state, pid, ppid)) = parse_task_line_full(&l.text) {
            if let Some(t) = cur.take() {
                out.push(t);
            }
            cur = Some(Task {
                name,
                state,
                pid,
                ppid,
                frames: Vec::new(),
                line: l.no,
            });
            continue;
        }
        if let Some(t) = cur.as_mut() {
            if let Some(f) = parse_frame(&l.text) {
                if !f.is_empty() {
                    t.frames.push(f);
                }
            } else if !is_trace_chrome(&l.text) {
                out.push(cur.take().unwrap());
            }
        }
    }
    if let Some(t) = cur {
        out.push(t);
    }
    out
}

/// Frames that say nothing about what a task waits for.
const SCHED_FRAMES: &[&str] = &[
    "__switch_to",
    "__switch_to_asm",
    "__schedule",
    "schedule",
    "schedule_rtlock",
    "schedule_preempt_disabled",
    "schedule_timeout",
    "schedule_hrtimeout_range",
    "schedule_hrtimeout_range_clock",
    "preempt_schedule",
    "preempt_schedule_irq",
    "preempt_schedule_common",
    "preempt_schedule_notrace",
    "preempt_schedule_thunk",
    "asm_sysvec_apic_timer_interrupt",
    "asm_sysvec_reschedule_ipi",
    "irqentry_exit",
    "irqentry_exit_to_kernel_mode",
    "raw_irqentry_exit_cond_resched",
    "handle_exception",
    "ret_from_exception",
    "do_irq",
    "do_trap_ecall_u",
];

/// Functions that identify the epoll lock dance (report [1] / [2]).
pub const KEY_FRAMES: &[&str] = &[
    "rt_write_lock",
    "rwbase_write_lock",
    "rt_read_lock",
    "rwbase_read_lock",
    "__rwbase_read_lock",
    "rt_spin_lock",
    "rtlock_slowlock",
    "rtlock_slowlock_locked",
    "rt_mutex_slowlock",
    "__rt_mutex_slowlock",
    "mutex_lock",
    "ep_poll",
    "do_epoll_wait",
    "do_epoll_pwait",
    "ep_poll_callback",
    "ep_send_events",
    "ep_start_scan",
    "ep_done_scan",
    "ep_insert",
    "ep_modify",
    "ep_remove",
    "__ep_eventpoll_poll",
    "ep_item_poll",
    "eventfd_write",
    "eventfd_signal_mask",
    "pipe_write",
    "timerfd_tmrproc",
    "hrtimer_run_softirq",
    "throttle_cfs_rq",
    "do_exit",
];

fn has(t: &Task, f: &str) -> bool {
    t.frames.iter().any(|x| x == f)
}

/// Is a frame one of our module's (named `ept_*` / `epoll_torture*`)?
fn is_module_frame(f: &str) -> bool {
    f.starts_with("ept_") || f.contains("epoll_torture")
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Blocked taking ep->lock for writing (consumer side).
    WriteWaiter,
    /// Blocked taking ep->lock for reading (producer behind a writer).
    ReadWaiter,
    /// Blocked on an rtmutex-based spinlock (spinlock variant).
    SpinWaiter,
    /// Inside ep_poll_callback, not waiting for the lock: holds it for reading.
    ReaderHolding,
    /// Asleep in epoll_wait normally (no lock wait).
    EpollSleeper,
    /// Anything else in D state.
    Blocked,
}

impl Role {
    fn what(&self) -> &'static str {
        match self {
            Role::WriteWaiter => "waits for ep->lock (write)",
            Role::ReadWaiter => "waits for ep->lock (read)",
            Role::SpinWaiter => "waits for a sleeping spinlock",
            Role::ReaderHolding => "is inside ep_poll_callback (holds ep->lock for reading)",
            Role::EpollSleeper => "sleeps in epoll_wait",
            Role::Blocked => "is blocked",
        }
    }
}

pub fn role(t: &Task) -> Option<Role> {
    let lockish = |t: &Task| KEY_FRAMES.iter().any(|f| has(t, f));
    if has(t, "rwbase_write_lock") || has(t, "rt_write_lock") {
        Some(Role::WriteWaiter)
    } else if has(t, "rwbase_read_lock") || has(t, "__rwbase_read_lock") || has(t, "rt_read_lock") {
        Some(Role::ReadWaiter)
    } else if (has(t, "rt_spin_lock") || has(t, "rtlock_slowlock_locked"))
        && t.frames
            .iter()
            .any(|f| f.starts_with("ep_") || f.contains("epoll"))
    {
        Some(Role::SpinWaiter)
    } else if has(t, "ep_poll_callback") {
        Some(Role::ReaderHolding)
    } else if has(t, "ep_poll") {
        Some(Role::EpollSleeper)
    } else if t.state.starts_with('D') || (lockish(t) && !t.state.starts_with('S')) {
        Some(Role::Blocked)
    } else {
        None
    }
}

/// "waits in X <- Y <- Z": the first meaningful frame then the key frames.
pub fn wait_point(t: &Task) -> String {
    let first = t
        .frames
        .iter()
        .find(|f| !SCHED_FRAMES.contains(&f.as_str()))
        .cloned()
        .unwrap_or_else(|| "?".into());
    let mut chain = vec![first.clone()];
    for f in &t.frames {
        if (KEY_FRAMES.contains(&f.as_str()) || is_module_frame(f)) && !chain.contains(f) {
            chain.push(f.clone());
        }
        if chain.len() >= 6 {
            break;
        }
    }
    chain.join(" <- ")
}

/// A short, human summary of the dumped tasks that matter: one line per task
/// (deduplicated by pid, the last dump wins) then one line for the chain.
pub fn summarize(tasks: &[Task]) -> Vec<String> {
    let mut by_pid: BTreeMap<(u64, String), (Role, &Task)> = BTreeMap::new();
    for t in tasks {
        if let Some(r) = role(t) {
            if r == Role::Blocked && t.frames.is_empty() {
                continue;
            }
            by_pid.insert((t.pid.unwrap_or(0), t.name.clone()), (r, t));
        }
    }
    let mut items: Vec<(Role, &Task)> = by_pid.into_values().collect();
    items.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.pid.cmp(&b.1.pid)));
    let mut out = Vec::new();
    for (r, t) in items.iter().take(10) {
        out.push(format!(
            "{} (pid {}, state {}) {}: {}",
            t.name,
            t.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            t.state,
            r.what(),
            wait_point(t)
        ));
    }
    if items.len() > 10 {
        out.push(format!("... and {} more blocked tasks", items.len() - 10));
    }
    let names = |role: Role| -> Vec<String> {
        items
            .iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, t)| t.name.clone())
            .collect()
    };
    let (w, rd, h) = (
        names(Role::WriteWaiter),
        names(Role::ReadWaiter),
        names(Role::ReaderHolding),
    );
    if !w.is_empty() {
        let mut s = format!("chain: {} blocked for write on ep->lock", w.join(", "));
        if !h.is_empty() {
            s.push_str(&format!(
                ", held for reading by {} (not boosted)",
                h.join(", ")
            ));
        }
        if !rd.is_empty() {
            s.push_str(&format!(
                "; {} wait(s) for read behind the waiting writer",
                rd.join(", ")
            ));
        }
        out.push(s);
    } else if !rd.is_empty() {
        out.push(format!(
            "chain: {} blocked for read on ep->lock",
            rd.join(", ")
        ));
    }
    if out.is_empty() {
        // Nothing blocked on a lock: say where the user-space tasks are.
        let mut seen = BTreeMap::new();
        for t in tasks {
            let user = t.pid.is_some_and(|p| p > 2) && t.ppid.is_some_and(|p| p != 2);
            if user && !t.frames.is_empty() {
                seen.insert(t.pid, t);
            }
        }
        let v: Vec<&Task> = seen.into_values().collect();
        if !v.is_empty() {
            out.push("no task blocked on ep->lock; user-space tasks:".into());
        }
        for t in v.iter().take(8) {
            out.push(format!(
                "{} (pid {}, state {}) in {}",
                t.name,
                t.pid.unwrap_or(0),
                t.state,
                wait_point(t)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_line_formats() {
        // 6.12 and 7.x formats (with and without tgid/task_flags).
        let (n, s, p) = parse_task_line(
            "task:kworker/u8:1    state:D stack:0     pid:12    tgid:12    ppid:2      task_flags:0x4208060 flags:0x00004000",
        )
        .unwrap();
        assert_eq!((n.as_str(), s.as_str(), p), ("kworker/u8:1", "D", Some(12)));
        let (n, s, _) = parse_task_line(
            "task:ept stall name   state:R  running task     stack:0 pid:99 ppid:1 flags:0x0",
        )
        .unwrap();
        assert_eq!((n.as_str(), s.as_str()), ("ept stall name", "R"));
        assert!(parse_task_line("INFO: task sh:1 blocked for more than 15 seconds.").is_none());
    }

    #[test]
    fn frames() {
        assert_eq!(
            parse_frame(" __schedule+0x3a1/0xd40").as_deref(),
            Some("__schedule")
        );
        assert_eq!(parse_frame(" ? ep_poll+0x2c5/0x8e0").as_deref(), Some(""));
        assert_eq!(
            parse_frame("[<ffffffff80a0b1c2>] rwbase_write_lock+0x10c/0x1d0").as_deref(),
            Some("rwbase_write_lock")
        );
        assert_eq!(
            parse_frame(" ept_consumer+0x1c/0x80 [epoll_torture]").as_deref(),
            Some("ept_consumer")
        );
        assert_eq!(parse_frame(" RIP: 0033:0x4a1b2c"), None);
        assert_eq!(parse_frame("rcu: INFO: x+0x1"), None);
    }
}
