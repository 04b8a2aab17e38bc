//! The wake-up patterns. Each `start` sets up its epoll instances, sources
//! and obligations and spawns its threads; the runner adds the watchdog and
//! the hogs and stops everything at the end.
//!
//! Conventions: an event's data is the index of its source in the pattern's
//! source list; consumers drain a source completely (until EAGAIN) when it
//! is reported, which is what makes "readable while every waiter sleeps" a
//! contract violation for level- and edge-triggered items alike.

use super::common::*;
use super::core::{Bug, Ctx, Obligation, Pace, WaitKind};
use super::rng::Rng;
use super::runtime::worker;
use super::source::{Kind, Source};
use super::sys;
use ept_guest::now_ns;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

pub type Handles = Vec<JoinHandle<()>>;

/// Every pattern, in the default order: the three that carry the known
/// bug classes first (so a run's verdict is settled early and unused time
/// flows to the rest), then the coverage patterns.
pub const ALL: [&str; 11] = [
    "fn",
    "rr",
    "et-inout",
    "lt",
    "et",
    "oneshot",
    "exclusive",
    "nested",
    "multi",
    "ctl",
    "boot",
];

pub fn start(name: &str, c: &Arc<Ctx>) -> io::Result<Handles> {
    match name {
        "lt" => basic(c, Mode::Level),
        "et" => basic(c, Mode::Edge),
        "oneshot" => basic(c, Mode::OneShot),
        "exclusive" => exclusive(c),
        "nested" => nested(c),
        "multi" => multi(c),
        "ctl" => ctl(c),
        "fn" => false_negative(c),
        "rr" => round_robin(c),
        "et-inout" => et_inout(c),
        "boot" => super::boot::start(c),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown pattern {name}"),
        )),
    }
}

fn sources(c: &Arc<Ctx>, prefix: &str) -> io::Result<Vec<Arc<Source>>> {
    c.opts
        .sources
        .iter()
        .map(|&k| Ok(c.source(Source::new(k, &format!("{prefix}{}", k.name()))?)))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Level,
    Edge,
    OneShot,
}

/// lt / et / oneshot: one epoll instance watching every source kind; two
/// (three for oneshot) blocking waiters on different CPUs, one with no
/// timeout and one with a long one; two producers. A oneshot item is
/// re-armed with EPOLL_CTL_MOD after each event, often while its source is
/// already ready again (the producers refill right after the drain), which
/// exercises ep_modify()'s queue-and-wake path.
fn basic(c: &Arc<Ctx>, mode: Mode) -> io::Result<Handles> {
    let ep = Epoll::new("ep")?;
    let srcs = sources(c, "")?;
    let flags = match mode {
        Mode::Level => IN,
        Mode::Edge => IN | ET,
        Mode::OneShot => IN | ONESHOT,
    };
    for (i, s) in srcs.iter().enumerate() {
        ep.add(s.rfd, flags, i as u64)?;
    }
    let nw = if mode == Mode::OneShot { 3 } else { 2 };
    let mut hs = Vec::new();
    let mut group = Vec::new();
    for k in 0..nw {
        let srcs2 = srcs.clone();
        let ep2 = ep.clone();
        let timeout = if k % 2 == 0 { -1 } else { 10_000 };
        let (w, h) = waiter_thread(
            c,
            &format!("waiter{k}"),
            cpu(c, k),
            ep.clone(),
            2,
            timeout,
            move |c, _ev, d| {
                let Some(s) = srcs2.get(d as usize) else {
                    return;
                };
                s.drain();
                if mode == Mode::OneShot {
                    if let Err(e) = ep2.modify(s.rfd, flags, d) {
                        c.fail(format!("EPOLL_CTL_MOD {}: {e}", s.name));
                    }
                    c.op();
                }
            },
        );
        group.push(w);
        hs.push(h);
    }
    let tag = match mode {
        Mode::Level => "lt",
        Mode::Edge => "et",
        Mode::OneShot => "oneshot",
    };
    for s in &srcs {
        c.oblige(Obligation::readable(
            &format!("{tag}:{}", s.name),
            s,
            &group,
        ));
    }
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("producer{k}"),
            cpu(c, k + 1),
            srcs.clone(),
            c.opts.seed ^ (k as u64 + 11),
            0,
            300,
        ));
    }
    Ok(hs)
}

