// SPDX-License-Identifier: GPL-2.0

//! epoll_torture: an in-kernel torture test for the eventpoll ready-list lock.
//!
//! From v5.1 to v6.18 `fs/eventpoll.c` protected an epoll instance's ready
//! list with a `rwlock_t`: producers (`ep_poll_callback()`, run by whoever
//! wakes a watched file) took it for reading, consumers (`ep_poll()`,
//! `ep_start_scan()`/`ep_done_scan()`, also reached by polling an epoll file)
//! for writing. On PREEMPT_RT a writer does not boost the readers that block
//! it, and a waiting writer forces new readers onto the slow path. The fix
//! (v6.18, "eventpoll: Replace rwlock with spinlock") makes it a `spinlock_t`,
//! an rtmutex with priority inheritance on RT. This module drives both lock
//! kinds from kthreads and reports in KTAP whether the bug is there.
//!
//! # How the files reach the module
//!
//! Nothing in `fs/eventpoll.c` is exported, so the module cannot create an
//! epoll instance. The static guest program `ept-run` (selftests/guest)
//! creates an epoll fd and `O_NONBLOCK` eventfds, adds every eventfd to the
//! epoll set (`EPOLLIN`), and runs `insmod` with the fds inherited and
//! `epfd=N evfds=a-b`. Module init runs in the insmod process, so it takes
//! its own references with `fget()` (`LocalFile::fget`) and
//! `eventfd_ctx_fileget()`; insmod may then exit. The references are dropped
//! when the module is removed.
//!
//! One command in the guest: `ept-run inversion` (or `stall`, `throughput`,
//! `soak`, followed by any `param=value`), which also waits for the KTAP
//! result on `/dev/kmsg` and runs rmmod. By hand, in an interactive VM:
//!
//! ```text
//! ept-run --shell            # a shell holding the fds, with $EPT_FDS set
//! insmod /lib/modules/epoll_torture.ko scenario=inversion $EPT_FDS
//! dmesg | grep epoll_torture ; rmmod epoll_torture
//! ```
//!
//! # Threads
//!
//! * producers (`ept_prod/N`): loop on `eventfd_signal()` of their own
//!   eventfd, so `ep_poll_callback()` (read side) runs in the kthread;
//! * consumers (`ept_cons/N`): time each `vfs_poll()` of the epoll file
//!   (`__ep_eventpoll_poll()` -> `ep_start_scan()`/`ep_done_scan()`, the
//!   write side), then reset the ready eventfds with a non-blocking
//!   `kernel_read()`, then sleep `consumer_sleep_us`;
//! * hogs (`ept_hog/N`): busy for `hog_burst_ms` every `hog_period_ms`;
//! * ticker (`ept_tick`, stall and soak): starts a periodic
//!   `HRTIMER_MODE_REL_PINNED_SOFT` hrtimer on `timer_cpu`; on RT its
//!   callback runs in the `ktimers/<timer_cpu>` thread;
//! * controller/watchdog (`ept_ctl`, SCHED_FIFO `watchdog_prio` on
//!   `watchdog_cpu`, never the hog's CPU, sleeping on hard hrtimers only, so
//!   it keeps running through a stall): owns all other threads, prints a
//!   heartbeat every `heartbeat_ms` with progress counters, declares a hang
//!   when no consumer call completed for `stall_ms`, ends the run, prints
//!   the metrics and the KTAP result.
//!
//! # Scenarios
//!
//! * `inversion` (report [1]): producers at FIFO 10 on CPU0, a hog at FIFO
//!   20 on CPU0, a consumer at FIFO 30 on CPU1. When the hog preempts a
//!   producer inside `ep_poll_callback()`, the consumer's `vfs_poll()` waits
//!   for the read lock to be released. rwlock: nobody boosts the reader, the
//!   consumer waits for the rest of the burst (max latency ~ `hog_burst_ms`).
//!   spinlock: the consumer boosts the holder (PI) and waits microseconds.
//!   Verdict: `not ok` if at least `over_min` calls took longer than
//!   `threshold_pct` % of the burst *and* started within 20 ms after a hog
//!   burst began (`over_threshold_from_burst_start`): the inversion's
//!   signature is that the hog preempts the reader as its burst starts and
//!   the consumer's next call blocks for the rest of the burst. Host-load
//!   jitter under TCG (a vCPU descheduled by the host: 100-350 ms outliers
//!   were seen on the spinlock kernel with a host load of 10 on 2 cores)
//!   starts at random times and is only counted in `over_threshold`.
//! * `stall` (report [2] as a pure lock cycle): as inversion, but a hog's
//!   burst ends only when the soft hrtimer on `timer_cpu` (!= `hog_cpu`)
//!   has run past the burst's end, and the same timer callback signals an
//!   eventfd of the epoll set every `tick_us`. On rwlock: the consumer waits
//!   (as a writer) for the preempted producer, the producer waits for the
//!   hog, the hog waits for the timer, and `ktimers/<timer_cpu>` blocks as a
//!   reader behind the waiting writer (RT forces new readers to the slow path
//!   when a writer waits): a permanent hang. The producer holds the RT
//!   rwlock, hence `rcu_read_lock()`, so RCU stall reports follow after
//!   `CONFIG_RCU_CPU_STALL_TIMEOUT`. On spinlock the consumer boosts the
//!   producer, the cycle never closes, the run completes. Verdict: `not ok`
//!   when no consumer call completes for `stall_ms`; the watchdog then
//!   prints the stacks of its threads and queues one `call_rcu()` probe, so
//!   that a grace period is in flight and the RCU stall detector reports
//!   the producer blocking it. The hang is broken when
//!   the module is removed (the hog is stopped first) or at detection time
//!   with `stall_rescue=1`.
//!   The blocked threads wait in `TASK_RTLOCK_WAIT`, which the hung-task
//!   detector does not watch, and khungtaskd itself sleeps on a timer-wheel
//!   timer that the dead `ktimers` threads never expire: no hung-task
//!   report comes from this scenario. The inversion makes one with
//!   `consumers=2` and bursts longer than `hung_task_timeout_secs`
//!   (`selftests/steps/hung-task.sh`): consumer A holds `ep->mtx` in
//!   `__ep_eventpoll_poll()` while it waits for the write side, and
//!   consumer B waits for `ep->mtx`, an rtmutex sleep in
//!   `TASK_UNINTERRUPTIBLE`, which khungtaskd reports.
//! * `throughput` (stress-epoll in the kernel): for N = 1, 2, 4, ... up to
//!   `threads_max`, N producers (`tp_prio`, unbound) each signal their own
//!   eventfd `events` times while one consumer drains them through the epoll
//!   file; one metrics line per N with `events_per_ms`.
//! * `soak`: the stall load (which includes the inversion measurement) for
//!   `duration_s`, heartbeats throughout; `not ok` on a hang or on a call
//!   over the latency threshold.
//!
//! # Parameters
//!
//! Defaults reproduce on a 2-vCPU VM. A priority of 0 means SCHED_OTHER,
//! 1..99 SCHED_FIFO. A CPU of -1 means unbound. Any invalid value makes
//! insmod fail with -EINVAL and one line naming the parameter and its range.
//!
//! | parameter | default | range | meaning |
//! |---|---|---|---|
//! | `scenario` | inversion | inversion, stall, throughput, soak | what to run |
//! | `epfd` | -1 | 0..2^31-1 (required) | epoll fd in the insmod process |
//! | `evfds` | "" | "a,b,c" / "a-b", 1..1024 fds (required) | O_NONBLOCK eventfds in the set |
//! | `duration_s` | 30 | 1..604800 | run time (not throughput) |
//! | `producers` | 1 | 1..64 | producer kthreads |
//! | `producer_prio` | 10 | 0..99 | |
//! | `producer_cpu` | 0 | -1, online CPU | |
//! | `consumers` | 1 | 1..8 | consumer kthreads |
//! | `consumer_prio` | 30 | 0..99 | |
//! | `consumer_cpu` | 1 | -1, online CPU | |
//! | `consumer_sleep_us` | 100 | 0..1000000 | sleep between two polls |
//! | `hogs` | 1 | 0..8 (>= 1 for stall, soak) | hog kthreads |
//! | `hog_prio` | 20 | 0..99 | |
//! | `hog_cpu` | 0 | -1, online CPU (!= timer_cpu for stall, soak) | |
//! | `hog_burst_ms` | 100 | 1..60000 (< hog_period_ms) | busy time per period |
//! | `hog_period_ms` | 250 | 2..600000 | |
//! | `threshold_pct` | 50 | 1..1000 | latency threshold: % of hog_burst_ms |
//! | `over_min` | 2 | 1..1000000 | such calls (starting at a burst start) for `not ok` |
//! | `tick_us` | 1000 | 50..1000000 | soft hrtimer period (stall, soak) |
//! | `timer_cpu` | 1 | online CPU | CPU of the soft hrtimer |
//! | `stall_ms` | 5000 | 100..3600000 | no consumer progress => hang |
//! | `stall_rescue` | false | bool | stop the hogs once a hang is declared |
//! | `events` | 20000 | 1..1000000000 | events per producer (throughput) |
//! | `threads_max` | 16 | 1..1024 (<= number of evfds) | last N (throughput) |
//! | `tp_prio` | 0 | 0..99 | policy of throughput threads |
//! | `heartbeat_ms` | 2000 | 100..3600000 | heartbeat interval |
//! | `watchdog_prio` | 90 | 1..99 | controller/watchdog priority |
//! | `watchdog_cpu` | 1 | -1, online CPU (!= hog_cpu) | controller/watchdog CPU |
//!
//! Eventfds used: inversion `producers`; stall and soak `producers` + 1 (the
//! last one is signalled by the timer); throughput `threads_max`.
//!
//! # Output (KTAP in dmesg)
//!
//! ```text
//! epoll_torture: KTAP version 1
//! epoll_torture: 1..1
//! epoll_torture: # heartbeat scenario=S t_ms=.. progress=.. events=.. ...
//! epoll_torture: # metrics scenario=S calls=.. lat_p50_us=.. ...
//! epoll_torture: ok 1 S   |   not ok 1 S # bug detected: ...
//! ```
//!
//! A removal before the end prints `ok 1 S # SKIP aborted by rmmod`.
//! Removal stops the controller, which stops its threads hogs first: that
//! also breaks a stall cycle, so rmmod returns in bounded time even from
//! the stall (measured ~0.1 s), and the last file references go with the
//! last thread.
//!
//! # Console during a stall
//!
//! Once the stall cycle closes, the hog's CPU never runs anything below
//! FIFO 20 again (`ktimers/0`, `irq_work/0`, `pr/ttyS0` if it was there),
//! and `ktimers/<timer_cpu>` is blocked: every timer-wheel timer and soft
//! hrtimer on both CPUs is dead. The scenario scripts therefore move the
//! printk thread and the serial IRQ to CPU1 first
//! (`selftests/steps/housekeeping.sh`), and `ept-run --echo` copies
//! `/dev/kmsg` to its stdout (a FIFO task on CPU1).

