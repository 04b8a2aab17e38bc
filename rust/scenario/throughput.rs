// SPDX-License-Identifier: GPL-2.0

//! `throughput` (stress-epoll in the kernel): for N = 1, 2, 4, ... up to
//! `threads_max`, N producers (`tp_prio`, unbound) each signal their own
//! eventfd `events` times while one consumer drains them through the
//! epoll file; one metrics line per N with `events_per_ms`.

use super::{no_check, Ops};
use crate::config::Place;
use crate::kthread::StopToken;
use crate::runner::{print_tallies, Outcome};
use crate::workers::{producer, Kind, Shared, Workers};
use kernel::{prelude::*, sync::atomic::ordering::Relaxed, sync::Arc};

pub(crate) static OPS: Ops = Ops {
    name: "throughput",
    evfds: |c| c.threads_max,
    check: no_check,
    run,
};

/// One round with `n` producers; `Err` carries the outcome that ends the
/// scenario early (a hang, an abort, a failed spawn).
fn round(s: &Arc<Shared>, t: &StopToken, n: usize) -> core::result::Result<(), Outcome> {
    let c = s.cfg;
    s.drain_all();
    s.stop_work.store(false, Relaxed);
    s.events.store(0, Relaxed);
    s.consumed.store(0, Relaxed);
    s.polls.store(0, Relaxed);
    s.results.lock().round_done = false;
    let total = c.events * n as u64;
    let place = Place {
        policy: c.tp,
        cpu: None,
    };
    let t0 = s.now();
    let mut w = Workers::new(s);
    let s2 = s.clone();
    let started = w
        .spawn(Kind::Other, fmt!("ept_tpcons"), place, move |t| {
            if !s2.wait_start() {
                return;
            }
            while !t.should_stop() && s2.consumed.load(Relaxed) < total {
                s2.poll_once(usize::MAX, 0, n);
            }
            s2.results.lock().round_done = true;
            s2.round_cv.notify_all();
        })
        .and_then(|()| {
            (0..n).try_for_each(|i| {
                let s2 = s.clone();
                w.spawn(Kind::Producer, fmt!("ept_tp/{i}"), place, move |t| {
                    producer(&s2, t, i, Some(c.events))
                })
            })
        });
    if let Err(e) = started {
        return Err(Outcome::error(fmt!(
            "starting the worker threads failed (errno {})",
            e.to_errno()
        )));
    }
    s.open_gate(false);
    let (mut last, mut last_change) = (0u64, s.now());
    loop {
        let mut g = s.results.lock();
        if g.round_done {
            break;
        }
        let _ = s
            .round_cv
            .wait_interruptible_timeout(&mut g, kernel::time::msecs_to_jiffies(100));
        drop(g);
        if t.should_stop() {
            return Err(Outcome::Aborted);
        }
        let now_consumed = s.consumed.load(Relaxed);
        if now_consumed != last {
            (last, last_change) = (now_consumed, s.now());
        } else if s.now() - last_change >= c.stall_ms * 1_000_000 {
            pr_info!(
                "# metrics scenario=throughput threads={n} hang=1 events={} consumed={}\n",
                s.events.load(Relaxed),
                now_consumed
            );
            let why = crate::stats::KString::from_fmt(fmt!(
                "no progress for {} ms with {n} threads",
                c.stall_ms
            ));
            return Err(Outcome::Bug("hang", why));
        }
    }
    let el = (s.now() - t0).max(1);
    drop(w);
    let per_ms_x100 = total * 100_000 / (el as u64 / 1000).max(1);
    pr_info!(
        "# metrics scenario=throughput threads={n} events={total} elapsed_us={} events_per_ms={}.{:02} calls={}\n",
        el / 1000,
        per_ms_x100 / 100,
        per_ms_x100 % 100,
        s.polls.load(Relaxed)
    );
    Ok(())
}

fn run(s: &Arc<Shared>, t: &StopToken) -> Outcome {
    let mut n = 1usize;
    loop {
        if let Err(o) = round(s, t, n) {
            return o;
        }
        if n >= s.cfg.threads_max {
            break;
        }
        n = (n * 2).min(s.cfg.threads_max);
    }
    print_tallies(s);
    Outcome::Ok
}