/// exclusive: three epoll instances each watching the same sources with
/// EPOLLEXCLUSIVE, one blocking waiter each. The contract: a ready source
/// wakes at least one of them.
fn exclusive(c: &Arc<Ctx>) -> io::Result<Handles> {
    let srcs = sources(c, "")?;
    let mut hs = Vec::new();
    let mut group = Vec::new();
    for k in 0..3 {
        let ep = Epoll::new(&format!("ep{k}"))?;
        for (i, s) in srcs.iter().enumerate() {
            ep.add(s.rfd, IN | EXCLUSIVE, i as u64)?;
        }
        let srcs2 = srcs.clone();
        let (w, h) = waiter_thread(
            c,
            &format!("waiter{k}"),
            cpu(c, k),
            ep,
            2,
            -1,
            move |_c, _ev, d| {
                if let Some(s) = srcs2.get(d as usize) {
                    s.drain();
                }
            },
        );
        group.push(w);
        hs.push(h);
    }
    for s in &srcs {
        c.oblige(Obligation::readable(
            &format!("exclusive:{}", s.name),
            s,
            &group,
        ));
    }
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("producer{k}"),
            cpu(c, k + 1),
            srcs.clone(),
            c.opts.seed ^ (k as u64 + 21),
            0,
            300,
        ));
    }
    Ok(hs)
}

const INNER: u64 = 1 << 40;

/// nested: an inner epoll instance (level-triggered sources) inside two
/// outer ones (level-triggered in outer1, edge-triggered in outer2), and
/// polled both ways: epoll_wait() on each outer (then draining the inner
/// with epoll_wait(inner, 0)), poll() on the inner, epoll_wait() on the
/// inner. Each of the four waiters must wake for a ready source.
fn nested(c: &Arc<Ctx>) -> io::Result<Handles> {
    let inner = Epoll::new("inner")?;
    let srcs = sources(c, "")?;
    for (i, s) in srcs.iter().enumerate() {
        inner.add(s.rfd, IN, i as u64)?;
    }
    let o1 = Epoll::new("outer1")?;
    o1.add(inner.fd, IN, INNER)?;
    let o2 = Epoll::new("outer2")?;
    o2.add(inner.fd, IN | ET, INNER)?;
    let mut hs = Vec::new();
    let mut groups = Vec::new();
    for (k, outer) in [o1, o2].into_iter().enumerate() {
        let srcs2 = srcs.clone();
        let inner2 = inner.clone();
        let mut buf = sys::new_events(8);
        let (w, h) = waiter_thread(
            c,
            &format!("outer{}", k + 1),
            cpu(c, k),
            outer,
            2,
            -1,
            move |c, _ev, d| {
                if d == INNER {
                    if let Err(e) = drain_epoll(c, inner2.fd, &srcs2, &mut buf) {
                        c.fail(format!("drain inner: {e}"));
                    }
                }
            },
        );
        groups.push(vec![w]);
        hs.push(h);
    }
    // poll() on the inner epoll fd.
    {
        let w = c.waiter("poller", WaitKind::Poll);
        let w2 = w.clone();
        let srcs2 = srcs.clone();
        let inner2 = inner.clone();
        hs.push(worker(
            c,
            "poller",
            cpu(c, 0),
            c.opts.waiter_prio,
            move |c| {
                w2.bind();
                let mut buf = sys::new_events(8);
                while !c.stopped() {
                    w2.enter(inner2.fd);
                    let r = sys::poll1(inner2.fd, libc::POLLIN, -1);
                    w2.leave();
                    c.op();
                    match r {
                        Ok(rev) if rev & libc::POLLIN != 0 => {
                            c.got(1);
                            if let Err(e) = drain_epoll(c, inner2.fd, &srcs2, &mut buf) {
                                c.fail(format!("drain inner: {e}"));
                            }
                        }
                        Ok(_) => {}
                        Err(e) if sys::is_eintr(&e) => {}
                        Err(e) => c.fail(format!("poll inner: {e}")),
                    }
                }
            },
        ));
        groups.push(vec![w]);
    }
    {
        let srcs2 = srcs.clone();
        let (w, h) = waiter_thread(
            c,
            "inner",
            cpu(c, 1),
            inner.clone(),
            2,
            -1,
            move |_c, _ev, d| {
                if let Some(s) = srcs2.get(d as usize) {
                    s.drain();
                }
            },
        );
        groups.push(vec![w]);
        hs.push(h);
    }
    let gname = ["outer1(lt)", "outer2(et)", "poll(inner)", "inner"];
    for (g, name) in groups.iter().zip(gname) {
        for s in &srcs {
            c.oblige(Obligation::readable(
                &format!("nested:{name}:{}", s.name),
                s,
                g,
            ));
        }
    }
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("producer{k}"),
            cpu(c, k + 1),
            srcs.clone(),
            c.opts.seed ^ (k as u64 + 31),
            0,
            300,
        ));
    }
    Ok(hs)
}