use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;
use kernel::{
    bindings,
    fs::{File, LocalFile},
    impl_has_hr_timer, new_condvar, new_mutex,
    prelude::*,
    sync::aref::ARef,
    sync::{
        atomic::{ordering::Relaxed, Atomic},
        completion::Completion,
        Arc, ArcBorrow, CondVar, Mutex,
    },
    time::{
        hrtimer::{
            HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer, HrTimerRestart,
            RelativePinnedSoftMode,
        },
        Delta, Monotonic,
    },
};

mod kthread;
mod stats;

use kthread::{should_stop, KThread, Prio};
use stats::Lat;

module! {
    type: EpollTorture,
    name: "epoll_torture",
    authors: ["epoll-torture project"],
    description: "Torture test for the eventpoll ready-list lock (rwlock vs spinlock on PREEMPT_RT)",
    license: "GPL",
    params: {
        epfd: i64 { default: -1, description: "epoll fd open in the insmod process (required)", },
        duration_s: i64 { default: 30, description: "run time in seconds, 1..604800", },
        producers: i64 { default: 1, description: "producer kthreads, 1..64", },
        producer_prio: i64 { default: 10, description: "0 SCHED_OTHER, 1..99 SCHED_FIFO", },
        producer_cpu: i64 { default: 0, description: "-1 unbound or an online CPU", },
        consumers: i64 { default: 1, description: "consumer kthreads, 1..8", },
        consumer_prio: i64 { default: 30, description: "0 SCHED_OTHER, 1..99 SCHED_FIFO", },
        consumer_cpu: i64 { default: 1, description: "-1 unbound or an online CPU", },
        consumer_sleep_us: i64 { default: 100, description: "sleep between polls, 0..1000000", },
        hogs: i64 { default: 1, description: "hog kthreads, 0..8", },
        hog_prio: i64 { default: 20, description: "0 SCHED_OTHER, 1..99 SCHED_FIFO", },
        hog_cpu: i64 { default: 0, description: "-1 unbound or an online CPU", },
        hog_burst_ms: i64 { default: 100, description: "busy time per period, 1..60000", },
        hog_period_ms: i64 { default: 250, description: "hog period, 2..600000, > hog_burst_ms", },
        threshold_pct: i64 { default: 50, description: "verdict threshold in % of hog_burst_ms", },
        over_min: i64 { default: 2, description: "calls over the threshold needed for not ok", },
        tick_us: i64 { default: 1000, description: "soft hrtimer period, 50..1000000", },
        timer_cpu: i64 { default: 1, description: "CPU of the soft hrtimer", },
        stall_ms: i64 { default: 5000, description: "no consumer progress for this long = hang", },
        stall_rescue: bool { default: false, description: "stop the hogs once a hang is declared", },
        events: i64 { default: 20000, description: "events per producer (throughput)", },
        threads_max: i64 { default: 16, description: "largest producer count (throughput)", },
        tp_prio: i64 { default: 0, description: "policy of throughput threads", },
        heartbeat_ms: i64 { default: 2000, description: "heartbeat interval, 100..3600000", },
        watchdog_prio: i64 { default: 90, description: "controller/watchdog FIFO prio, 1..99", },
        watchdog_cpu: i64 { default: 1, description: "-1 unbound or an online CPU (not hog_cpu)", },
    },
}

