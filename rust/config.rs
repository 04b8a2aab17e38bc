// SPDX-License-Identifier: GPL-2.0

//! The validated configuration of a run: the parameters' values after
//! their range checks (params.rs), CPU checks, and the rules that tie
//! several parameters together. Every rejection prints one
//! `invalid parameter NAME=VALUE: accepted ...` line.

use crate::params::{NPARAMS, P, SPECS};
use crate::scenario::{self, Ops};
use kernel::{cpu::CpuId, prelude::*};

/// Raw parameter values, in [`SPECS`] order, plus the two strings.
pub(crate) struct Raw<'a> {
    pub(crate) ints: [i64; NPARAMS],
    pub(crate) scenario: &'a [u8],
    pub(crate) evfds: &'a [u8],
}

impl Raw<'_> {
    /// The value of `p`, checked against its range.
    fn int(&self, p: P) -> Result<i64> {
        SPECS[p as usize].check(self.ints[p as usize])
    }

    fn prio(&self, p: P) -> Result<Policy> {
        Ok(Policy::from_prio(self.int(p)? as u32))
    }

    /// A CPU parameter: an online CPU, or -1 (unbound) when `unbound_ok`.
    fn cpu(&self, p: P, unbound_ok: bool) -> Result<Option<CpuId>> {
        let (v, name) = (self.ints[p as usize], SPECS[p as usize].name);
        if v == -1 && unbound_ok {
            return Ok(None);
        }
        let cpu = i32::try_from(v)
            .ok()
            .and_then(CpuId::from_i32)
            .filter(|c| cpu_online(*c));
        if cpu.is_none() {
            let unb = if unbound_ok { "-1 (unbound) or " } else { "" };
            pr_err!(
                "invalid parameter {name}={v}: accepted {unb}an online CPU in 0..{}\n",
                kernel::cpu::nr_cpu_ids() - 1
            );
            return Err(EINVAL);
        }
        Ok(cpu)
    }
}

extern "C" {
    fn ept_cpu_online(cpu: u32) -> bool;
}

/// Whether `cpu` is online (`cpu_online()` is an inline C function).
fn cpu_online(cpu: CpuId) -> bool {
    // SAFETY: `cpu` is a valid CPU id (`CpuId` invariant); the helper only
    // reads the online mask.
    unsafe { ept_cpu_online(cpu.as_u32()) }
}

/// Scheduling policy of a thread: `SCHED_OTHER` (nice 0) or `SCHED_FIFO`
/// at a priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Other,
    Fifo(u32),
}

impl Policy {
    /// 0 is `SCHED_OTHER`, 1..=99 `SCHED_FIFO` at that priority.
    pub(crate) fn from_prio(p: u32) -> Self {
        if p == 0 {
            Policy::Other
        } else {
            Policy::Fifo(p)
        }
    }
    /// The priority as given (0 for `SCHED_OTHER`).
    pub(crate) fn prio(self) -> u32 {
        match self {
            Policy::Other => 0,
            Policy::Fifo(p) => p,
        }
    }
}

/// A thread placement: policy and CPU (`None`: unbound).
#[derive(Clone, Copy)]
pub(crate) struct Place {
    pub(crate) policy: Policy,
    pub(crate) cpu: Option<CpuId>,
}

/// A validated configuration.
#[derive(Clone, Copy)]
pub(crate) struct Config {
    pub(crate) scenario: &'static Ops,
    pub(crate) epfd: u32,
    pub(crate) duration_ms: i64,
    pub(crate) producers: usize,
    pub(crate) producer: Place,
    pub(crate) consumers: usize,
    pub(crate) consumer: Place,
    pub(crate) consumer_sleep_us: i64,
    pub(crate) hogs: usize,
    pub(crate) hog: Place,
    pub(crate) hog_burst_ns: i64,
    pub(crate) hog_period_ns: i64,
    pub(crate) hog_probes: u32,
    pub(crate) probe_ns: i64,
    pub(crate) threshold_ns: i64,
    pub(crate) over_min: u64,
    pub(crate) budget_bursts: u64,
    pub(crate) tick_us: i64,
    pub(crate) timer_cpu: CpuId,
    pub(crate) stall_ms: i64,
    pub(crate) stall_rescue: bool,
    pub(crate) events: u64,
    pub(crate) threads_max: usize,
    pub(crate) tp: Policy,
    pub(crate) heartbeat_ms: i64,
    pub(crate) watchdog: Place,
    pub(crate) trace: bool,
    pub(crate) fail_spawn: u32,
}