/// multi: several waiters on one epoll instance: two blocking, two with
/// timeout 0 (busy pollers with short random pauses) and two with short
/// timeouts (1-5 ms). Every call that returns 0 events is checked: if a
/// level-triggered source was readable for the whole call, that is a false
/// negative. Timed calls also record their timeout overrun.
fn multi(c: &Arc<Ctx>) -> io::Result<Handles> {
    let ep = Epoll::new("ep")?;
    let srcs = sources(c, "")?;
    for (i, s) in srcs.iter().enumerate() {
        ep.add(s.rfd, IN, i as u64)?;
    }
    let mut hs = Vec::new();
    let mut group = Vec::new();
    for k in 0..2 {
        let srcs2 = srcs.clone();
        let (w, h) = waiter_thread(
            c,
            &format!("block{k}"),
            cpu(c, k),
            ep.clone(),
            2,
            -1,
            move |_c, _ev, d| {
                if let Some(s) = srcs2.get(d as usize) {
                    s.drain();
                }
            },
        );
        group.push(w);
        hs.push(h);
    }
    for k in 0..4 {
        let timed = k >= 2;
        let name = if timed {
            format!("timed{}", k - 2)
        } else {
            format!("zero{k}")
        };
        let srcs2 = srcs.clone();
        let ep2 = ep.clone();
        let seed = c.opts.seed ^ (k as u64 + 41);
        let w = c.waiter(&name, WaitKind::EpollWait);
        hs.push(worker(
            c,
            &name.clone(),
            cpu(c, k),
            c.opts.waiter_prio,
            move |c| {
                w.bind();
                let mut rng = Rng::new(seed);
                let mut buf = sys::new_events(1);
                let mut call = 0u64;
                let mut pace = Pace::new();
                while !c.stopped() {
                    let timeout = if timed { rng.range(1, 5) as i32 } else { 0 };
                    let before = snaps(&srcs2);
                    let t = now_ns();
                    w.enter(ep2.fd);
                    let r = sys::epoll_wait(ep2.fd, &mut buf, timeout);
                    w.leave();
                    c.op();
                    call += 1;
                    match r {
                        Ok(0) => {
                            if timed {
                                c.overrun(t, timeout);
                            }
                            check_fn(c, &name, "ep", &srcs2, &before, call, timeout);
                        }
                        Ok(n) => {
                            c.got(n as u64);
                            for e in &buf[..n] {
                                let (_, d) = sys::ev_of(e);
                                if let Some(s) = srcs2.get(d as usize) {
                                    s.drain();
                                }
                            }
                        }
                        Err(e) if sys::is_eintr(&e) => {}
                        Err(e) => c.fail(format!("{name}: epoll_wait: {e}")),
                    }
                    if !timed {
                        let p = rng.range(0, 200) as i64 * 1000;
                        if p > 0 {
                            sys::sleep_until(now_ns() + p);
                        }
                        pace.tick();
                    }
                }
            },
        ));
    }
    for s in &srcs {
        c.oblige(Obligation::readable(
            &format!("multi:{}", s.name),
            s,
            &group,
        ));
    }
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("producer{k}"),
            cpu(c, k + 1),
            srcs.clone(),
            c.opts.seed ^ (k as u64 + 51),
            0,
            300,
        ));
    }
    Ok(hs)
}

const TRANSIENT: u64 = 1 << 41;