extern "C" {
    fn ept_param_scenario() -> *const u8;
    fn ept_param_evfds() -> *const u8;
    fn ept_vfs_poll(file: *mut c_void) -> c_uint;
    fn ept_cpu_online(cpu: c_int) -> c_int;
    fn ept_nr_cpu_ids() -> c_uint;
    fn ept_file_is_epoll(file: *mut c_void) -> c_int;
    fn ept_task_offset_pid() -> usize;
    fn ept_task_offset_policy() -> usize;
    fn ept_rcu_probe();
    fn ept_rcu_probe_state() -> c_int;
    fn ept_rcu_probe_flush();
}

const EPOLLIN: u32 = 0x1;
const MAX_EVFDS: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Inversion,
    Stall,
    Throughput,
    Soak,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Inversion => "inversion",
            Scenario::Stall => "stall",
            Scenario::Throughput => "throughput",
            Scenario::Soak => "soak",
        }
    }
    /// Whether the hog's burst is ended by the soft timer (the stall cycle).
    fn timer_driven(self) -> bool {
        matches!(self, Scenario::Stall | Scenario::Soak)
    }
}

/// Validated configuration.
#[derive(Clone, Copy)]
struct Config {
    scenario: Scenario,
    duration_ms: i64,
    producers: usize,
    producer_prio: u32,
    producer_cpu: Option<u32>,
    consumers: usize,
    consumer_prio: u32,
    consumer_cpu: Option<u32>,
    consumer_sleep_us: i64,
    hogs: usize,
    hog_prio: u32,
    hog_cpu: Option<u32>,
    hog_burst_ns: i64,
    hog_period_ns: i64,
    threshold_ns: u64,
    over_min: u64,
    tick_us: i64,
    timer_cpu: u32,
    stall_ms: i64,
    stall_rescue: bool,
    events: u64,
    threads_max: usize,
    tp_prio: u32,
    heartbeat_ms: i64,
    watchdog_prio: u32,
    watchdog_cpu: Option<u32>,
}

/// Checks `v` against `lo..=hi`, printing the one error line on failure.
fn range(name: &str, v: i64, lo: i64, hi: i64) -> Result<i64> {
    if v < lo || v > hi {
        pr_err!("invalid parameter {name}={v}: accepted range {lo}..{hi}\n");
        return Err(EINVAL);
    }
    Ok(v)
}

fn cpu_param(name: &str, v: i64, allow_unbound: bool) -> Result<Option<u32>> {
    // SAFETY: `ept_nr_cpu_ids()` only reads a kernel variable.
    let nr = i64::from(unsafe { ept_nr_cpu_ids() });
    let lo = if allow_unbound { -1 } else { 0 };
    if v == -1 && allow_unbound {
        return Ok(None);
    }
    // SAFETY: `ept_cpu_online()` range-checks `cpu` itself.
    if v < lo || v >= nr || unsafe { ept_cpu_online(v as c_int) } == 0 {
        let unb = if allow_unbound {
            "-1 (unbound) or "
        } else {
            ""
        };
        pr_err!(
            "invalid parameter {name}={v}: accepted {unb}an online CPU in 0..{}\n",
            nr - 1
        );
        return Err(EINVAL);
    }
    Ok(Some(v as u32))
}

fn c_str_param(p: *const u8) -> &'static [u8] {
    // SAFETY: The C helper returns a pointer to a NUL-terminated charp
    // parameter (or a static ""), which lives as long as the module.
    unsafe { CStr::from_char_ptr(p) }.to_bytes()
}

fn parse_scenario() -> Result<Scenario> {
    // SAFETY: Reads the `scenario` charp parameter pointer.
    let s = c_str_param(unsafe { ept_param_scenario() });
    Ok(match s {
        b"inversion" => Scenario::Inversion,
        b"stall" => Scenario::Stall,
        b"throughput" => Scenario::Throughput,
        b"soak" => Scenario::Soak,
        _ => {
            pr_err!(
                "invalid parameter scenario={}: accepted inversion|stall|throughput|soak\n",
                kernel::str::BStr::from_bytes(s)
            );
            return Err(EINVAL);
        }
    })
}

fn parse_num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    (v <= i64::from(i32::MAX)).then_some(v)
}

/// Parses "a,b,c" and "a-b" (mixable) into a list of fds.
fn parse_evfds() -> Result<KVec<u32>> {
    // SAFETY: Reads the `evfds` charp parameter pointer.
    let s = c_str_param(unsafe { ept_param_evfds() });
    let bad = || {
        pr_err!(
            "invalid parameter evfds={}: accepted \"a,b,c\" or \"a-b\", 1..{MAX_EVFDS} fds in 0..{}\n",
            kernel::str::BStr::from_bytes(s),
            i32::MAX
        );
        EINVAL
    };
    let mut out = KVec::new();
    if s.is_empty() {
        return Err(bad());
    }
    for part in s.split(|&c| c == b',') {
        let (a, b) = match part.iter().position(|&c| c == b'-') {
            Some(i) => (parse_num(&part[..i]), parse_num(&part[i + 1..])),
            None => (parse_num(part), parse_num(part)),
        };
        let (Some(a), Some(b)) = (a, b) else {
            return Err(bad());
        };
        if b < a || (b - a) as usize >= MAX_EVFDS || out.len() + ((b - a) as usize) >= MAX_EVFDS {
            return Err(bad());
        }
        for fd in a..=b {
            out.push(fd as u32, GFP_KERNEL)?;
        }
    }
    Ok(out)
}

