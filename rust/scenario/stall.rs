// SPDX-License-Identifier: GPL-2.0

//! `stall` (report [2] as a pure lock cycle): as `inversion`, but a hog's
//! burst ends only when a soft hrtimer on `timer_cpu` (!= `hog_cpu`) has
//! run past the burst's end, and the same timer callback signals an
//! eventfd of the epoll set every `tick_us`. On RT the callback runs in
//! `ktimers/<timer_cpu>`. On rwlock kernels: the consumer waits (writer)
//! for the preempted producer, the producer waits for the hog, the hog
//! waits for the timer, and `ktimers` blocks as a reader behind the
//! waiting writer (RT forces new readers onto the slow path while a writer
//! waits): a permanent hang, and RCU stall reports follow (the reader holds
//! an RT rwlock, hence `rcu_read_lock()`). On spinlock kernels the
//! consumer boosts the producer and the cycle never closes.
//!
//! The blocked threads wait in `TASK_RTLOCK_WAIT`, which the hung-task
//! detector does not watch, and khungtaskd sleeps on a timer-wheel timer
//! that the blocked `ktimers` never expires: this scenario gives no
//! hung-task report (the hung-task scenario of the host data does).

use super::Ops;
use crate::config::{Config, Place, Policy};
use crate::kthread::{KThread, StopToken};
use crate::runner::{run_timed, Timed};
use crate::workers::{Shared, Workers};
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    sync::{atomic::ordering::Relaxed, Arc, ArcBorrow},
    time::{
        hrtimer::{
            HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer, HrTimerRestart,
            RelativePinnedSoftMode,
        },
        Delta, Monotonic,
    },
};

pub(crate) static OPS: Ops = Ops {
    name: "stall",
    evfds,
    check,
    run: |s, t| {
        let how = Timed {
            timer_driven: true,
            latency_verdict: false,
            budget: true,
        };
        run_timed(s, t, &how, s.cfg.producers + 1, |w| spawn_ticker(w, s))
    },
};

/// The producers' eventfds plus one signalled by the timer.
pub(crate) fn evfds(c: &Config) -> usize {
    c.producers + 1
}

/// The cycle needs a hog on one CPU and the timer on another.
pub(crate) fn check(c: &Config) -> Result {
    if c.hogs == 0 {
        pr_err!(
            "invalid parameter hogs=0: accepted range 1..8 for scenario {}\n",
            c.scenario.name
        );
        return Err(EINVAL);
    }
    if c.hog.cpu.is_none() || c.hog.cpu == Some(c.timer_cpu) {
        pr_err!(
            "invalid parameter hog_cpu={}: accepted an online CPU other than timer_cpu={} for scenario {}\n",
            c.hog.cpu.map_or(-1, |x| i64::from(x.as_u32())),
            c.timer_cpu.as_u32(),
            c.scenario.name
        );
        return Err(EINVAL);
    }
    Ok(())
}

/// The soft hrtimer of the stall load.
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
        s.tick_ns.store(s.now(), Relaxed);
        ctx.forward_now(Delta::from_micros(s.cfg.tick_us));
        HrTimerRestart::Restart
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Ticker {
        mode: RelativePinnedSoftMode<Monotonic>, field: self.timer
    }
}

/// The ticker thread's body: arms the pinned soft hrtimer on its own CPU
/// and cancels it when stopped.
fn ticker(s: &Shared, t: &StopToken, timer: Arc<Ticker>) {
    s.tick_ns.store(s.now(), Relaxed);
    let handle = timer.start(Delta::from_micros(s.cfg.tick_us));
    while !t.should_stop() {
        t.sleep_ns(10_000_000);
    }
    drop(handle);
}

/// Adds the ticker thread (`ept_tick`, on `timer_cpu`) to a run.
pub(crate) fn spawn_ticker(w: &mut Workers, s: &Arc<Shared>) -> Result {
    let timer = Arc::pin_init(
        pin_init!(Ticker {
            timer <- HrTimer::new(),
            shared: s.clone(),
        }),
        GFP_KERNEL,
    )?;
    let s2 = s.clone();
    let place = Place {
        policy: Policy::Fifo(s.cfg.watchdog.policy.prio()),
        cpu: Some(s.cfg.timer_cpu),
    };
    // The ticker is not counted in `active`: it runs until stopped.
    let th = KThread::spawn(fmt!("ept_tick"), place, move |t| ticker(&s2, t, timer))?;
    w.others.push(th, GFP_KERNEL)?;
    Ok(())
}