/// ctl: the stable sources stay watched (level-triggered) while other
/// threads churn the interest list: EPOLL_CTL_MOD of the stable items,
/// EPOLL_CTL_ADD/DEL of short-lived eventfds (edge-triggered, written once),
/// and close() of watched fds: a duplicate keeps the item alive after the
/// first close (epoll(7): an item goes with the file's last reference),
/// the last close removes it, sometimes while its event is being
/// delivered. Stable sources must keep waking the waiters.
fn ctl(c: &Arc<Ctx>) -> io::Result<Handles> {
    let ep = Epoll::new("ep")?;
    let srcs = sources(c, "")?;
    for (i, s) in srcs.iter().enumerate() {
        ep.add(s.rfd, IN, i as u64)?;
    }
    let transient_events = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    let mut group = Vec::new();
    for k in 0..2 {
        let srcs2 = srcs.clone();
        let te = transient_events.clone();
        let (w, h) = waiter_thread(
            c,
            &format!("waiter{k}"),
            cpu(c, k),
            ep.clone(),
            4,
            -1,
            move |_c, _ev, d| {
                if d & TRANSIENT != 0 {
                    te.fetch_add(1, SeqCst);
                } else if let Some(s) = srcs2.get(d as usize) {
                    s.drain();
                }
            },
        );
        group.push(w);
        hs.push(h);
    }
    for s in &srcs {
        c.oblige(Obligation::readable(&format!("ctl:{}", s.name), s, &group));
    }
    // MOD churn on the stable items (EPOLLIN always stays in the mask).
    {
        let ep2 = ep.clone();
        let srcs2 = srcs.clone();
        let seed = c.opts.seed ^ 61;
        hs.push(worker(
            c,
            "ctl-mod",
            cpu(c, 0),
            c.opts.producer_prio,
            move |c| {
                let mut rng = Rng::new(seed);
                let extra = [0u32, libc::EPOLLRDHUP as u32, libc::EPOLLPRI as u32];
                while !c.stopped() {
                    let i = rng.below(srcs2.len() as u64) as usize;
                    let ev = IN | extra[rng.below(3) as usize];
                    if let Err(e) = ep2.modify(srcs2[i].rfd, ev, i as u64) {
                        c.fail(format!("ctl-mod: MOD {}: {e}", srcs2[i].name));
                        return;
                    }
                    c.op();
                    sys::sleep_until(now_ns() + rng.range(0, 200) as i64 * 1000);
                }
            },
        ));
    }
    // ADD/DEL/close churn with short-lived eventfds.
    for k in 0..2 {
        let ep2 = ep.clone();
        let seed = c.opts.seed ^ (71 + k as u64);
        hs.push(worker(
            c,
            &format!("ctl-add{k}"),
            cpu(c, k + 1),
            c.opts.producer_prio,
            move |c| {
                let mut rng = Rng::new(seed);
                let mut n = 0u64;
                while !c.stopped() {
                    n += 1;
                    let r = (|| -> io::Result<()> {
                        let t = sys::eventfd(0)?;
                        ep2.add(t, IN | ET, TRANSIENT | n)?;
                        sys::write_u64(t, 1)?;
                        if rng.chance(50) {
                            sys::sleep_until(now_ns() + rng.range(0, 100) as i64 * 1000);
                        }
                        match rng.below(3) {
                            0 => {
                                ep2.del(t)?;
                                sys::close(t);
                            }
                            1 => {
                                // The item survives the first close (a duplicate
                                // holds the file) and goes with the last one.
                                let d = sys::dup(t)?;
                                sys::close(t);
                                sys::write_u64(d, 1)?;
                                sys::close(d);
                            }
                            _ => sys::close(t),
                        }
                        Ok(())
                    })();
                    if let Err(e) = r {
                        c.fail(format!("ctl-add: {e}"));
                        return;
                    }
                    c.op();
                    sys::sleep_until(now_ns() + rng.range(0, 200) as i64 * 1000);
                }
            },
        ));
    }
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("producer{k}"),
            cpu(c, k + 1),
            srcs.clone(),
            c.opts.seed ^ (k as u64 + 81),
            0,
            300,
        ));
    }
    // An epoll instance with nothing ready whose mutex a churner keeps busy
    // with EPOLL_CTL_MOD: its timed waiters must still return at their
    // timeout (a waiter that answers "events may be available" whenever the
    // mutex is taken never gets to its timeout check).
    let idle = Epoll::new("idle")?;
    let mut idle_fds = Vec::new();
    for i in 0..4 {
        let f = sys::eventfd(0)?;
        idle.add(f, IN, i)?;
        idle_fds.push(f);
    }
    let idle_fds = Arc::new(FdGuard(idle_fds));
    for k in 0..2 {
        let (idle2, fds2) = (idle.clone(), idle_fds.clone());
        let seed = c.opts.seed ^ (131 + k as u64);
        hs.push(worker(
            c,
            &format!("idle-churn{k}"),
            cpu(c, k),
            c.opts.producer_prio,
            move |c| {
                let mut rng = Rng::new(seed);
                let mut pace = Pace::new();
                while !c.stopped() {
                    pace.tick();
                    let i = rng.below(fds2.0.len() as u64) as usize;
                    let ev = IN
                        | if rng.chance(50) {
                            libc::EPOLLRDHUP as u32
                        } else {
                            0
                        };
                    if let Err(e) = idle2.modify(fds2.0[i], ev, i as u64) {
                        c.fail(format!("idle-churn: MOD: {e}"));
                        return;
                    }
                    c.op();
                }
            },
        ));
    }
    for k in 0..2 {
        let idle2 = idle.clone();
        let seed = c.opts.seed ^ (141 + k as u64);
        let name = format!("idle-timed{k}");
        let w = c.waiter(&name, WaitKind::EpollWait);
        hs.push(worker(c, &name.clone(), cpu(c, k), c.opts.waiter_prio, move |c| {
            w.bind();
            let mut rng = Rng::new(seed);
            let mut buf = sys::new_events(1);
            let bound = c.opts.bound_ms as i64 * 1_000_000;
            while !c.stopped() {
                let timeout = rng.range(1, 10) as i32;
                let t = now_ns();
                w.enter(idle2.fd);
                let r = sys::epoll_wait(idle2.fd, &mut buf, timeout);
                w.leave();
                c.op();
                match r {
                    Ok(0) => {
                        c.overrun(t, timeout);
                        let over = now_ns() - t - timeout as i64 * 1_000_000;
                        if over > bound {
                            c.detect(
                                Bug::LostWakeup,
                                format!("{name}: epoll_wait(idle epoll, timeout={timeout}) returned {} ms after its timeout (nothing was ready; other threads kept EPOLL_CTL_MOD-ing the set)", over / 1_000_000),
                                &[],
                            );
                        }
                    }
                    Ok(n) => c.fail(format!("{name}: {n} events from an epoll with nothing ready")),
                    Err(e) if sys::is_eintr(&e) => {}
                    Err(e) => c.fail(format!("{name}: epoll_wait: {e}")),
                }
            }
        }));
    }
    let te = transient_events.clone();
    c.finally(move |c| c.metric("transient_events", te.load(SeqCst)));
    Ok(hs)
}

