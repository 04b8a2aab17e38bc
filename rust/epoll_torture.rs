// SPDX-License-Identifier: GPL-2.0

//! epoll_torture: an in-kernel torture test for the eventpoll ready-list
//! lock on PREEMPT_RT.
//!
//! From v5.1 to v6.18 `fs/eventpoll.c` protected an epoll instance's ready
//! list with a `rwlock_t`: producers (`ep_poll_callback()`, run by
//! whoever wakes a watched file) took it for reading, consumers
//! (`ep_poll()`, the ready-list scan, also reached by polling an epoll
//! file) for writing. On PREEMPT_RT a writer does not boost the readers
//! that block it, and a waiting writer forces new readers onto the slow
//! path. The fix (v6.18, "eventpoll: Replace rwlock with spinlock") makes
//! it a `spinlock_t`, an rtmutex with priority inheritance on RT. This
//! module drives the lock from kthreads and reports in KTAP whether the
//! inversion (report [1]) or the stall cycle (report [2]) is there.
//!
//! Layout: [`params`] (the parameter table and its validation), [`evfd`]
//! (the epoll file and the eventfds), [`kthread`] (threads and their stop
//! token), [`workers`] (producers, consumers, hogs and their shared
//! state), [`signature`] (what makes a long call an inversion),
//! [`runner`] (watchdog, heartbeats, budget, the one result),
//! [`stats`] (latency histogram), [`trace`] (freezing ftrace), and one
//! file per scenario in [`scenario`], chosen by name from one table.
//!
//! Use (the guest program `ept-run` creates the epoll fd and the eventfds
//! a module cannot create, and loads the module with them):
//!
//! ```text
//! ept-run inversion            # load, wait for the KTAP result, unload
//! ept-run --shell              # by hand: a shell holding $EPT_FDS
//! insmod /lib/modules/epoll_torture.ko scenario=inversion $EPT_FDS
//! ```
//!
//! Output (KTAP in dmesg, one result per load):
//!
//! ```text
//! epoll_torture: KTAP version 1
//! epoll_torture: 1..1
//! epoll_torture: # config scenario=S name=value ...
//! epoll_torture: # heartbeat scenario=S t_ms=.. progress=.. ...
//! epoll_torture: # metrics scenario=S ... signature=.. rejected=.. hist_us=..
//! epoll_torture: # thread scenario=S name=ept_cons/0 calls=.. ...
//! epoll_torture: ok 1 S
//! epoll_torture: not ok 1 S # bug detected: priority inversion: ...
//! epoll_torture: not ok 1 S # bug detected: hang: ...
//! epoll_torture: not ok 1 S # error: ...
//! epoll_torture: ok 1 S # SKIP aborted by rmmod before a result
//! ```
//!
//! The parameters, their defaults and ranges are in [`params`] (and in
//! the README, checked against it by a host test).

use kernel::{prelude::*, sync::Arc};

#[macro_use]
mod params;
mod config;
mod evfd;
mod kthread;
mod runner;
mod scenario;
mod signature;
mod stats;
mod trace;
mod workers;

use config::{Config, Raw};
use evfd::{EpollFile, EvFd};
use kthread::KThread;
use params::NPARAMS;
use workers::Shared;

/// Declares the module with the parameters of [`param_table!`].
macro_rules! declare_module {
    ($($name:ident: $default:expr, $min:expr, $max:expr, $help:literal;)*) => {
        module! {
            type: EpollTorture,
            name: "epoll_torture",
            authors: ["epoll-torture project"],
            description: "Torture test for the eventpoll ready-list lock on PREEMPT_RT",
            license: "GPL",
            params: {
                $($name: i64 { default: $default, description: $help, },)*
            },
        }

        /// The integer parameters' values as loaded, in table order.
        fn raw_ints() -> [i64; NPARAMS] {
            [$(module_parameters::$name.value(),)*]
        }
    };
}
param_table!(declare_module);

extern "C" {
    fn ept_param_scenario() -> *const u8;
    fn ept_param_evfds() -> *const u8;
}

/// A C string parameter's bytes.
fn c_param(p: *const u8) -> &'static [u8] {
    // SAFETY: The C helpers return a pointer to a NUL-terminated charp
    // parameter (or a static ""), which lives as long as the module and
    // is not written after load (permission 0).
    unsafe { CStr::from_char_ptr(p) }.to_bytes()
}

struct EpollTorture {
    ctl: Option<KThread>,
}

/// Prints the `# config` line: every parameter as loaded.
fn print_config(cfg: &Config, ints: &[i64; NPARAMS], evfds: &[u8]) {
    let mut line = stats::KString::new();
    for (s, v) in params::SPECS.iter().zip(ints.iter()) {
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {}={v}", s.name));
    }
    pr_info!(
        "# config scenario={} evfds={}{}\n",
        cfg.scenario.name,
        kernel::str::BStr::from_bytes(evfds),
        &*line
    );
}

impl kernel::Module for EpollTorture {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Reads the charp parameter pointers.
        let (scenario, evfds) = unsafe { (ept_param_scenario(), ept_param_evfds()) };
        let raw = Raw {
            ints: raw_ints(),
            scenario: c_param(scenario),
            evfds: c_param(evfds),
        };
        let fds = params::evfds(raw.evfds)?;
        let cfg = Config::from_raw(&raw, fds.len())?;
        if cfg.trace {
            trace::prepare()?;
        }
        let ep = EpollFile::from_fd(cfg.epfd)?;
        let mut evs = KVec::with_capacity(fds.len(), GFP_KERNEL)?;
        for fd in fds.iter() {
            evs.push(EvFd::from_fd(*fd)?, GFP_KERNEL)?;
        }
        let shared = Arc::pin_init(Shared::new(cfg, ep, evs), GFP_KERNEL)?;
        pr_info!("KTAP version 1\n");
        pr_info!("1..1\n");
        print_config(&cfg, &raw.ints, raw.evfds);
        let ctl = KThread::spawn(fmt!("ept_ctl"), cfg.watchdog, move |t| {
            runner::controller(shared, t)
        })
        .inspect_err(|e| {
            let why = fmt!("starting the controller failed (errno {})", e.to_errno());
            runner::print_result(cfg.scenario.name, &runner::Outcome::error(why));
        })?;
        Ok(EpollTorture { ctl: Some(ctl) })
    }
}

extern "C" {
    fn ept_rcu_probe_flush();
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
