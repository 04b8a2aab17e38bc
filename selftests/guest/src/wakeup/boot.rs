//! boot: a model of the boot/login burst that the v3 revert describes
//! ("delays and stuck user space processes ... during early boot or during
//! the flurry of initial activity when logging in"): a GLib-like main loop
//! whose context is an epoll set it watches both with poll() and
//! epoll_wait(), with persistent nested loops in it (as libwayland,
//! libinput or pipewire loops sit inside a GLib context), and a stream of
//! short-lived clients, each with its own loop (epoll + timerfd + a
//! EPOLLONESHOT eventfd re-armed with EPOLL_CTL_MOD), half of them
//! registered into the main context (EPOLL_CTL_ADD of an epoll fd from
//! another thread while the main loop waits), all closing their fds while
//! they are still watched.
//!
//! Oracles: the main loop's wake-up eventfd and the nested loops' sources
//! (the main loop must wake), each client's timer and reply eventfd (the
//! client must wake), and a client's 1 s wait that returns 0 events more
//! than 500 ms after its own 1-5 ms timer expired.

use super::common::*;
use super::core::{Bug, Ctx, Obligation, WaitKind};
use super::rng::Rng;
use super::runtime::worker;
use super::source::{Kind, Source};
use super::sys;
use ept_guest::now_ns;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const WAKE: u64 = 1 << 42;
const CHILD: u64 = 1 << 43;
const CLIENT: u64 = 1 << 44;