/// fn: the false-negative oracle at full speed. Sentinel sources are made
/// readable once and never drained, so every epoll_wait(..., 0) on a set
/// that contains one must return at least one event. Pollers (pinned, FIFO)
/// loop over four targets: a flat epoll with one sentinel of every kind,
/// an inner epoll with sentinels, an outer epoll containing the inner one,
/// and poll() of the inner one (which scans it under its mutex, opening the
/// scan windows that the others' lockless checks can fall into). The hogs
/// preempt pollers in the middle of their checks and scans.
fn false_negative(c: &Arc<Ctx>) -> io::Result<Handles> {
    let flat = Epoll::new("flat")?;
    let mut sent = Vec::new();
    for (i, &k) in Kind::ALL.iter().enumerate() {
        let s = c.source(Source::new(k, &format!("sentinel-{}", k.name()))?);
        s.make_sentinel()?;
        flat.add(s.rfd, IN, i as u64)?;
        sent.push(s);
    }
    let inner = Epoll::new("inner")?;
    for k in [Kind::Eventfd, Kind::Pipe] {
        let s = c.source(Source::new(k, &format!("inner-sentinel-{}", k.name()))?);
        s.make_sentinel()?;
        inner.add(s.rfd, IN, 0)?;
        sent.push(s);
    }
    let outer = Epoll::new("outer")?;
    outer.add(inner.fd, IN, INNER)?;
    let per_target: Arc<[AtomicU64; 3]> =
        Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut hs = Vec::new();
    let ncpu = c.opts.cpus.max(1);
    let split = c.opts.fn_split;
    // rotate: every poller cycles over the four calls. split: per CPU,
    // `pollers` readers (lockless checks: epoll_wait(inner/outer/flat, 0))
    // and as many scanners (poll(inner, 0): a full __ep_eventpoll_poll()
    // scan of the inner set under its mutex), yielding after each call.
    let np = c.opts.pollers.max(1) * ncpu * if split { 2 } else { 1 };
    for k in 0..np {
        let (flat2, inner2, outer2) = (flat.clone(), inner.clone(), outer.clone());
        let pt = per_target.clone();
        let scanner = split && (k / ncpu) % 2 == 1;
        let name = format!(
            "fn-{}{k}",
            if !split {
                "poller"
            } else if scanner {
                "scanner"
            } else {
                "reader"
            }
        );
        let seed = c.opts.seed ^ (91 + k as u64);
        let yield_each = split || c.opts.pollers > 1;
        let plan: &'static [usize] = if !split {
            &[0, 1, 2, 3]
        } else if scanner {
            &[3]
        } else {
            &[1, 2, 1, 1, 0, 1]
        };
        hs.push(worker(c, &name.clone(), cpu(c, k), c.opts.waiter_prio, move |c| {
            let mut rng = Rng::new(seed);
            let mut buf = sys::new_events(1);
            let targets = [(&flat2, "flat"), (&inner2, "inner"), (&outer2, "outer")];
            let mut call = 0u64;
            let mut j = rng.below(plan.len() as u64) as usize;
            let mut pace = Pace::new();
            while !c.stopped() {
                pace.tick();
                j = (j + 1) % plan.len();
                let i = plan[j];
                call += 1;
                c.op();
                if i == 3 {
                    match sys::poll1(inner2.fd, libc::POLLIN, 0) {
                        Ok(r) if r & libc::POLLIN != 0 => c.got(1),
                        Ok(_) => c.detect(
                            Bug::FalseNegative,
                            format!("poll(inner epoll, 0) returned no POLLIN while its level-triggered sentinels are readable (thread {name}, call {call})"),
                            &[],
                        ),
                        Err(e) if sys::is_eintr(&e) => {}
                        Err(e) => c.fail(format!("{name}: poll: {e}")),
                    }
                } else {
                    let (ep, tname) = targets[i];
                    match sys::epoll_wait(ep.fd, &mut buf, 0) {
                        Ok(0) => {
                            pt[i].fetch_add(1, SeqCst);
                            c.detect(
                                Bug::FalseNegative,
                                format!("epoll_wait({tname} epoll, timeout=0) returned 0 while its level-triggered sentinels are readable for good (thread {name}, call {call})"),
                                &[],
                            );
                        }
                        Ok(n) => c.got(n as u64),
                        Err(e) if sys::is_eintr(&e) => {}
                        Err(e) => c.fail(format!("{name}: epoll_wait: {e}")),
                    }
                }
                if yield_each {
                    sys::sched_yield();
                }
            }
        }));
    }
    c.finally(move |c| {
        c.metric("fn_flat", per_target[0].load(SeqCst));
        c.metric("fn_inner", per_target[1].load(SeqCst));
        c.metric("fn_outer", per_target[2].load(SeqCst));
    });
    drop(sent);
    Ok(hs)
}

