// SPDX-License-Identifier: GPL-2.0

//! The worker threads of a timed run and the state they share.
//!
//! * producers (`ept_prod/N`) loop on `eventfd_signal()` of their own
//!   eventfd, so `ep_poll_callback()` (the read side on rwlock kernels)
//!   runs in the kthread;
//! * consumers (`ept_cons/N`) time each `vfs_poll()` of the epoll file
//!   (the ready-list scan: the write side), then reset the ready eventfds
//!   with a non-blocking read and sleep `consumer_sleep_us`;
//! * hogs (`ept_hog/N`) are busy for `hog_burst_ms` every
//!   `hog_period_ms`. A hog *probes* first: it is busy for `probe_us` and
//!   keeps the burst only if a consumer has been blocked in `vfs_poll()`
//!   since the probe began (a producer was caught inside the read side);
//!   otherwise it yields for a random moment and tries again, up to
//!   `hog_probes` times, and the last try is a full burst whatever it
//!   caught. This raises the rate at which a burst catches a reader from
//!   "whatever fraction of its time the producer spends in the lock" to
//!   nearly every period on rwlock kernels; on spinlock kernels the
//!   blocked consumer boosts the producer, which releases the lock before
//!   the probe ends, so bursts stay unconditional and harmless.

use crate::config::{Config, Place};
use crate::evfd::{EpollFile, EvFd, EPOLLIN};
use crate::kthread::{KThread, StopToken};
use crate::signature::{self, Burst, Call, Windows};
use crate::stats::Lat;
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        atomic::{ordering::Acquire, ordering::Relaxed, ordering::Release, Atomic},
        completion::Completion,
        Arc, CondVar, Mutex,
    },
    time::{Instant, Monotonic},
};

/// Most consumers per run (the `consumers` parameter's range).
pub(crate) const MAX_CONSUMERS: usize = 8;
/// A long call must end this soon after its burst ended to be the signature.
const END_WINDOW_NS: i64 = 40_000_000;
/// A signature call may start this long before the hog read its clock.
const BEFORE_WINDOW_NS: i64 = 2_000_000;
/// Slack on top of the probe length for the start of a signature call.
const START_SLACK_NS: i64 = 5_000_000;
/// Rejected long calls printed per consumer (`# outlier` lines).
const MAX_OUTLIERS_SHOWN: u64 = 3;

