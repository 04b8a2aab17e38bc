// SPDX-License-Identifier: GPL-2.0

//! Module parameters: the one table, each parameter's range check, and
//! the `evfds` list parser.
//!
//! [`param_table!`] is the only place a parameter's name, default, range
//! and help text are written. It feeds the `module!` declaration (the
//! crate root calls it with `declare_module`), the [`SPECS`] table used by
//! validation and printed by the `# config` line, and the README's table,
//! which a host test (`selftests/host/tests/params.rs`) checks against
//! this file. Two parameters are C string parameters (Rust's `module!`
//! has no string type): `scenario` and `evfds` in `ept_helpers.c`. Rules that
//! tie several parameters together are in `config.rs`.
//!
//! Every invalid value makes insmod fail with `-EINVAL` after one
//! `invalid parameter NAME=VALUE: accepted ...` line.

use kernel::prelude::*;

/// Most eventfds one run can use.
pub(crate) const MAX_EVFDS: usize = 1024;

/// Calls `$cb!` with the parameter table. Each row: name, default, lowest
/// and highest accepted value, help. Priorities: 0 is `SCHED_OTHER`,
/// 1..99 `SCHED_FIFO`. CPUs: -1 is unbound where the help says so.
macro_rules! param_table {
    ($cb:ident) => {
        $cb! {
            epfd: -1, 0, 2147483647, "epoll fd open in the insmod process (required)";
            duration_s: 30, 1, 604800, "longest run time in seconds (not throughput)";
            producers: 1, 1, 64, "producer kthreads";
            producer_prio: 10, 0, 99, "producer priority";
            producer_cpu: 0, -1, 4095, "producer CPU, -1 unbound";
            consumers: 1, 1, 8, "consumer kthreads";
            consumer_prio: 30, 0, 99, "consumer priority";
            consumer_cpu: 1, -1, 4095, "consumer CPU, -1 unbound";
            consumer_sleep_us: 100, 0, 1000000, "sleep between two polls (us)";
            hogs: 1, 0, 8, "hog kthreads (at least 1 for stall, soak)";
            hog_prio: 20, 0, 99, "hog priority";
            hog_cpu: 0, -1, 4095, "hog CPU, -1 unbound (a CPU other than timer_cpu for stall, soak)";
            hog_burst_ms: 100, 1, 60000, "hog busy time per period (ms), below hog_period_ms";
            hog_period_ms: 250, 2, 600000, "hog period (ms)";
            hog_probes: 16, 0, 64, "burst starts a hog may retry per period until it catches a reader";
            probe_us: 5000, 100, 100000, "length of one probe (us), below hog_burst_ms";
            threshold_pct: 50, 1, 1000, "latency threshold in % of hog_burst_ms";
            over_min: 2, 1, 1000000, "signature calls for not ok";
            budget_bursts: 24, 0, 1000000, "full bursts without a finding that settle ok (0: run duration_s)";
            tick_us: 1000, 50, 1000000, "soft hrtimer period (us, stall and soak)";
            timer_cpu: 1, 0, 4095, "CPU of the soft hrtimer (stall, soak)";
            stall_ms: 5000, 100, 3600000, "no consumer progress for this long is a hang (ms)";
            stall_rescue: 0, 0, 1, "1: stop the hogs once a hang is declared";
            events: 20000, 1, 1000000000, "events per producer (throughput)";
            threads_max: 16, 1, 1024, "largest producer count, at most the number of evfds (throughput)";
            tp_prio: 0, 0, 99, "priority of the throughput threads";
            heartbeat_ms: 2000, 100, 3600000, "heartbeat interval (ms)";
            watchdog_prio: 90, 1, 99, "controller/watchdog SCHED_FIFO priority";
            watchdog_cpu: 1, -1, 4095, "controller/watchdog CPU, -1 unbound (not hog_cpu)";
            trace: 0, 0, 1, "1: freeze the ftrace buffer at the worst call and at a hang";
            fail_spawn: 0, 0, 64, "fault injection: the n-th worker spawn fails (0: off)";
        }
    };
}

/// One row of [`param_table!`].
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    /// Read by the KUnit suite (and, in the source, by the README test).
    #[allow(dead_code)]
    pub(crate) default: i64,
    pub(crate) min: i64,
    pub(crate) max: i64,
}

impl Spec {
    /// Whether `v` is in the accepted range.
    pub(crate) fn accepts(&self, v: i64) -> bool {
        (self.min..=self.max).contains(&v)
    }

    /// `v` if accepted, else the one error line and `EINVAL`.
    pub(crate) fn check(&self, v: i64) -> Result<i64> {
        if !self.accepts(v) {
            pr_err!(
                "invalid parameter {}={v}: accepted range {}..{}\n",
                self.name,
                self.min,
                self.max
            );
            return Err(EINVAL);
        }
        Ok(v)
    }
}

/// Builds the [`Spec`] table and the [`P`] index from [`param_table!`].
macro_rules! spec_table {
    ($($name:ident: $default:expr, $min:expr, $max:expr, $help:literal;)*) => {
        /// Every integer parameter, in table order.
        pub(crate) const SPECS: &[Spec] = &[
            $(Spec { name: stringify!($name), default: $default, min: $min, max: $max },)*
        ];
        /// Number of integer parameters.
        pub(crate) const NPARAMS: usize = SPECS.len();
        /// A parameter's index in [`SPECS`]: names checked by the compiler.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        pub(crate) enum P {
            $($name,)*
        }
    };
}
param_table!(spec_table);

/// Parses `evfds`: "a,b,c" and "a-b", mixable, 1..=`max` fds.
pub(crate) fn parse_fd_list(s: &[u8], max: usize) -> Option<KVec<u32>> {
    fn num(s: &[u8]) -> Option<u32> {
        if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = s.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
        u32::try_from(v).ok().filter(|v| *v <= i32::MAX as u32)
    }
    if s.is_empty() {
        return None;
    }
    let mut out = KVec::new();
    for part in s.split(|&c| c == b',') {
        let (a, b) = match part.iter().position(|&c| c == b'-') {
            Some(i) => (num(&part[..i])?, num(&part[i + 1..])?),
            None => (num(part)?, num(part)?),
        };
        if b < a || out.len() + (b - a) as usize >= max {
            return None;
        }
        for fd in a..=b {
            out.push(fd, GFP_KERNEL).ok()?;
        }
    }
    Some(out)
}

/// Parses `evfds` or prints the one error line.
pub(crate) fn evfds(s: &[u8]) -> Result<KVec<u32>> {
    parse_fd_list(s, MAX_EVFDS).ok_or_else(|| {
        pr_err!(
            "invalid parameter evfds={}: accepted \"a,b,c\" or \"a-b\", 1..{} fds in 0..{}\n",
            kernel::str::BStr::from_bytes(s),
            MAX_EVFDS,
            i32::MAX
        );
        EINVAL
    })
}