/// rr: epoll_wait(2) promises that "successive epoll_wait() calls will
/// round robin through the set of ready file descriptors" when more are
/// ready than maxevents. K level-triggered sentinels are ready for good; a
/// consumer calls epoll_wait() with maxevents 1..3; every sentinel must
/// come back within 2*K calls. A sentinel that is ready and never returned
/// is starved: its event is never delivered.
fn round_robin(c: &Arc<Ctx>) -> io::Result<Handles> {
    let k = 6usize;
    let ep = Epoll::new("ep")?;
    let mut sent = Vec::new();
    for i in 0..k {
        let kind = Kind::ALL[i % 3];
        let s = c.source(Source::new(kind, &format!("sentinel{i}-{}", kind.name()))?);
        s.make_sentinel()?;
        ep.add(s.rfd, IN, i as u64)?;
        sent.push(s);
    }
    let seed = c.opts.seed ^ 101;
    let mut hs = Vec::new();
    hs.push(worker(c, "rr-consumer", cpu(c, 0), c.opts.waiter_prio, move |c| {
        let mut rng = Rng::new(seed);
        let mut buf = sys::new_events(3);
        let mut last = vec![0u64; k];
        let mut call = 0u64;
        let bound = 2 * k as u64;
        let mut worst = 0u64;
        let mut pace = Pace::new();
        while !c.stopped() {
            pace.tick();
            let m = rng.range(1, 3) as usize;
            let timeout = if rng.chance(50) { 0 } else { -1 };
            call += 1;
            c.op();
            match sys::epoll_wait(ep.fd, &mut buf[..m], timeout) {
                Ok(n) => {
                    c.got(n as u64);
                    if n == 0 {
                        c.detect(
                            Bug::FalseNegative,
                            format!("epoll_wait(ep, maxevents={m}, timeout={timeout}) returned 0 while {k} level-triggered sentinels are readable for good (call {call})"),
                            &[],
                        );
                    }
                    for e in &buf[..n] {
                        let (_, d) = sys::ev_of(e);
                        if let Some(l) = last.get_mut(d as usize) {
                            *l = call;
                        }
                    }
                }
                Err(e) if sys::is_eintr(&e) => continue,
                Err(e) => {
                    c.fail(format!("rr: epoll_wait: {e}"));
                    return;
                }
            }
            for (i, l) in last.iter_mut().enumerate() {
                let gap = call - *l;
                worst = worst.max(gap);
                if gap > bound {
                    c.detect(
                        Bug::LostWakeup,
                        format!("starvation: level-triggered sentinel{i} (fd {}) ready for good but not returned by {gap} successive epoll_wait() calls with maxevents<=3 over {k} ready fds (round robin broken)", sent[i].rfd),
                        &[],
                    );
                    *l = call;
                    break;
                }
            }
        }
        c.metric("rr_worst_gap_calls", worst);
        c.metric("rr_ready_fds", k);
    }));
    Ok(hs)
}

