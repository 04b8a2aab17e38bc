//! Building blocks shared by the patterns: an owned epoll fd, the blocking
//! wait loops, producers, and the false-negative check of a non-blocking or
//! timed call.

use super::core::{Bug, Ctx, WaitKind, Waiter};
use super::rng::Rng;
use super::runtime::worker;
use super::source::{Snap, Source};
use super::sys::{self, Fd};
use ept_guest::now_ns;
use std::io;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::thread::JoinHandle;

/// An epoll instance, closed when the last user drops it.
pub struct Epoll {
    pub fd: Fd,
    pub name: String,
}

impl Epoll {
    pub fn new(name: &str) -> io::Result<Arc<Epoll>> {
        Ok(Arc::new(Epoll {
            fd: sys::epoll_create()?,
            name: name.to_string(),
        }))
    }

    pub fn add(&self, fd: Fd, events: u32, data: u64) -> io::Result<()> {
        sys::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, events, data)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: ADD fd {fd}: {e}", self.name)))
    }

    pub fn modify(&self, fd: Fd, events: u32, data: u64) -> io::Result<()> {
        sys::epoll_ctl(self.fd, libc::EPOLL_CTL_MOD, fd, events, data)
    }

    pub fn del(&self, fd: Fd) -> io::Result<()> {
        sys::epoll_ctl(self.fd, libc::EPOLL_CTL_DEL, fd, 0, 0)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

pub const IN: u32 = libc::EPOLLIN as u32;
pub const OUT: u32 = libc::EPOLLOUT as u32;
pub const ET: u32 = libc::EPOLLET as u32;
pub const ONESHOT: u32 = libc::EPOLLONESHOT as u32;
pub const EXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;

/// The CPUs to spread threads over: 0..n (n = online CPUs).
pub fn cpu(ctx: &Ctx, i: usize) -> Option<usize> {
    let n = ctx.opts.cpus;
    if n == 0 {
        None
    } else {
        Some(i % n)
    }
}

/// One blocking epoll_wait() (flagged for the watchdog). Ok(None) when a
/// signal interrupted it.
pub fn wait_once(
    c: &Ctx,
    w: &Waiter,
    ep: Fd,
    buf: &mut [libc::epoll_event],
    timeout: i32,
) -> Option<usize> {
    w.enter(ep);
    let r = sys::epoll_wait(ep, buf, timeout);
    w.leave();
    c.op();
    match r {
        Ok(n) => {
            c.got(n as u64);
            Some(n)
        }
        Err(e) if sys::is_eintr(&e) => None,
        Err(e) => {
            c.fail(format!("{}: epoll_wait: {e}", w.name));
            None
        }
    }
}

/// A waiter thread that blocks in epoll_wait(`ep`, `maxevents`, `timeout`)
/// and hands each event (events, data) to `handle`.
pub fn waiter_thread<F>(
    ctx: &Arc<Ctx>,
    name: &str,
    cpu: Option<usize>,
    ep: Arc<Epoll>,
    maxevents: usize,
    timeout: i32,
    mut handle: F,
) -> (Arc<Waiter>, JoinHandle<()>)
where
    F: FnMut(&Arc<Ctx>, u32, u64) + Send + 'static,
{
    let w = ctx.waiter(name, WaitKind::EpollWait);
    let w2 = w.clone();
    let prio = ctx.opts.waiter_prio;
    let h = worker(ctx, name, cpu, prio, move |c| {
        w2.bind();
        let mut buf = sys::new_events(maxevents);
        while !c.stopped() {
            if let Some(n) = wait_once(c, &w2, ep.fd, &mut buf, timeout) {
                for e in &buf[..n] {
                    let (ev, d) = sys::ev_of(e);
                    handle(c, ev, d);
                }
            }
        }
    });
    (w, h)
}

/// A producer thread: every random gap in [gap_lo_us, gap_hi_us] it makes a
/// random one of `srcs` ready (if that one has nothing in flight). A timerfd
/// is armed to expire in [50, 500] us.
pub fn producer_thread(
    ctx: &Arc<Ctx>,
    name: &str,
    cpu: Option<usize>,
    srcs: Vec<Arc<Source>>,
    seed: u64,
    gap_lo_us: u64,
    gap_hi_us: u64,
) -> JoinHandle<()> {
    let prio = ctx.opts.producer_prio;
    let label = name.to_string();
    worker(ctx, name, cpu, prio, move |c| {
        let mut rng = Rng::new(seed);
        while !c.stopped() {
            let s = &srcs[rng.below(srcs.len() as u64) as usize];
            let timer = rng.range(50, 500) as i64 * 1000;
            match s.produce(timer) {
                Ok(true) => c.op(),
                Ok(false) => {}
                Err(e) => {
                    c.fail(format!("{label}: produce {}: {e}", s.name));
                    return;
                }
            }
            let gap = rng.range(gap_lo_us, gap_hi_us) as i64 * 1000;
            if gap > 0 {
                sys::sleep_until(now_ns() + gap);
            }
        }
    })
}

/// Snapshots of the level-triggered sources before a non-blocking or timed
/// call.
pub fn snaps(srcs: &[Arc<Source>]) -> Vec<Snap> {
    srcs.iter().map(|s| s.snap()).collect()
}

/// After a call returned 0 events: report a false negative if one of the
/// level-triggered `srcs` was readable for the whole call.
pub fn check_fn(
    c: &Ctx,
    who: &str,
    target: &str,
    srcs: &[Arc<Source>],
    before: &[Snap],
    call: u64,
    timeout: i32,
) -> bool {
    for (s, b) in srcs.iter().zip(before) {
        if s.readable_throughout(b) {
            let detail = format!(
                "epoll_wait({target}, timeout={timeout}) returned 0 while level-triggered {} (fd {}) was readable for the whole call (thread {who}, call {call})",
                s.name, s.rfd
            );
            c.detect(Bug::FalseNegative, detail, &[]);
            return true;
        }
    }
    false
}

/// Drains an epoll instance without blocking: epoll_wait(ep, 0) until it
/// returns nothing, draining the sources its events name (data = index).
pub fn drain_epoll(
    c: &Ctx,
    ep: Fd,
    srcs: &[Arc<Source>],
    buf: &mut [libc::epoll_event],
) -> io::Result<u64> {
    let mut total = 0;
    for _ in 0..64 {
        let n = match sys::epoll_wait(ep, buf, 0) {
            Ok(n) => n,
            Err(e) if sys::is_eintr(&e) => return Ok(total),
            Err(e) => return Err(e),
        };
        c.op();
        if n == 0 {
            break;
        }
        c.got(n as u64);
        for e in &buf[..n] {
            let (_, d) = sys::ev_of(e);
            if let Some(s) = srcs.get(d as usize) {
                total += s.drain();
            }
        }
    }
    Ok(total)
}

/// The latency metrics over the pattern's sources.
pub fn latency_metrics(c: &Ctx) {
    let srcs = c.sources.lock().unwrap().clone();
    let mut max = 0i64;
    let mut sum = 0i64;
    let mut n = 0u64;
    for s in &srcs {
        max = max.max(s.lat_max.load(SeqCst));
        sum += s.lat_sum.load(SeqCst);
        n += s.lat_n.load(SeqCst);
    }
    if n > 0 {
        c.metric("deliveries", n);
        c.metric("lat_max_us", max / 1000);
        c.metric("lat_avg_us", sum / n as i64 / 1000);
    }
}
