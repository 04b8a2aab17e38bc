//! Threads of a pattern run: workers (pinned, SCHED_FIFO), the hogs, and the
//! watchdog that runs the lost-wake-up oracle and prints heartbeats.

use super::core::{Bug, Ctx, Obligation};
use super::out;
use super::rng::Rng;
use super::sys;
use ept_guest::{now_ns, pin_cpu, set_fifo};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Operations of the patterns that already finished (heartbeat progress).
pub static DONE_OPS: AtomicU64 = AtomicU64::new(0);
/// Program start (ns) and the time of the last heartbeat.
pub static T_START: AtomicI64 = AtomicI64::new(0);
static LAST_HB: AtomicI64 = AtomicI64::new(0);

pub const HEARTBEAT_NS: i64 = 2_000_000_000;

/// Prints a heartbeat if one is due (every 2 s of the whole program).
pub fn heartbeat(ctx: Option<&Ctx>) {
    let now = now_ns();
    let last = LAST_HB.load(SeqCst);
    if now - last < HEARTBEAT_NS {
        return;
    }
    if LAST_HB.compare_exchange(last, now, SeqCst, SeqCst).is_err() {
        return;
    }
    let ops = DONE_OPS.load(SeqCst) + ctx.map_or(0, |c| c.ops.load(SeqCst));
    let pat = ctx.map_or("-", |c| c.pattern);
    out::line(&format!(
        "# heartbeat scenario=wakeup t_ms={} progress={} pattern={}",
        (now - T_START.load(SeqCst)) / 1_000_000,
        ops,
        pat
    ));
}

/// Spawns a worker thread: pinned to `cpu` (if any), SCHED_FIFO `prio`
/// (0: SCHED_OTHER), registered for the final interruption.
pub fn worker<F>(ctx: &Arc<Ctx>, name: &str, cpu: Option<usize>, prio: i32, f: F) -> JoinHandle<()>
where
    F: FnOnce(&Arc<Ctx>) + Send + 'static,
{
    let c = ctx.clone();
    let label = name.to_string();
    let mut comm = name.to_string();
    comm.truncate(15);
    std::thread::Builder::new()
        .name(comm)
        .stack_size(256 * 1024)
        .spawn(move || {
            c.register_thread();
            if let Some(cpu) = cpu {
                if let Err(e) = pin_cpu(cpu) {
                    c.fail(format!("{label}: pin to CPU {cpu}: {e}"));
                    return;
                }
            }
            if let Err(e) = set_fifo(prio) {
                c.fail(format!("{label}: SCHED_FIFO {prio}: {e}"));
                return;
            }
            f(&c);
        })
        .expect("thread spawn")
}

/// The hogs: one per CPU in `opts.hog_cpus`, SCHED_FIFO `hog_prio`, each
/// woken by an absolute hrtimer sleep every `hog_period_us` (jittered) and
/// then busy for a random burst in [hog_burst_min_us, hog_burst_max_us].
/// Hog i is offset by i/n of a period so that the hogs do not burst
/// together: while one CPU's threads are preempted the other CPU runs.
pub fn hogs(ctx: &Arc<Ctx>, seed: u64) -> Vec<JoinHandle<()>> {
    let o = ctx.opts.clone();
    if o.hog_burst_max_us == 0 || o.hog_cpus.is_empty() {
        return Vec::new();
    }
    let n = o.hog_cpus.len() as i64;
    let period = o.hog_period_us as i64 * 1000;
    let base = now_ns();
    o.hog_cpus
        .iter()
        .enumerate()
        .map(|(i, &cpu)| {
            let o = o.clone();
            worker(ctx, &format!("hog{cpu}"), Some(cpu), o.hog_prio, move |c| {
                let mut rng = Rng::new(seed ^ (0x9e37 + i as u64));
                let mut k = 0i64;
                while !c.stopped() {
                    k += 1;
                    let jitter = rng.below(period as u64 / 4 + 1) as i64;
                    let t = base + k * period + i as i64 * period / n + jitter;
                    let now = now_ns();
                    if t > now {
                        sys::sleep_until(t);
                    } else {
                        // Overslept (TCG): skip the missed periods.
                        k = (now - base) / period;
                        continue;
                    }
                    let burst =
                        rng.range(o.hog_burst_min_us as u64, o.hog_burst_max_us as u64) as i64;
                    sys::spin_until(now_ns() + burst * 1000);
                }
            })
        })
        .collect()
}