/// et-inout: one AF_UNIX socket watched with EPOLLIN|EPOLLOUT|EPOLLET,
/// next to `BURST` edge-triggered eventfds in the same epoll instance.
/// Each round: the consumer fills the socket's send buffer until EAGAIN (so
/// the next "writable" is an edge it is owed) and tells the peer; the peer
/// writes the burst eventfds, then one byte to the socket (an EPOLLIN
/// edge), waits and drains the consumer's data (the EPOLLOUT edge, from the
/// skb destructor). The socket's item is queued last, so a delivery that
/// polls it first and then the burst items spends a while between polling
/// the socket and finishing the delivery; the peer aims its drain at that
/// stretch (from the measured wake-up latency). Contract: a report whose
/// poll did not include EPOLLOUT leaves the EPOLLOUT edge owed, so the
/// consumer must get EPOLLOUT after the drain.
fn et_inout(c: &Arc<Ctx>) -> io::Result<Handles> {
    const BURST: usize = 48;
    let (a, b) = sys::socketpair()?;
    sys::set_sndbuf(a, 4096)?;
    let go = sys::eventfd(0)?;
    let ep = Epoll::new("ep")?;
    ep.add(a, IN | OUT | ET, SOCK)?;
    let mut fds = vec![a, b, go];
    let mut burst = Vec::new();
    for i in 0..BURST {
        let f = sys::eventfd(0)?;
        fds.push(f);
        ep.add(f, IN | ET, i as u64)?;
        burst.push(f);
    }
    let burst = Arc::new(burst);
    let need_out = Arc::new(AtomicBool::new(false));
    let outs = Arc::new(AtomicU64::new(0));
    // Peer's first write of a round, and the consumer's return from the
    // wait that reported the socket's EPOLLIN (ns).
    let t_first = Arc::new(AtomicI64::new(0));
    let lat_ema = Arc::new(AtomicI64::new(2_000_000));
    let fds = Arc::new(FdGuard(fds));
    let mut hs = Vec::new();
    let w = c.waiter("et-consumer", WaitKind::EpollWait);
    {
        let (w, ep, need_out, outs, t_first, lat_ema, fds, burst) = (
            w.clone(),
            ep.clone(),
            need_out.clone(),
            outs.clone(),
            t_first.clone(),
            lat_ema.clone(),
            fds.clone(),
            burst.clone(),
        );
        hs.push(worker(
            c,
            "et-consumer",
            cpu(c, 0),
            c.opts.waiter_prio,
            move |c| {
                w.bind();
                let _keep = fds;
                let chunk = [0u8; 1024];
                let mut rbuf = [0u8; 256];
                let mut buf = sys::new_events(BURST + 4);
                'outer: while !c.stopped() {
                    loop {
                        match sys::write_bytes(a, &chunk) {
                            Ok(_) => continue,
                            Err(e) if sys::is_eagain(&e) => break,
                            Err(e) => {
                                c.fail(format!("et-consumer: fill: {e}"));
                                return;
                            }
                        }
                    }
                    need_out.store(true, SeqCst);
                    c.op();
                    if let Err(e) = sys::write_u64(go, 1) {
                        c.fail(format!("et-consumer: go: {e}"));
                        return;
                    }
                    loop {
                        if c.stopped() {
                            break 'outer;
                        }
                        let Some(n) = wait_once(c, &w, ep.fd, &mut buf, -1) else {
                            continue;
                        };
                        let now = now_ns();
                        let mut got_out = false;
                        for e in &buf[..n] {
                            let (ev, d) = sys::ev_of(e);
                            if d != SOCK {
                                if let Some(&f) = burst.get(d as usize) {
                                    let _ = sys::read_u64(f);
                                }
                                continue;
                            }
                            if ev & IN != 0 {
                                let t = t_first.swap(0, SeqCst);
                                if t > 0 {
                                    let e = lat_ema.load(SeqCst);
                                    lat_ema.store((e * 7 + (now - t)) / 8, SeqCst);
                                }
                                while let Ok(k) = sys::read_bytes(a, &mut rbuf) {
                                    if k == 0 {
                                        break;
                                    }
                                }
                            }
                            if ev & OUT != 0 {
                                got_out = true;
                            }
                        }
                        if got_out {
                            need_out.store(false, SeqCst);
                            outs.fetch_add(1, SeqCst);
                            continue 'outer;
                        }
                    }
                }
            },
        ));
    }
    {
        let (t_first, lat_ema, fds, burst) =
            (t_first.clone(), lat_ema.clone(), fds.clone(), burst.clone());
        let seed = c.opts.seed ^ 111;
        let cw = w.clone();
        let gw = c.waiter("et-peer", WaitKind::Poll);
        hs.push(worker(
            c,
            "et-peer",
            cpu(c, 1),
            c.opts.waiter_prio,
            move |c| {
                gw.bind();
                let _keep = fds;
                let mut rng = Rng::new(seed);
                let mut rbuf = [0u8; 16384];
                while !c.stopped() {
                    gw.enter(go);
                    let r = sys::poll1(go, libc::POLLIN, -1);
                    gw.leave();
                    match r {
                        Ok(_) => {}
                        Err(e) if sys::is_eintr(&e) => continue,
                        Err(e) => {
                            c.fail(format!("et-peer: poll: {e}"));
                            return;
                        }
                    }
                    if sys::read_u64(go).is_err() {
                        continue;
                    }
                    let ema = lat_ema.load(SeqCst).clamp(20_000, 5_000_000) as u64;
                    let by_state = rng.chance(75);
                    let at = rng.range(ema * 4 / 10, ema * 11 / 10) as i64;
                    let t0 = now_ns();
                    t_first.store(t0, SeqCst);
                    for &f in burst.iter() {
                        let _ = sys::write_u64(f, 1);
                    }
                    if let Err(e) = sys::write_bytes(b, b"i") {
                        c.fail(format!("et-peer: write: {e}"));
                        return;
                    }
                    if by_state {
                        // Aim the drain at the consumer's delivery: wait until
                        // it has been woken (its task state leaves S), then a
                        // random part of the time a delivery of the whole
                        // batch takes.
                        let end = t0 + 20_000_000;
                        while cw.state() == 'S' && now_ns() < end {}
                        sys::spin_until(now_ns() + rng.below(300_000) as i64);
                    } else {
                        // Or between 40% and 110% of its usual wake-up
                        // latency after the first write.
                        sys::spin_until(t0 + at);
                    }
                    while let Ok(k) = sys::read_bytes(b, &mut rbuf) {
                        if k == 0 {
                            break;
                        }
                    }
                    c.op();
                }
            },
        ));
    }
    {
        let n1 = need_out.clone();
        let o1 = outs.clone();
        let fds2 = fds.clone();
        c.oblige(Obligation {
            label: "et-inout:EPOLLOUT".to_string(),
            source: None,
            group: vec![w],
            due: Box::new(move || {
                let _ = &fds2;
                n1.load(SeqCst)
                    && matches!(sys::poll1(a, libc::POLLOUT, 0), Ok(r) if r & libc::POLLOUT != 0)
            }),
            progress: Box::new(move || o1.load(SeqCst)),
            since: std::sync::Mutex::new(None),
            // Recovery: a new EPOLLIN edge makes the kernel poll the socket
            // again (and report the writability it lost).
            recover: Some(Box::new(move || {
                let _ = sys::write_bytes(b, b"r");
            })),
        });
    }
    let o2 = outs.clone();
    let l2 = lat_ema.clone();
    c.finally(move |c| {
        c.metric("out_edges", o2.load(SeqCst));
        c.metric("wake_lat_ema_us", l2.load(SeqCst) / 1000);
    });
    Ok(hs)
}

const SOCK: u64 = 1 << 45;

/// Closes its fds when the last thread that uses them is gone.
pub struct FdGuard(pub Vec<sys::Fd>);

impl Drop for FdGuard {
    fn drop(&mut self) {
        for &f in &self.0 {
            sys::close(f);
        }
    }
}
