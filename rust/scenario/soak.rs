// SPDX-License-Identifier: GPL-2.0

//! `soak`: the stall load (which includes the inversion measurement) for
//! the whole `duration_s`, heartbeats throughout; `not ok` on a hang or
//! on the inversion signature.

use super::{stall, Ops};
use crate::runner::{run_timed, Timed};

pub(crate) static OPS: Ops = Ops {
    name: "soak",
    evfds: stall::evfds,
    check: stall::check,
    run: |s, t| {
        let how = Timed {
            timer_driven: true,
            latency_verdict: true,
            budget: false,
        };
        run_timed(s, t, &how, s.cfg.producers + 1, |w| {
            stall::spawn_ticker(w, s)
        })
    },
};