pub fn start(c: &Arc<Ctx>) -> io::Result<Vec<JoinHandle<()>>> {
    let main = Epoll::new("main")?;
    let wake = c.source(Source::new(Kind::Eventfd, "main-wakeup")?);
    main.add(wake.rfd, IN, WAKE)?;
    // Persistent nested loops: each an epoll with a pipe and an eventfd.
    let mut children = Vec::new();
    let mut child_srcs: Vec<Vec<Arc<Source>>> = Vec::new();
    for i in 0..3 {
        let ep = Epoll::new(&format!("child{i}"))?;
        let ss = vec![
            c.source(Source::new(Kind::Pipe, &format!("child{i}-pipe"))?),
            c.source(Source::new(Kind::Eventfd, &format!("child{i}-eventfd"))?),
        ];
        for (j, s) in ss.iter().enumerate() {
            ep.add(s.rfd, IN, j as u64)?;
        }
        main.add(ep.fd, IN, CHILD | i as u64)?;
        children.push(ep);
        child_srcs.push(ss);
    }
    let registry: Arc<Mutex<HashMap<u64, Arc<Source>>>> = Arc::new(Mutex::new(HashMap::new()));
    let clients_done = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();

    // The main loop: poll() on the context fd or epoll_wait() on it, then
    // dispatch with epoll_wait(main, 0).
    let mw = c.waiter("main-loop", WaitKind::EpollWait);
    {
        let (mw, main, wake, children, child_srcs, registry) = (
            mw.clone(),
            main.clone(),
            wake.clone(),
            children.clone(),
            child_srcs.clone(),
            registry.clone(),
        );
        let seed = c.opts.seed ^ 201;
        hs.push(worker(
            c,
            "main-loop",
            cpu(c, 0),
            c.opts.waiter_prio,
            move |c| {
                mw.bind();
                let mut rng = Rng::new(seed);
                let mut buf = sys::new_events(4);
                let mut cbuf = sys::new_events(4);
                while !c.stopped() {
                    let use_poll = rng.chance(50);
                    mw.enter(main.fd);
                    let r = if use_poll {
                        sys::poll1(main.fd, libc::POLLIN, -1)
                            .map(|r| (r & libc::POLLIN != 0) as usize)
                    } else {
                        sys::epoll_wait(main.fd, &mut buf, -1)
                    };
                    mw.leave();
                    c.op();
                    let n = match r {
                        Ok(n) => n,
                        Err(e) if sys::is_eintr(&e) => continue,
                        Err(e) => {
                            c.fail(format!("main-loop: wait: {e}"));
                            return;
                        }
                    };
                    let mut batch: Vec<u64> = if use_poll {
                        Vec::new()
                    } else {
                        buf[..n].iter().map(|e| sys::ev_of(e).1).collect()
                    };
                    // Dispatch: like g_main_context_dispatch() of a context whose
                    // fds sit in an epoll set, take everything ready now.
                    for _ in 0..16 {
                        if batch.is_empty() {
                            match sys::epoll_wait(main.fd, &mut buf, 0) {
                                Ok(0) => break,
                                Ok(k) => {
                                    c.op();
                                    batch = buf[..k].iter().map(|e| sys::ev_of(e).1).collect();
                                }
                                Err(_) => break,
                            }
                        }
                        c.got(batch.len() as u64);
                        for d in batch.drain(..) {
                            if d == WAKE {
                                wake.drain();
                            } else if d & CHILD != 0 {
                                let i = (d & 0xff) as usize;
                                if let Err(e) =
                                    drain_epoll(c, children[i].fd, &child_srcs[i], &mut cbuf)
                                {
                                    c.fail(format!("main-loop: drain child{i}: {e}"));
                                }
                            } else if d & CLIENT != 0 {
                                // Reply to the client (its eventfd, EPOLLONESHOT).
                                let s = registry.lock().unwrap().get(&(d & !CLIENT)).cloned();
                                if let Some(s) = s {
                                    let _ = s.produce(0);
                                }
                            }
                        }
                    }
                }
            },
        ));
    }
    c.oblige(Obligation::readable(
        "boot:main-wakeup",
        &wake,
        std::slice::from_ref(&mw),
    ));
    for ss in &child_srcs {
        for s in ss {
            c.oblige(Obligation::readable(
                &format!("boot:main/{}", s.name),
                s,
                std::slice::from_ref(&mw),
            ));
        }
    }
    // Kickers: wake the main loop and feed the nested loops.
    let mut feed: Vec<Arc<Source>> = child_srcs.iter().flatten().cloned().collect();
    feed.push(wake.clone());
    for k in 0..2 {
        hs.push(producer_thread(
            c,
            &format!("kicker{k}"),
            cpu(c, k + 1),
            feed.clone(),
            c.opts.seed ^ (211 + k as u64),
            0,
            500,
        ));
    }
    // The client spawner.
    {
        let (main, registry, clients_done) = (main.clone(), registry.clone(), clients_done.clone());
        let seed = c.opts.seed ^ 221;
        hs.push(worker(
            c,
            "spawner",
            cpu(c, 1),
            c.opts.producer_prio,
            move |c| {
                let mut rng = Rng::new(seed);
                let live = Arc::new(AtomicUsize::new(0));
                let mut id = 0u64;
                let mut kids: Vec<JoinHandle<()>> = Vec::new();
                while !c.stopped() {
                    kids.retain(|h| !h.is_finished());
                    if live.load(SeqCst) < 12 {
                        id += 1;
                        live.fetch_add(1, SeqCst);
                        let (main, registry, live, done) = (
                            main.clone(),
                            registry.clone(),
                            live.clone(),
                            clients_done.clone(),
                        );
                        let cpu = cpu(c, rng.below(2) as usize);
                        let prio = if rng.chance(50) {
                            c.opts.waiter_prio
                        } else {
                            0
                        };
                        let cseed = rng.next();
                        kids.push(worker(c, &format!("client{id}"), cpu, prio, move |c| {
                            if let Err(e) = client(c, id, cseed, &main, &registry) {
                                c.fail(format!("client{id}: {e}"));
                            }
                            done.fetch_add(1, SeqCst);
                            live.fetch_sub(1, SeqCst);
                        }));
                        c.op();
                    }
                    sys::sleep_until(now_ns() + rng.range(200, 3000) as i64 * 1000);
                }
                // Clients see `stop` and the final SIGUSR1s; wait for them here
                // so that their obligations are gone before the pattern ends.
                let end = now_ns() + 5_000_000_000;
                while kids.iter().any(|h| !h.is_finished()) && now_ns() < end {
                    sys::sleep_until(now_ns() + 10_000_000);
                }
            },
        ));
    }
    c.finally(move |c| c.metric("clients", clients_done.load(SeqCst)));
    Ok(hs)
}