/// The watchdog: the pattern's deadline, heartbeats, and the lost-wake-up
/// oracle over the registered obligations.
pub fn watchdog(ctx: &Arc<Ctx>) -> JoinHandle<()> {
    let prio = ctx.opts.watchdog_prio;
    worker(ctx, "ept-watchdog", None, prio, move |c| {
        let tick = 20_000_000i64;
        let bound = c.opts.bound_ms as i64 * 1_000_000;
        let mut next = now_ns();
        while !c.stopped() {
            next += tick;
            sys::sleep_until(next);
            let now = now_ns();
            if now >= c.deadline {
                c.stop.store(true, SeqCst);
                break;
            }
            heartbeat(Some(c));
            let obs: Vec<Arc<Obligation>> = c.obligations.lock().unwrap().clone();
            for o in &obs {
                check_obligation(c, o, now, bound);
            }
            if now - next > 50 * tick {
                // The watchdog itself was starved (host): do not count the
                // gap against the waiters.
                for o in &obs {
                    *o.since.lock().unwrap() = None;
                }
                next = now_ns();
            }
        }
    })
}

fn check_obligation(c: &Arc<Ctx>, o: &Obligation, now: i64, bound: i64) {
    // Cheap tests first: the flags, then the due test, then /proc.
    let flagged = o.group.iter().all(|w| w.in_wait.load(SeqCst));
    let ok = flagged && (o.due)() && o.group.iter().all(|w| w.asleep());
    let mut since = o.since.lock().unwrap();
    if !ok {
        *since = None;
        return;
    }
    let prog = (o.progress)();
    match *since {
        Some((t, p)) if p == prog => {
            if now - t < bound {
                return;
            }
            // Re-check right before declaring (and confirm the kernel still
            // says ready).
            if !((o.due)() && o.group.iter().all(|w| w.asleep())) || (o.progress)() != prog {
                *since = None;
                return;
            }
            let mut diag = Vec::new();
            let mut who = Vec::new();
            for w in &o.group {
                let tid = w.tid.load(SeqCst);
                who.push(format!("{}/{}", w.name, tid));
                diag.push(format!(
                    "waiter={} tid={} in={:?} fd={} state={} wakes={} stack={}",
                    w.name,
                    tid,
                    w.kind,
                    w.fd.load(SeqCst),
                    w.state(),
                    w.wakes.load(SeqCst),
                    w.stack()
                ));
            }
            let src = o
                .source
                .as_ref()
                .map(|s| {
                    format!(
                        "source={} fd={} writes={} consumed={}",
                        s.name,
                        s.rfd,
                        s.writes.load(SeqCst),
                        s.consumed.load(SeqCst)
                    )
                })
                .unwrap_or_default();
            let detail = format!(
                "{} due and undelivered for {} ms while every waiter slept ({}) {}",
                o.label,
                (now - t) / 1_000_000,
                who.join(","),
                src
            );
            c.detect(Bug::LostWakeup, detail, &diag);
            *since = None;
            // Recover so that the run can go on (or end): interrupt the
            // group, and let the pattern make the event again.
            for w in &o.group {
                sys::tgkill(w.tid.load(SeqCst), libc::SIGUSR1);
            }
            if let Some(r) = &o.recover {
                r();
            }
        }
        _ => *since = Some((now, prog)),
    }
}

/// Stops a pattern's threads: sets `stop`, interrupts every worker with
/// SIGUSR1 until all have returned (at most ~10 s).
pub fn stop_all(ctx: &Arc<Ctx>, mut hs: Vec<JoinHandle<()>>) {
    ctx.stop.store(true, SeqCst);
    let end = now_ns() + 10_000_000_000;
    loop {
        hs.retain(|h| !h.is_finished());
        if hs.is_empty() {
            break;
        }
        if now_ns() > end {
            ctx.fail(format!("{} thread(s) did not stop", hs.len()));
            break;
        }
        for &t in ctx.tids.lock().unwrap().iter() {
            sys::tgkill(t, libc::SIGUSR1);
        }
        sys::sleep_until(now_ns() + 10_000_000);
        heartbeat(Some(ctx));
    }
    for h in hs {
        // Threads still running are abandoned (the process exits later).
        drop(h);
    }
    // A returned thread may still be inside the kernel's exit path (it
    // takes mmap_lock there): let every one be gone before the next pattern
    // starts busy SCHED_FIFO threads on its CPU.
    let tids: Vec<i32> = ctx.tids.lock().unwrap().clone();
    for t in tids {
        while std::path::Path::new(&format!("/proc/self/task/{t}")).exists() && now_ns() < end {
            sys::sleep_until(now_ns() + 2_000_000);
        }
    }
    let fins: Vec<_> = ctx.finalizers.lock().unwrap().drain(..).collect();
    for f in fins {
        f(ctx);
    }
}