/// Per-thread statistics, printed as `# thread ...` lines at the end.
pub(crate) struct Tally {
    pub(crate) name: &'static str,
    pub(crate) index: usize,
    pub(crate) fields: [(&'static str, u64); 3],
}

/// What the consumers and workers hand back at the end of a run.
pub(crate) struct Results {
    pub(crate) lat: KVec<Lat>,
    pub(crate) tallies: KVec<Tally>,
    pub(crate) round_done: bool,
}

/// State shared by every thread of a run.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) ep: EpollFile,
    pub(crate) evs: KVec<EvFd>,
    t0: Instant<Monotonic>,
    /// Start gate: workers wait for it, so they all start together.
    #[pin]
    go: Completion,
    /// The gate was opened.
    gate_open: Atomic<bool>,
    /// Set before the gate opens when the run will not start.
    aborted: Atomic<bool>,
    #[pin]
    pub(crate) results: Mutex<Results>,
    /// Signalled by the throughput consumer when a round is drained.
    #[pin]
    pub(crate) round_cv: CondVar,
    /// Workers leave their loops (end of the run).
    pub(crate) stop_work: Atomic<bool>,
    /// Hogs stop spinning (hang declared with `stall_rescue`).
    pub(crate) rescue: Atomic<bool>,
    /// Workers still inside their loops.
    pub(crate) active: Atomic<i64>,
    /// Worker spawns so far (fault injection).
    spawned: Atomic<u32>,
    pub(crate) polls: Atomic<u64>,
    pub(crate) events: Atomic<u64>,
    pub(crate) consumed: Atomic<u64>,
    /// Full bursts completed, and those that had caught a blocked consumer.
    pub(crate) bursts: Atomic<u64>,
    pub(crate) caught: Atomic<u64>,
    /// Probes that caught nothing.
    pub(crate) probes: Atomic<u64>,
    pub(crate) ticks: Atomic<u64>,
    /// Time last seen by the soft timer callback (stall, soak).
    pub(crate) tick_ns: Atomic<i64>,
    burst_start_ns: Atomic<i64>,
    burst_end_ns: Atomic<i64>,
    /// Start of the `vfs_poll()` in progress in each consumer, or 0.
    poll_start_ns: [Atomic<i64>; MAX_CONSUMERS],
    pub(crate) lat_max_ns: Atomic<i64>,
    pub(crate) signature: Atomic<u64>,
    pub(crate) rejected: Atomic<u64>,
}

impl Shared {
    pub(crate) fn new(cfg: Config, ep: EpollFile, evs: KVec<EvFd>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cfg,
            ep,
            evs,
            t0: Instant::now(),
            go <- Completion::new(),
            gate_open: Atomic::new(false),
            aborted: Atomic::new(false),
            results <- new_mutex!(Results {
                lat: KVec::new(),
                tallies: KVec::new(),
                round_done: false
            }),
            round_cv <- new_condvar!(),
            stop_work: Atomic::new(false),
            rescue: Atomic::new(false),
            active: Atomic::new(0),
            spawned: Atomic::new(0),
            polls: Atomic::new(0),
            events: Atomic::new(0),
            consumed: Atomic::new(0),
            bursts: Atomic::new(0),
            caught: Atomic::new(0),
            probes: Atomic::new(0),
            ticks: Atomic::new(0),
            tick_ns: Atomic::new(0),
            burst_start_ns: Atomic::new(0),
            burst_end_ns: Atomic::new(0),
            poll_start_ns: [const { Atomic::new(0) }; MAX_CONSUMERS],
            lat_max_ns: Atomic::new(0),
            signature: Atomic::new(0),
            rejected: Atomic::new(0),
        })
    }

    /// Nanoseconds since the run's state was created (`CLOCK_MONOTONIC`).
    pub(crate) fn now(&self) -> i64 {
        self.t0.elapsed().as_nanos()
    }

    /// Opens the start gate. With `abort`, workers that have not passed it
    /// yet leave at once (a run that never started).
    pub(crate) fn open_gate(&self, abort: bool) {
        if !self.gate_open.xchg(true, Relaxed) {
            self.aborted.store(abort, Release);
            self.go.complete_all();
        }
    }

    /// Waits for the gate; false if the run was aborted before it started.
    pub(crate) fn wait_start(&self) -> bool {
        self.go.wait_for_completion();
        !self.aborted.load(Acquire)
    }

    /// Whether workers should keep going.
    pub(crate) fn running(&self, t: &StopToken) -> bool {
        !t.should_stop() && !self.stop_work.load(Relaxed)
    }

    /// How long the oldest consumer still inside `vfs_poll()` has been
    /// there (ns), or 0.
    pub(crate) fn blocked_ns(&self) -> i64 {
        let now = self.now();
        self.poll_start_ns
            .iter()
            .map(|p| p.load(Relaxed))
            .filter(|&p| p != 0)
            .map(|p| now - p)
            .max()
            .unwrap_or(0)
    }

    /// Whether a consumer entered `vfs_poll()` at or after `since` and has
    /// been blocked there for at least `min` ns.
    fn consumer_blocked_since(&self, since: i64, min: i64) -> bool {
        let now = self.now();
        self.poll_start_ns
            .iter()
            .map(|p| p.load(Relaxed))
            .any(|p| p != 0 && p >= since && now - p >= min)
    }

    fn last_burst(&self) -> Option<Burst> {
        let start = self.burst_start_ns.load(Acquire);
        let end = self.burst_end_ns.load(Acquire);
        (start != 0).then_some(Burst { start, end })
    }

    fn windows(&self) -> Windows {
        let c = &self.cfg;
        Windows {
            threshold: c.threshold_ns,
            start: if c.hog_probes > 0 {
                c.probe_ns + START_SLACK_NS
            } else {
                END_WINDOW_NS
            },
            before: BEFORE_WINDOW_NS,
            end: END_WINDOW_NS,
        }
    }

    /// One timed `vfs_poll()` of the epoll file by consumer `idx`; resets
    /// the ready eventfds `first..first + n`. Returns (start, end).
    pub(crate) fn poll_once(&self, idx: usize, first: usize, n: usize) -> (i64, i64) {
        let slot = self.poll_start_ns.get(idx);
        let t0 = self.now();
        if let Some(s) = slot {
            s.store(t0.max(1), Relaxed);
        }
        let mask = self.ep.poll();
        let t1 = self.now();
        if let Some(s) = slot {
            s.store(0, Relaxed);
        }
        if mask & EPOLLIN != 0 {
            let got: u64 = self.evs.iter().skip(first).take(n).map(EvFd::drain).sum();
            self.consumed.add(got, Relaxed);
        }
        self.polls.add(1, Relaxed);
        let dt = t1 - t0;
        let mut cur = self.lat_max_ns.load(Relaxed);
        while dt > cur {
            match self.lat_max_ns.cmpxchg(cur, dt, Relaxed) {
                Ok(_) => {
                    // Every new worst call (under the threshold too, so
                    // that a run without an inversion still shows its
                    // worst wait and any PI boost; docs/trace.md).
                    if self.cfg.trace {
                        crate::trace::freeze_worst(dt);
                    }
                    break;
                }
                Err(v) => cur = v,
            }
        }
        (t0, t1)
    }

    /// Drains every eventfd (between throughput rounds).
    pub(crate) fn drain_all(&self) {
        for ev in self.evs.iter() {
            ev.drain();
        }
    }

    /// Prints a rejected long call with its position relative to the last
    /// full burst, so a reader can see why it is not the signature.
    fn show_outlier(&self, start: i64, end: i64) {
        let b = self.last_burst().unwrap_or(Burst { start: 0, end: 0 });
        // A burst still going on has no end yet: -1.
        let end_off = if b.end == 0 { -1 } else { (end - b.end) / 1000 };
        pr_info!(
            "# outlier scenario={} dur_us={} start_after_burst_start_us={} end_after_burst_end_us={}\n",
            self.cfg.scenario.name,
            (end - start) / 1000,
            (start - b.start) / 1000,
            end_off
        );
    }

    fn tally(&self, t: Tally) {
        let _ = self.results.lock().tallies.push(t, GFP_KERNEL);
    }
}