fn prio(name: &str, v: i64) -> Result<u32> {
    Ok(range(name, v, 0, 99)? as u32)
}

impl Config {
    fn from_params(nevfds: usize) -> Result<Self> {
        use crate::module_parameters as p;
        let scenario = parse_scenario()?;
        let c = Config {
            scenario,
            duration_ms: range("duration_s", p::duration_s.value(), 1, 604800)? * 1000,
            producers: range("producers", p::producers.value(), 1, 64)? as usize,
            producer_prio: prio("producer_prio", p::producer_prio.value())?,
            producer_cpu: cpu_param("producer_cpu", p::producer_cpu.value(), true)?,
            consumers: range("consumers", p::consumers.value(), 1, 8)? as usize,
            consumer_prio: prio("consumer_prio", p::consumer_prio.value())?,
            consumer_cpu: cpu_param("consumer_cpu", p::consumer_cpu.value(), true)?,
            consumer_sleep_us: range(
                "consumer_sleep_us",
                p::consumer_sleep_us.value(),
                0,
                1_000_000,
            )?,
            hogs: range("hogs", p::hogs.value(), 0, 8)? as usize,
            hog_prio: prio("hog_prio", p::hog_prio.value())?,
            hog_cpu: cpu_param("hog_cpu", p::hog_cpu.value(), true)?,
            hog_burst_ns: range("hog_burst_ms", p::hog_burst_ms.value(), 1, 60000)? * 1_000_000,
            hog_period_ns: range("hog_period_ms", p::hog_period_ms.value(), 2, 600_000)?
                * 1_000_000,
            threshold_ns: 0,
            over_min: range("over_min", p::over_min.value(), 1, 1_000_000)? as u64,
            tick_us: range("tick_us", p::tick_us.value(), 50, 1_000_000)?,
            timer_cpu: cpu_param("timer_cpu", p::timer_cpu.value(), false)?.unwrap_or(0),
            stall_ms: range("stall_ms", p::stall_ms.value(), 100, 3_600_000)?,
            stall_rescue: p::stall_rescue.value(),
            events: range("events", p::events.value(), 1, 1_000_000_000)? as u64,
            threads_max: range("threads_max", p::threads_max.value(), 1, MAX_EVFDS as i64)?
                as usize,
            tp_prio: prio("tp_prio", p::tp_prio.value())?,
            heartbeat_ms: range("heartbeat_ms", p::heartbeat_ms.value(), 100, 3_600_000)?,
            watchdog_prio: range("watchdog_prio", p::watchdog_prio.value(), 1, 99)? as u32,
            watchdog_cpu: cpu_param("watchdog_cpu", p::watchdog_cpu.value(), true)?,
        };
        let pct = range("threshold_pct", p::threshold_pct.value(), 1, 1000)?;
        let c = Config {
            threshold_ns: (c.hog_burst_ns / 100 * pct) as u64,
            ..c
        };
        // Contradictory combinations.
        if c.hog_burst_ns >= c.hog_period_ns {
            pr_err!(
                "invalid parameter hog_burst_ms={}: accepted range 1..{} (below hog_period_ms)\n",
                c.hog_burst_ns / 1_000_000,
                c.hog_period_ns / 1_000_000 - 1
            );
            return Err(EINVAL);
        }
        if scenario.timer_driven() {
            if c.hogs == 0 {
                pr_err!(
                    "invalid parameter hogs=0: accepted range 1..8 for scenario {}\n",
                    scenario.name()
                );
                return Err(EINVAL);
            }
            if c.hog_cpu.is_none() || c.hog_cpu == Some(c.timer_cpu) {
                pr_err!(
                    "invalid parameter hog_cpu={}: accepted an online CPU other than timer_cpu={} for scenario {}\n",
                    p::hog_cpu.value(),
                    c.timer_cpu,
                    scenario.name()
                );
                return Err(EINVAL);
            }
        }
        // The watchdog must not share the hog's CPU: its printk() queues
        // irq_work there, and irq_work/N (FIFO 1) never runs behind the hog,
        // so nothing would reach the console during a hang.
        if c.hog_cpu.is_some() && c.watchdog_cpu == c.hog_cpu && scenario != Scenario::Throughput {
            pr_err!(
                "invalid parameter watchdog_cpu={}: accepted -1 or an online CPU other than hog_cpu={}\n",
                p::watchdog_cpu.value(),
                p::hog_cpu.value()
            );
            return Err(EINVAL);
        }
        let need = match scenario {
            Scenario::Inversion => c.producers,
            Scenario::Stall | Scenario::Soak => c.producers + 1,
            Scenario::Throughput => c.threads_max,
        };
        if nevfds < need {
            pr_err!(
                "invalid parameter evfds: {nevfds} eventfds given, scenario {} with these parameters needs at least {need} (1..{MAX_EVFDS})\n",
                scenario.name()
            );
            return Err(EINVAL);
        }
        Ok(c)
    }
}

/// Current `CLOCK_MONOTONIC` time in nanoseconds.
fn now_ns() -> i64 {
    // SAFETY: `ktime_get()` has no preconditions.
    unsafe { bindings::ktime_get() }
}

/// Sleeps `ns` (in chunks of at most 50 ms, to notice `kthread_stop()`)
/// with `usleep_range_state()`, an hrtimer sleeper, hard for RT tasks on
/// PREEMPT_RT. Never `fsleep()`/`msleep()` for long sleeps: from 4 ms up
/// (HZ=1000) `fsleep()` uses `msleep()`, a timer-wheel timer that expires
/// in the `ktimers/N` thread (FIFO 1), which the stall scenario blocks and
/// any FIFO producer starves. A hog woken that way only ever preempts a
/// producer that has just blocked, never one inside the lock, and a
/// watchdog sleeping that way dies with the hang it should report.
fn sleep_ns(ns: i64) {
    let end = now_ns() + ns;
    loop {
        let left = end - now_ns();
        if left <= 0 || should_stop() {
            return;
        }
        let us = (left.min(50_000_000) / 1000).max(1) as usize;
        // SAFETY: Sleeping is allowed in the kthreads that call this;
        // `TASK_IDLE` is a valid sleep state.
        unsafe { bindings::usleep_range_state(us, us + us / 16, bindings::TASK_IDLE) };
    }
}

/// An eventfd of the epoll set: a file reference and an eventfd context.
struct EvFd {
    file: ARef<File>,
    ctx: NonNull<bindings::eventfd_ctx>,
}

// SAFETY: `eventfd_ctx` is reference counted and all its operations used
// here (`eventfd_signal_mask`, reads through the file) take its own lock.
unsafe impl Send for EvFd {}
// SAFETY: See `Send`; no `&self` method needs exclusive access.
unsafe impl Sync for EvFd {}

