// SPDX-License-Identifier: GPL-2.0

//! `inversion` (report [1]): producers at FIFO 10 and a hog at FIFO 20 on
//! CPU0, a consumer at FIFO 30 on CPU1. When the hog preempts a producer
//! inside `ep_poll_callback()` (the read side of an rwlock `ep->lock`),
//! the consumer's poll waits for the rest of the burst: nobody boosts a
//! reader. On a spinlock kernel the consumer boosts the holder (PI) and
//! waits microseconds. `not ok` after `over_min` calls with the signature
//! (signature.rs); `ok` after `budget_bursts` full bursts without one.

use super::{no_check, Ops};
use crate::runner::{run_timed, Timed};

pub(crate) static OPS: Ops = Ops {
    name: "inversion",
    evfds: |c| c.producers,
    check: no_check,
    run: |s, t| {
        let how = Timed {
            timer_driven: false,
            latency_verdict: true,
            budget: true,
        };
        run_timed(s, t, &how, s.cfg.producers, |_| Ok(()))
    },
};