/// The CPU the calling thread runs on (for the statistics).
fn cpu() -> u64 {
    u64::from(kernel::cpu::CpuId::current().as_u32())
}

/// A placement's priority (0: SCHED_OTHER).
fn prio_of(p: &Place) -> u64 {
    u64::from(p.policy.prio())
}

/// Producer `idx`: signals eventfd `idx` until stopped or `count` events.
pub(crate) fn producer(s: &Shared, t: &StopToken, idx: usize, count: Option<u64>) {
    if !s.wait_start() {
        return;
    }
    let ev = &s.evs[idx];
    let mut n: u64 = 0;
    while s.running(t) {
        ev.signal();
        n += 1;
        if n % 256 == 0 {
            s.events.add(256, Relaxed);
        }
        if count == Some(n) {
            break;
        }
    }
    s.events.add(n % 256, Relaxed);
    s.tally(Tally {
        name: "ept_prod",
        index: idx,
        fields: [
            ("events", n),
            ("prio", prio_of(&s.cfg.producer)),
            ("cpu", cpu()),
        ],
    });
}

/// Consumer `idx`: timed polls of the epoll file over eventfds `0..n`.
pub(crate) fn consumer(s: &Shared, t: &StopToken, idx: usize, n: usize, mut lat: Lat) {
    if !s.wait_start() {
        return;
    }
    let w = s.windows();
    let (mut sig, mut rej) = (0u64, 0u64);
    while s.running(t) {
        let (start, end) = s.poll_once(idx, 0, n);
        lat.record((end - start).max(0) as u64);
        match signature::classify(start, end, s.last_burst(), &w) {
            Call::Short => {}
            Call::Signature => {
                sig += 1;
                s.signature.add(1, Relaxed);
            }
            Call::Rejected => {
                rej += 1;
                s.rejected.add(1, Relaxed);
                if rej <= MAX_OUTLIERS_SHOWN {
                    s.show_outlier(start, end);
                }
            }
        }
        if s.cfg.consumer_sleep_us > 0 {
            t.sleep_ns(s.cfg.consumer_sleep_us * 1000);
        }
    }
    let calls = lat.count;
    let _ = s.results.lock().lat.push(lat, GFP_KERNEL);
    s.tally(Tally {
        name: "ept_cons",
        index: idx,
        fields: [("calls", calls), ("signature", sig), ("rejected", rej)],
    });
}

/// A tiny xorshift generator for the hog's random gaps.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Hog `idx`: probes, then bursts, once per period. With `timer_driven`
/// (stall, soak) a burst ends only when the soft timer on `timer_cpu` has
/// run past the burst's end: if `ktimers/<timer_cpu>` is blocked, never.
pub(crate) fn hog(s: &Shared, t: &StopToken, idx: usize, timer_driven: bool) {
    if !s.wait_start() {
        return;
    }
    let c = &s.cfg;
    let (burst, period) = (c.hog_burst_ns, c.hog_period_ns);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (idx as u64 + 1));
    let (mut bursts, mut caught, mut probes) = (0u64, 0u64, 0u64);
    let mut next = s.now() + period - burst;
    let spin_until = |end: i64| {
        while s.now() < end && s.running(t) {
            core::hint::spin_loop();
        }
    };
    while s.running(t) {
        t.sleep_ns(next - s.now());
        if !s.running(t) {
            break;
        }
        let mut start = s.now();
        let mut got = false;
        for _ in 0..c.hog_probes {
            spin_until(start + c.probe_ns);
            if s.consumer_blocked_since(start, c.probe_ns / 2) {
                got = true;
                break;
            }
            probes += 1;
            s.probes.add(1, Relaxed);
            // A random gap, so the next probe lands elsewhere in the
            // producer's loop.
            t.sleep_ns(200_000 + rng.below(1_000_000) as i64);
            start = s.now();
        }
        if !s.running(t) {
            break;
        }
        s.burst_end_ns.store(0, Release);
        s.burst_start_ns.store(start.max(1), Release);
        if timer_driven {
            while s.tick_ns.load(Relaxed) < start + burst
                && !t.should_stop()
                && !s.rescue.load(Relaxed)
            {
                core::hint::spin_loop();
            }
        } else {
            // A burst that outlasts the run ends with it (the drain).
            spin_until(start + burst);
        }
        s.burst_end_ns.store(s.now(), Release);
        bursts += 1;
        s.bursts.add(1, Relaxed);
        if got {
            caught += 1;
            s.caught.add(1, Relaxed);
        }
        next += period;
        let now = s.now();
        if next < now {
            next = now + period - burst;
        }
    }
    s.tally(Tally {
        name: "ept_hog",
        index: idx,
        fields: [("bursts", bursts), ("caught", caught), ("probes", probes)],
    });
}