fn fget(fd: u32, what: &str) -> Result<ARef<File>> {
    let Ok(f) = LocalFile::fget(fd) else {
        pr_err!("invalid parameter {what}: fd {fd} is not open in the insmod process (accepted: an open fd)\n");
        return Err(EINVAL);
    };
    // SAFETY: We are in module init (the finit_module syscall of insmod);
    // insmod has no `fdget_pos()` active on this fd.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(f) })
}

impl EvFd {
    fn new(fd: u32) -> Result<Self> {
        let file = fget(fd, "evfds")?;
        if file.flags() & kernel::fs::file::flags::O_NONBLOCK == 0 {
            pr_err!("invalid parameter evfds: fd {fd} is not O_NONBLOCK (accepted: O_NONBLOCK eventfds)\n");
            return Err(EINVAL);
        }
        // SAFETY: `file` is a valid file; the function checks that it is an
        // eventfd and takes a reference on its context.
        let ctx = unsafe { bindings::eventfd_ctx_fileget(file.as_ptr()) };
        match kernel::error::from_err_ptr(ctx).ok().and_then(NonNull::new) {
            Some(ctx) => Ok(Self { file, ctx }),
            None => {
                pr_err!(
                    "invalid parameter evfds: fd {fd} is not an eventfd (accepted: eventfds)\n"
                );
                Err(EINVAL)
            }
        }
    }

    /// `eventfd_signal()`: runs `ep_poll_callback()` of every epoll instance
    /// watching this eventfd, in the calling context.
    fn signal(&self) {
        // SAFETY: `ctx` is a counted, valid eventfd context.
        unsafe { bindings::eventfd_signal_mask(self.ctx.as_ptr(), 0) };
    }

    /// Reads (resets) the counter; returns its value, 0 if it was zero.
    fn drain(&self) -> u64 {
        let mut v: u64 = 0;
        let mut pos: bindings::loff_t = 0;
        // SAFETY: The file is a valid O_NONBLOCK eventfd and `v` is an
        // 8-byte buffer in kernel memory, as `kernel_read()` expects.
        let n = unsafe {
            bindings::kernel_read(
                self.file.as_ptr(),
                (&raw mut v).cast::<c_void>(),
                8,
                &raw mut pos,
            )
        };
        if n == 8 {
            v
        } else {
            0
        }
    }
}

impl Drop for EvFd {
    fn drop(&mut self) {
        // SAFETY: Drops the reference taken by `eventfd_ctx_fileget()`.
        unsafe { bindings::eventfd_ctx_put(self.ctx.as_ptr()) };
    }
}

/// Results merged by the consumers at the end of a run.
struct Results {
    lat: KVec<Lat>,
    round_done: bool,
}

/// State shared by every thread of a run.
#[pin_data]
struct Shared {
    cfg: Config,
    ep: ARef<File>,
    evs: KVec<EvFd>,
    /// Start gate: workers wait for it, so they all start together.
    #[pin]
    go: Completion,
    #[pin]
    results: Mutex<Results>,
    /// Signalled by the throughput consumer when a round is drained.
    #[pin]
    round_cv: CondVar,
    /// Workers leave their loops (end of the run).
    stop_work: Atomic<bool>,
    /// Hogs stop spinning (hang declared with `stall_rescue`).
    rescue: Atomic<bool>,
    /// Workers still inside their loops.
    active: Atomic<i64>,
    polls: Atomic<u64>,
    events: Atomic<u64>,
    consumed: Atomic<u64>,
    bursts: Atomic<u64>,
    ticks: Atomic<u64>,
    /// Time (ns) last seen by the soft timer callback.
    tick_ns: Atomic<i64>,
    /// Start time (ns) of the last hog burst.
    burst_start_ns: Atomic<i64>,
    /// Start time (ns) of the `vfs_poll()` in progress in consumer 0, or 0.
    poll_start_ns: Atomic<i64>,
    lat_max_ns: Atomic<u64>,
}

impl Shared {
    fn new(cfg: Config, ep: ARef<File>, evs: KVec<EvFd>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cfg,
            ep,
            evs,
            go <- Completion::new(),
            results <- new_mutex!(Results { lat: KVec::new(), round_done: false }),
            round_cv <- new_condvar!(),
            stop_work: Atomic::new(false),
            rescue: Atomic::new(false),
            active: Atomic::new(0),
            polls: Atomic::new(0),
            events: Atomic::new(0),
            consumed: Atomic::new(0),
            bursts: Atomic::new(0),
            ticks: Atomic::new(0),
            tick_ns: Atomic::new(0),
            burst_start_ns: Atomic::new(0),
            poll_start_ns: Atomic::new(0),
            lat_max_ns: Atomic::new(0),
        })
    }

    /// One timed `vfs_poll()` of the epoll file; resets ready eventfds.
    fn poll_once(&self, first: usize, n: usize, track: bool) -> u64 {
        let t0 = now_ns();
        if track {
            self.poll_start_ns.store(t0, Relaxed);
        }
        // SAFETY: `ep` is a counted reference to an epoll file.
        let mask = unsafe { ept_vfs_poll(self.ep.as_ptr().cast()) };
        let dt = (now_ns() - t0).max(0) as u64;
        if track {
            self.poll_start_ns.store(0, Relaxed);
        }
        if mask & EPOLLIN != 0 {
            let mut got = 0;
            for ev in self.evs.iter().skip(first).take(n) {
                got += ev.drain();
            }
            self.consumed.add(got, Relaxed);
        }
        self.polls.add(1, Relaxed);
        let mut cur = self.lat_max_ns.load(Relaxed);
        while dt > cur {
            match self.lat_max_ns.cmpxchg(cur, dt, Relaxed) {
                Ok(_) => break,
                Err(v) => cur = v,
            }
        }
        dt
    }

    fn drain_all(&self) {
        for ev in self.evs.iter() {
            ev.drain();
        }
    }
}

/// The soft hrtimer of the stall scenario.
#[pin_data]
struct Ticker {
    #[pin]
    timer: HrTimer<Self>,
    shared: Arc<Shared>,
}

impl HrTimerCallback for Ticker {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        let s = &this.shared;
        // On RT this runs in ktimers/<timer_cpu>: ep_poll_callback() on the
        // read side, queued behind a waiting writer on rwlock kernels.
        if let Some(ev) = s.evs.get(s.cfg.producers) {
            ev.signal();
        }
        s.ticks.add(1, Relaxed);
        s.tick_ns.store(now_ns(), Relaxed);
        ctx.forward_now(Delta::from_micros(s.cfg.tick_us));
        HrTimerRestart::Restart
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Ticker {
        mode: RelativePinnedSoftMode<Monotonic>, field: self.timer
    }
}