/// Prints the one error line for a rejected combination.
fn reject(name: &str, v: impl kernel::fmt::Display, accepted: core::fmt::Arguments<'_>) -> Error {
    pr_err!("invalid parameter {name}={v}: accepted {accepted}\n");
    EINVAL
}

impl Config {
    /// Validates every parameter. `nevfds` is the number of fds in `evfds`.
    pub(crate) fn from_raw(r: &Raw<'_>, nevfds: usize) -> Result<Self> {
        let scenario = scenario::by_name(r.scenario).ok_or_else(|| {
            reject(
                "scenario",
                kernel::str::BStr::from_bytes(r.scenario),
                format_args!("{}", scenario::NAMES),
            )
        })?;
        let c = Config {
            scenario,
            epfd: r.int(P::epfd)? as u32,
            duration_ms: r.int(P::duration_s)? * 1000,
            producers: r.int(P::producers)? as usize,
            producer: Place {
                policy: r.prio(P::producer_prio)?,
                cpu: r.cpu(P::producer_cpu, true)?,
            },
            consumers: r.int(P::consumers)? as usize,
            consumer: Place {
                policy: r.prio(P::consumer_prio)?,
                cpu: r.cpu(P::consumer_cpu, true)?,
            },
            consumer_sleep_us: r.int(P::consumer_sleep_us)?,
            hogs: r.int(P::hogs)? as usize,
            hog: Place {
                policy: r.prio(P::hog_prio)?,
                cpu: r.cpu(P::hog_cpu, true)?,
            },
            hog_burst_ns: r.int(P::hog_burst_ms)? * 1_000_000,
            hog_period_ns: r.int(P::hog_period_ms)? * 1_000_000,
            hog_probes: r.int(P::hog_probes)? as u32,
            probe_ns: r.int(P::probe_us)? * 1000,
            threshold_ns: r.int(P::hog_burst_ms)? * 10_000 * r.int(P::threshold_pct)?,
            over_min: r.int(P::over_min)? as u64,
            budget_bursts: r.int(P::budget_bursts)? as u64,
            tick_us: r.int(P::tick_us)?,
            timer_cpu: r.cpu(P::timer_cpu, false)?.ok_or(EINVAL)?,
            stall_ms: r.int(P::stall_ms)?,
            stall_rescue: r.int(P::stall_rescue)? == 1,
            events: r.int(P::events)? as u64,
            threads_max: r.int(P::threads_max)? as usize,
            tp: r.prio(P::tp_prio)?,
            heartbeat_ms: r.int(P::heartbeat_ms)?,
            watchdog: Place {
                policy: Policy::Fifo(r.int(P::watchdog_prio)? as u32),
                cpu: r.cpu(P::watchdog_cpu, true)?,
            },
            trace: r.int(P::trace)? == 1,
            fail_spawn: r.int(P::fail_spawn)? as u32,
        };
        c.check_combinations(nevfds)?;
        (c.scenario.check)(&c)?;
        Ok(c)
    }

    fn check_combinations(&self, nevfds: usize) -> Result {
        let ms = |ns: i64| ns / 1_000_000;
        if self.hog_burst_ns >= self.hog_period_ns {
            return Err(reject(
                "hog_burst_ms",
                ms(self.hog_burst_ns),
                format_args!("1..{} (below hog_period_ms)", ms(self.hog_period_ns) - 1),
            ));
        }
        if self.probe_ns >= self.hog_burst_ns {
            return Err(reject(
                "probe_us",
                self.probe_ns / 1000,
                format_args!("100..{} (below hog_burst_ms)", self.hog_burst_ns / 1000 - 1),
            ));
        }
        // The watchdog must not share the hog's CPU: its printk() queues
        // irq_work there, and irq_work/N (FIFO 1) never runs behind the
        // hog, so nothing would reach the console during a hang.
        if self.hogs > 0 && self.hog.cpu.is_some() && self.watchdog.cpu == self.hog.cpu {
            return Err(reject(
                "watchdog_cpu",
                self.watchdog.cpu.map_or(-1, |c| i64::from(c.as_u32())),
                format_args!("-1 or an online CPU other than hog_cpu"),
            ));
        }
        let need = (self.scenario.evfds)(self);
        if nevfds < need {
            return Err(reject(
                "evfds",
                format_args!("<{nevfds} fds>"),
                format_args!(
                    "at least {need} eventfds for scenario {} with these parameters (1..{})",
                    self.scenario.name,
                    crate::params::MAX_EVFDS
                ),
            ));
        }
        Ok(())
    }
}