/// Threads of one run, in the order they must be stopped: hogs first
/// (which breaks a stall cycle), then the rest.
pub(crate) struct Workers {
    shared: Arc<Shared>,
    pub(crate) hogs: KVec<KThread>,
    pub(crate) others: KVec<KThread>,
    pub(crate) producers: KVec<KThread>,
    pub(crate) consumers: KVec<KThread>,
}

impl Workers {
    pub(crate) fn new(s: &Arc<Shared>) -> Self {
        Self {
            shared: s.clone(),
            hogs: KVec::new(),
            others: KVec::new(),
            producers: KVec::new(),
            consumers: KVec::new(),
        }
    }

    /// Starts one worker kthread, counted in `active` while it runs. The
    /// `fail_spawn`-th spawn of a run fails with `ENOMEM` (fault injection).
    pub(crate) fn spawn<F>(
        &mut self,
        kind: Kind,
        name: core::fmt::Arguments<'_>,
        place: Place,
        f: F,
    ) -> Result
    where
        F: FnOnce(&StopToken) + Send + 'static,
    {
        let s = &self.shared;
        let n = s.spawned.fetch_add(1, Relaxed) + 1;
        if n == s.cfg.fail_spawn {
            pr_info!("# fail_spawn: worker spawn {n} fails (fault injection)\n");
            return Err(ENOMEM);
        }
        s.active.add(1, Relaxed);
        let s2 = s.clone();
        let body = move |t: &StopToken| {
            f(t);
            s2.active.add(-1, Relaxed);
        };
        let th = KThread::spawn(name, place, body).inspect_err(|_| s.active.add(-1, Relaxed))?;
        let v = match kind {
            Kind::Hog => &mut self.hogs,
            Kind::Producer => &mut self.producers,
            Kind::Consumer => &mut self.consumers,
            Kind::Other => &mut self.others,
        };
        v.push(th, GFP_KERNEL)?;
        Ok(())
    }

    /// Prints every worker's state and stack (a hang report).
    pub(crate) fn show(&self) {
        for v in [&self.consumers, &self.producers, &self.hogs, &self.others] {
            for th in v.iter() {
                th.show();
            }
        }
    }
}

/// Which list a worker goes to (the stop order).
pub(crate) enum Kind {
    Hog,
    Producer,
    Consumer,
    Other,
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Open the gate first: a worker still waiting for it sleeps
        // uninterruptibly and would never see kthread_stop() (a failed
        // spawn, or rmmod before the run started).
        self.shared.open_gate(true);
        self.shared.stop_work.store(true, Relaxed);
        self.hogs.clear();
        self.others.clear();
        self.producers.clear();
        self.consumers.clear();
    }
}

/// Spawns consumers, producers and hogs of a timed run; `nev` is the
/// number of eventfds the consumers poll and drain.
pub(crate) fn spawn_timed(
    w: &mut Workers,
    s: &Arc<Shared>,
    nev: usize,
    timer_driven: bool,
) -> Result {
    let c = s.cfg;
    for i in 0..c.consumers {
        let lat = Lat::new(crate::stats::MAX_SAMPLES)?;
        let s2 = s.clone();
        w.spawn(Kind::Consumer, fmt!("ept_cons/{i}"), c.consumer, move |t| {
            consumer(&s2, t, i, nev, lat)
        })?;
    }
    for i in 0..c.producers {
        let s2 = s.clone();
        w.spawn(Kind::Producer, fmt!("ept_prod/{i}"), c.producer, move |t| {
            producer(&s2, t, i, None)
        })?;
    }
    for i in 0..c.hogs {
        let s2 = s.clone();
        w.spawn(Kind::Hog, fmt!("ept_hog/{i}"), c.hog, move |t| {
            hog(&s2, t, i, timer_driven)
        })?;
    }
    Ok(())
}