fn producer(s: Arc<Shared>, idx: usize, count: Option<u64>) {
    s.go.wait_for_completion();
    let ev = &s.evs[idx];
    let mut n: u64 = 0;
    while !should_stop() && !s.stop_work.load(Relaxed) {
        ev.signal();
        n += 1;
        if n % 256 == 0 {
            s.events.add(256, Relaxed);
        }
        if count == Some(n) {
            break;
        }
    }
    s.events.add(n % 256, Relaxed);
    s.active.add(-1, Relaxed);
}

fn consumer(s: Arc<Shared>, idx: usize, mut lat: Lat) {
    s.go.wait_for_completion();
    let n = match s.cfg.scenario {
        Scenario::Inversion => s.cfg.producers,
        _ => s.cfg.producers + 1,
    };
    while !should_stop() && !s.stop_work.load(Relaxed) {
        let dt = s.poll_once(0, n, idx == 0);
        lat.record_at(dt, now_ns(), s.burst_start_ns.load(Relaxed));
        if s.cfg.consumer_sleep_us > 0 {
            sleep_ns(s.cfg.consumer_sleep_us * 1000);
        }
    }
    let _ = s.results.lock().lat.push(lat, GFP_KERNEL);
    s.active.add(-1, Relaxed);
}

fn hog(s: Arc<Shared>) {
    s.go.wait_for_completion();
    let (burst, period) = (s.cfg.hog_burst_ns, s.cfg.hog_period_ns);
    let mut next = now_ns() + period - burst;
    while !should_stop() && !s.stop_work.load(Relaxed) {
        sleep_ns(next - now_ns());
        if should_stop() || s.stop_work.load(Relaxed) {
            break;
        }
        let start = now_ns();
        s.burst_start_ns.store(start, Relaxed);
        s.bursts.add(1, Relaxed);
        if s.cfg.scenario.timer_driven() {
            // The burst ends only when the soft timer on timer_cpu has seen
            // its end: if ktimers/<timer_cpu> is blocked, it never ends.
            while s.tick_ns.load(Relaxed) < start + burst
                && !should_stop()
                && !s.rescue.load(Relaxed)
            {
                core::hint::spin_loop();
            }
        } else {
            // A burst that outlasts the run ends with it (the drain).
            while now_ns() < start + burst && !should_stop() && !s.stop_work.load(Relaxed) {
                core::hint::spin_loop();
            }
        }
        next += period;
        let now = now_ns();
        if next < now {
            next = now + period - burst;
        }
    }
    s.active.add(-1, Relaxed);
}

/// The ticker thread: arms the pinned soft hrtimer on its own CPU and
/// cancels it when stopped.
fn ticker(s: Arc<Shared>, t: Arc<Ticker>) {
    s.tick_ns.store(now_ns(), Relaxed);
    let handle = t.start(Delta::from_micros(s.cfg.tick_us));
    while !should_stop() {
        sleep_ns(10_000_000);
    }
    drop(handle);
}

fn pr_result(sc: Scenario, bug: Option<core::fmt::Arguments<'_>>) {
    match bug {
        None => pr_info!("ok 1 {}\n", sc.name()),
        Some(why) => pr_info!("not ok 1 {} # bug detected: {}\n", sc.name(), why),
    }
}

/// Threads of one timed run, in the order they must be stopped: hogs first
/// (which breaks a stall cycle), then the ticker, producers, consumers.
struct Workers {
    hogs: KVec<KThread>,
    ticker: Option<KThread>,
    producers: KVec<KThread>,
    consumers: KVec<KThread>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.hogs.clear();
        self.ticker = None;
        self.producers.clear();
        self.consumers.clear();
    }
}

/// Starts one worker kthread, counted in `s.active` while it runs.
fn spawn_worker<F>(
    s: &Arc<Shared>,
    name: core::fmt::Arguments<'_>,
    cpu: Option<u32>,
    prio: Prio,
    f: F,
) -> Result<KThread>
where
    F: FnOnce() + Send + 'static,
{
    s.active.add(1, Relaxed);
    KThread::spawn_fmt(name, cpu, prio, f).inspect_err(|_| s.active.add(-1, Relaxed))
}

fn spawn_timed(s: &Arc<Shared>) -> Result<Workers> {
    let c = &s.cfg;
    let mut w = Workers {
        hogs: KVec::new(),
        ticker: None,
        producers: KVec::new(),
        consumers: KVec::new(),
    };
    for i in 0..c.consumers {
        let lat = Lat::new(c.threshold_ns, stats::MAX_SAMPLES)?;
        let s2 = s.clone();
        w.consumers.push(
            spawn_worker(
                s,
                fmt!("ept_cons/{i}"),
                c.consumer_cpu,
                Prio(c.consumer_prio),
                move || consumer(s2, i, lat),
            )?,
            GFP_KERNEL,
        )?;
    }
    for i in 0..c.producers {
        let s2 = s.clone();
        w.producers.push(
            spawn_worker(
                s,
                fmt!("ept_prod/{i}"),
                c.producer_cpu,
                Prio(c.producer_prio),
                move || producer(s2, i, None),
            )?,
            GFP_KERNEL,
        )?;
    }
    for i in 0..c.hogs {
        let s2 = s.clone();
        w.hogs.push(
            spawn_worker(
                s,
                fmt!("ept_hog/{i}"),
                c.hog_cpu,
                Prio(c.hog_prio),
                move || hog(s2),
            )?,
            GFP_KERNEL,
        )?;
    }
    if c.scenario.timer_driven() {
        let t = Arc::pin_init(
            pin_init!(Ticker {
                timer <- HrTimer::new(),
                shared: s.clone(),
            }),
            GFP_KERNEL,
        )?;
        let s2 = s.clone();
        w.ticker = Some(KThread::spawn(
            c"ept_tick",
            Some(c.timer_cpu),
            Prio(c.watchdog_prio),
            move || ticker(s2, t),
        )?);
    }
    Ok(w)
}

/// Watches a run: heartbeats, hang detection. Returns the longest time
/// without consumer progress seen (ms) and whether a hang was declared.
struct Watch {
    start: i64,
    last_hb: i64,
    last_polls: u64,
    last_change: i64,
    longest_ms: i64,
    hang: bool,
}

impl Watch {
    fn new() -> Self {
        let t = now_ns();
        Self {
            start: t,
            last_hb: t,
            last_polls: 0,
            last_change: t,
            longest_ms: 0,
            hang: false,
        }
    }