/// One short-lived client: its own loop (epoll with a timerfd and an
/// EPOLLONESHOT reply eventfd), maybe registered into the main context,
/// 2-5 iterations, then everything closed in a random order while still
/// watched.
fn client(
    c: &Arc<Ctx>,
    id: u64,
    seed: u64,
    main: &Arc<Epoll>,
    registry: &Arc<Mutex<HashMap<u64, Arc<Source>>>>,
) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let ep = Epoll::new(&format!("client{id}"))?;
    let timer = Arc::new(Source::new(Kind::Timerfd, &format!("client{id}-timerfd"))?);
    let reply = Arc::new(Source::new(Kind::Eventfd, &format!("client{id}-reply"))?);
    ep.add(timer.rfd, IN, 0)?;
    ep.add(reply.rfd, IN | ONESHOT, 1)?;
    let nested = rng.chance(50);
    if nested {
        registry.lock().unwrap().insert(id, reply.clone());
        main.add(ep.fd, IN | ET, CLIENT | id)?;
    }
    let w = c.waiter(&format!("client{id}"), WaitKind::EpollWait);
    w.bind();
    let obs = [
        Arc::new(Obligation::readable(
            &format!("boot:client{id}/timerfd"),
            &timer,
            std::slice::from_ref(&w),
        )),
        Arc::new(Obligation::readable(
            &format!("boot:client{id}/reply"),
            &reply,
            std::slice::from_ref(&w),
        )),
    ];
    c.obligations.lock().unwrap().extend(obs.iter().cloned());
    let mut buf = sys::new_events(4);
    let iters = rng.range(2, 5);
    let mut res = Ok(());
    for _ in 0..iters {
        if c.stopped() {
            break;
        }
        timer.produce(rng.range(1000, 5000) as i64 * 1000)?;
        if !nested && rng.chance(50) {
            // A reply from "somewhere else" (no main loop involved).
            reply.produce(0)?;
        }
        // Long against the 1-5 ms timer: a 0 return with the timer long
        // expired cannot be a late timer softirq.
        let timeout = 1000;
        let t = now_ns();
        w.enter(ep.fd);
        let r = sys::epoll_wait(ep.fd, &mut buf, timeout);
        w.leave();
        c.op();
        match r {
            Ok(0) => {
                c.overrun(t, timeout);
                // The timer was armed to expire well before the timeout and
                // only this client reads it.
                let late = now_ns() - timer.t_write.load(SeqCst);
                if timer.due() && timer.kernel_readable() && late > 500_000_000 {
                    c.detect(
                        Bug::LostWakeup,
                        format!(
                            "client{id}: epoll_wait(client epoll, timeout={timeout}) returned 0 events {} ms after its level-triggered timerfd (fd {}) expired{}",
                            late / 1_000_000,
                            timer.rfd,
                            if nested { " (its epoll is nested in the main context)" } else { "" }
                        ),
                        &[],
                    );
                }
                timer.drain();
            }
            Ok(n) => {
                c.got(n as u64);
                for e in &buf[..n] {
                    let (_, d) = sys::ev_of(e);
                    if d == 0 {
                        timer.drain();
                    } else {
                        reply.drain();
                        if let Err(e) = ep.modify(reply.rfd, IN | ONESHOT, 1) {
                            res = Err(e);
                        }
                    }
                }
            }
            Err(e) if sys::is_eintr(&e) => {}
            Err(e) => res = Err(e),
        }
        if res.is_err() {
            break;
        }
    }
    // Retire the obligations, then close while still watched, in a random
    // order (the nested epoll goes from the main context with its last
    // reference).
    c.obligations
        .lock()
        .unwrap()
        .retain(|o| !obs.iter().any(|x| Arc::ptr_eq(x, o)));
    registry.lock().unwrap().remove(&id);
    c.waiters.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &w));
    if rng.chance(50) {
        drop(timer);
        drop(reply);
        drop(ep);
    } else {
        drop(ep);
        drop(reply);
        drop(timer);
    }
    res
}