    fn heartbeat(&self, s: &Shared, phase: &str, now: i64) {
        let ps = s.poll_start_ns.load(Relaxed);
        let blocked_ms = if ps == 0 { 0 } else { (now - ps) / 1_000_000 };
        pr_info!(
            "# heartbeat scenario={} t_ms={} phase={} progress={} events={} consumed={} bursts={} ticks={} lat_max_us={} blocked_ms={} stalled_ms={}\n",
            s.cfg.scenario.name(),
            (now - self.start) / 1_000_000,
            phase,
            s.polls.load(Relaxed),
            s.events.load(Relaxed),
            s.consumed.load(Relaxed),
            s.bursts.load(Relaxed),
            s.ticks.load(Relaxed),
            s.lat_max_ns.load(Relaxed) / 1000,
            blocked_ms,
            (now - self.last_change) / 1_000_000
        );
    }

    /// One watchdog step; returns true if a hang was just declared.
    fn step(&mut self, s: &Shared, phase: &str, polls: u64) -> bool {
        let now = now_ns();
        if polls != self.last_polls {
            self.last_polls = polls;
            self.last_change = now;
        }
        let stalled_ms = (now - self.last_change) / 1_000_000;
        // While draining, the consumers leave on purpose: only a consumer
        // still blocked in vfs_poll() counts then.
        let counts = phase == "run" || s.poll_start_ns.load(Relaxed) != 0;
        if counts {
            self.longest_ms = self.longest_ms.max(stalled_ms);
        }
        if now - self.last_hb >= s.cfg.heartbeat_ms * 1_000_000 {
            self.last_hb = now;
            self.heartbeat(s, phase, now);
        }
        if counts && !self.hang && stalled_ms >= s.cfg.stall_ms {
            self.hang = true;
            return true;
        }
        false
    }
}

fn run_timed(s: &Arc<Shared>) -> Result<bool> {
    let c = s.cfg;
    let sc = c.scenario;
    let workers = spawn_timed(s);
    // Open the gate even on failure so that every created worker can exit.
    s.go.complete_all();
    let workers = workers?;
    let mut w = Watch::new();
    let end = w.start + c.duration_ms * 1_000_000;
    let mut reported = false;
    let mut rcu_probe_at = 0i64;
    loop {
        // SAFETY: Reads an atomic in the C helper.
        if rcu_probe_at != 0 && unsafe { ept_rcu_probe_state() } == 2 {
            pr_info!(
                "# rcu_probe: grace period completed after {} ms\n",
                (now_ns() - rcu_probe_at) / 1_000_000
            );
            rcu_probe_at = 0;
        }
        if should_stop() {
            drop(workers);
            return Ok(false);
        }
        let now = now_ns();
        let phase = if now < end { "run" } else { "drain" };
        if now >= end {
            s.stop_work.store(true, Relaxed);
            if s.active.load(Relaxed) == 0 {
                break;
            }
        }
        if w.step(s, phase, s.polls.load(Relaxed)) && !reported {
            // A hang: report now, the run may never end.
            reported = true;
            pr_info!(
                "# metrics scenario={} hang=1 calls={} events={} consumed={} bursts={} ticks={} lat_max_us={} stalled_ms={} stall_ms={}\n",
                sc.name(),
                s.polls.load(Relaxed),
                s.events.load(Relaxed),
                s.consumed.load(Relaxed),
                s.bursts.load(Relaxed),
                s.ticks.load(Relaxed),
                s.lat_max_ns.load(Relaxed) / 1000,
                w.longest_ms,
                c.stall_ms
            );
            pr_result(
                sc,
                Some(fmt!(
                    "hang: no consumer progress for {} ms (consumer blocked in vfs_poll for {} ms)",
                    w.longest_ms,
                    {
                        let ps = s.poll_start_ns.load(Relaxed);
                        if ps == 0 {
                            0
                        } else {
                            (now_ns() - ps) / 1_000_000
                        }
                    }
                )),
            );
            // The blocked threads, for the record (like a hung task report).
            for v in [&workers.consumers, &workers.producers, &workers.hogs] {
                for t in v.iter() {
                    t.show();
                }
            }
            if let Some(t) = &workers.ticker {
                t.show();
            }
            // Put a grace period in flight: with the producer preempted in
            // its RCU read-side section it cannot end, and the RCU stall
            // detector reports it (nothing else may be asking for one).
            // SAFETY: Queues a static rcu_head once; flushed at exit.
            unsafe { ept_rcu_probe() };
            rcu_probe_at = now_ns();
            if c.stall_rescue {
                pr_info!("# stall_rescue: stopping the hogs\n");
                s.rescue.store(true, Relaxed);
            }
        }
        sleep_ns(10_000_000);
    }
    let elapsed_ms = (now_ns() - w.start) / 1_000_000;
    drop(workers);
    let mut lat = Lat::new(c.threshold_ns, 0)?;
    for l in s.results.lock().lat.iter() {
        lat.merge(l);
    }
    let summary = lat.summary()?;
    pr_info!(
        "# metrics scenario={} hang={} duration_ms={} events={} consumed={} bursts={} ticks={} hog_burst_ms={} hog_period_ms={} longest_stall_ms={} {}\n",
        sc.name(),
        u8::from(w.hang),
        elapsed_ms,
        s.events.load(Relaxed),
        s.consumed.load(Relaxed),
        s.bursts.load(Relaxed),
        s.ticks.load(Relaxed),
        c.hog_burst_ns / 1_000_000,
        c.hog_period_ns / 1_000_000,
        w.longest_ms,
        summary.to_str().unwrap_or("?")
    );
    if !reported {
        let check_lat = matches!(sc, Scenario::Inversion | Scenario::Soak);
        if check_lat && lat.at_burst_start >= c.over_min {
            pr_result(
                sc,
                Some(fmt!(
                    "priority inversion: {} of {} calls over {} us starting just after a hog burst began ({} over in all), max {} us",
                    lat.at_burst_start,
                    lat.count,
                    c.threshold_ns / 1000,
                    lat.over,
                    lat.max_ns / 1000
                )),
            );
        } else if lat.count == 0 {
            pr_info!("not ok 1 {} # no consumer call completed\n", sc.name());
        } else {
            pr_result(sc, None);
        }
    }
    Ok(true)
}

fn run_throughput(s: &Arc<Shared>) -> Result<bool> {
    let c = s.cfg;
    s.go.complete_all();
    let mut n = 1usize;
    let mut w = Watch::new();
    loop {
        s.drain_all();
        s.events.store(0, Relaxed);
        s.consumed.store(0, Relaxed);
        s.polls.store(0, Relaxed);
        s.results.lock().round_done = false;
        let total = c.events * n as u64;
        let t0 = now_ns();
        let s2 = s.clone();
        let cons = KThread::spawn(c"ept_tpcons", None, Prio(c.tp_prio), move || {
            let s = s2;
            while !should_stop() && s.consumed.load(Relaxed) < total {
                s.poll_once(0, n, false);
            }
            s.results.lock().round_done = true;
            s.round_cv.notify_all();
        })?;
        let mut prods = KVec::new();
        for i in 0..n {
            let s2 = s.clone();
            prods.push(
                spawn_worker(s, fmt!("ept_tp/{i}"), None, Prio(c.tp_prio), move || {
                    producer(s2, i, Some(c.events))
                })?,
                GFP_KERNEL,
            )?;
        }
        w.last_change = now_ns();
        loop {
            let mut g = s.results.lock();
            if g.round_done {
                break;
            }
            let timed_out = s
                .round_cv
                .wait_interruptible_timeout(&mut g, kernel::time::msecs_to_jiffies(100));
            drop(g);
            if should_stop() {
                drop(prods);
                drop(cons);
                return Ok(false);
            }
            let _ = timed_out;
            if w.step(s, "run", s.consumed.load(Relaxed)) {
                pr_info!(
                    "# metrics scenario=throughput threads={n} hang=1 events={} consumed={}\n",
                    s.events.load(Relaxed),
                    s.consumed.load(Relaxed)
                );
                pr_result(
                    Scenario::Throughput,
                    Some(fmt!(
                        "hang: no progress for {} ms with {n} threads",
                        w.longest_ms
                    )),
                );
                return Ok(true);
            }
        }
        let el = (now_ns() - t0).max(1);
        drop(prods);
        drop(cons);
        let per_ms_x100 = total * 100_000 / (el as u64 / 1000).max(1);
        pr_info!(
            "# metrics scenario=throughput threads={n} events={total} elapsed_us={} events_per_ms={}.{:02} calls={}\n",
            el / 1000,
            per_ms_x100 / 100,
            per_ms_x100 % 100,
            s.polls.load(Relaxed)
        );
        if n >= c.threads_max {
            break;
        }
        n = (n * 2).min(c.threads_max);
    }
    pr_result(Scenario::Throughput, None);
    Ok(true)
}

fn controller(s: Arc<Shared>) {
    let sc = s.cfg.scenario;
    let r = match sc {
        Scenario::Throughput => run_throughput(&s),
        _ => run_timed(&s),
    };
    match r {
        Ok(true) => {}
        Ok(false) => pr_info!("ok 1 {} # SKIP aborted by rmmod\n", sc.name()),
        Err(e) => pr_info!("not ok 1 {} # error {:?} starting the run\n", sc.name(), e),
    }
    // Stay until rmmod, so that the result is printed once.
    while !should_stop() {
        sleep_ns(100_000_000);
    }
}

struct EpollTorture {
    ctl: Option<KThread>,
}

/// Where bindgen put `task_struct.pid` and `.policy`, as data in the .ko:
/// `qemu/build-module.sh` compares it with the C side's
/// `ept_c_task_offsets` after every build, and `check_layout()` again at
/// load time (the bindgen layout trap of `CONFIG_SCHEDSTATS=n`).
#[used]
#[no_mangle]
static EPT_RUST_TASK_OFFSETS: [u64; 2] = [
    core::mem::offset_of!(bindings::task_struct, pid) as u64,
    core::mem::offset_of!(bindings::task_struct, policy) as u64,
];

fn check_layout() -> Result {
    // SAFETY: The helpers only return `offsetof()` constants.
    let (c_pid, c_pol) = unsafe { (ept_task_offset_pid(), ept_task_offset_policy()) };
    let [r_pid, r_pol] = EPT_RUST_TASK_OFFSETS.map(|o| o as usize);
    if c_pid != r_pid || c_pol != r_pol {
        pr_err!(
            "refusing to load: bindgen task_struct layout differs from C (pid at {r_pid} vs {c_pid}, policy at {r_pol} vs {c_pol}); rebuild with CONFIG_SCHEDSTATS=y\n"
        );
        return Err(EINVAL);
    }
    Ok(())
}

impl kernel::Module for EpollTorture {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        check_layout()?;
        let fds = parse_evfds()?;
        let cfg = Config::from_params(fds.len())?;
        let ep_fd = module_parameters::epfd.value();
        let ep_fd = range("epfd", ep_fd, 0, i64::from(i32::MAX))? as u32;
        let ep = fget(ep_fd, "epfd")?;
        // SAFETY: `ep` is a valid file.
        if unsafe { ept_file_is_epoll(ep.as_ptr().cast()) } == 0 {
            pr_err!("invalid parameter epfd={ep_fd}: not an epoll fd (accepted: an epoll fd)\n");
            return Err(EINVAL);
        }
        let mut evs = KVec::with_capacity(fds.len(), GFP_KERNEL)?;
        for fd in fds.iter() {
            evs.push(EvFd::new(*fd)?, GFP_KERNEL)?;
        }
        let shared = Arc::pin_init(Shared::new(cfg, ep, evs), GFP_KERNEL)?;
        pr_info!("KTAP version 1\n");
        pr_info!("1..1\n");
        pr_info!(
            "# config scenario={} duration_s={} producers={}@{}/cpu{:?} consumers={}@{}/cpu{:?} hogs={}@{}/cpu{:?} burst_ms={} period_ms={} threshold_us={} tick_us={} timer_cpu={} stall_ms={}\n",
            cfg.scenario.name(),
            cfg.duration_ms / 1000,
            cfg.producers,
            cfg.producer_prio,
            cfg.producer_cpu,
            cfg.consumers,
            cfg.consumer_prio,
            cfg.consumer_cpu,
            cfg.hogs,
            cfg.hog_prio,
            cfg.hog_cpu,
            cfg.hog_burst_ns / 1_000_000,
            cfg.hog_period_ns / 1_000_000,
            cfg.threshold_ns / 1000,
            cfg.tick_us,
            cfg.timer_cpu,
            cfg.stall_ms
        );
        let s2 = shared.clone();
        let ctl = KThread::spawn(
            c"ept_ctl",
            cfg.watchdog_cpu,
            Prio(cfg.watchdog_prio),
            move || controller(s2),
        )?;
        Ok(EpollTorture { ctl: Some(ctl) })
    }
}

impl Drop for EpollTorture {
    fn drop(&mut self) {
        // Stops the controller, which stops every thread it owns (hogs
        // first); the last `Arc<Shared>` then drops the file references.
        self.ctl = None;
        // SAFETY: Waits for the RCU probe callback, if one was queued.
        unsafe { ept_rcu_probe_flush() };
        pr_info!("# unloaded\n");
    }
}
