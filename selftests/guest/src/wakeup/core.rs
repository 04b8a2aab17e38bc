//! The state one pattern run shares between its threads, the watchdog and
//! the report: counters, the waiters (who is asleep where), the delivery
//! obligations of the lost-wake-up oracle, and the first detection.

use super::out;
use super::source::Source;
use super::sys;
use super::Opts;
use ept_guest::now_ns;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// What a waiter blocks in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitKind {
    EpollWait,
    Poll,
}

/// A thread that blocks in epoll_wait() or poll(). It flags itself before
/// and after each blocking call; the watchdog confirms "asleep" with the
/// kernel's task state.
pub struct Waiter {
    pub name: String,
    pub kind: WaitKind,
    /// The fd it waits on (an epoll fd, or the polled fd).
    pub fd: AtomicI32,
    pub tid: AtomicI32,
    pub in_wait: AtomicBool,
    /// Incremented on each return from the blocking call.
    pub wakes: AtomicU64,
}

impl Waiter {
    pub fn new(name: &str, kind: WaitKind) -> Arc<Waiter> {
        Arc::new(Waiter {
            name: name.to_string(),
            kind,
            fd: AtomicI32::new(-1),
            tid: AtomicI32::new(0),
            in_wait: AtomicBool::new(false),
            wakes: AtomicU64::new(0),
        })
    }

    /// Called by the waiter thread itself once it runs.
    pub fn bind(&self) {
        self.tid.store(sys::gettid(), SeqCst);
    }

    pub fn enter(&self, fd: i32) {
        self.fd.store(fd, SeqCst);
        self.in_wait.store(true, SeqCst);
    }

    pub fn leave(&self) {
        self.in_wait.store(false, SeqCst);
        self.wakes.fetch_add(1, SeqCst);
    }

    /// Task state letter from /proc (R, S, D, ...), '?' if unreadable.
    pub fn state(&self) -> char {
        let tid = self.tid.load(SeqCst);
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|s| {
                // "tid (comm) S ..." -- comm may contain spaces/parens.
                let i = s.rfind(')')?;
                s[i + 1..].trim_start().chars().next()
            })
            .unwrap_or('?')
    }

    /// In its blocking call and sleeping interruptibly there (not running,
    /// not preempted, not blocked on a mutex, which would be 'D' on RT).
    pub fn asleep(&self) -> bool {
        self.in_wait.load(SeqCst) && self.state() == 'S'
    }

    /// The waiter's kernel stack (needs CONFIG_STACKTRACE and root), or its
    /// wchan.
    pub fn stack(&self) -> String {
        let tid = self.tid.load(SeqCst);
        if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stack")) {
            let frames: Vec<&str> = s
                .lines()
                .map(|l| l.split_whitespace().nth(1).unwrap_or(l))
                .collect();
            if !frames.is_empty() {
                return frames.join("<-");
            }
        }
        match std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan")) {
            Ok(w) if !w.trim().is_empty() => format!("wchan={}", w.trim()),
            _ => "unavailable".to_string(),
        }
    }
}

/// One delivery the kernel owes: when `due()` holds, at least one member of
/// `group` must return from its wait (and consume, which changes
/// `progress()`). If the whole group sleeps through `bound_ms` while it stays
/// due and nothing is consumed, that is a lost wake-up.
pub struct Obligation {
    pub label: String,
    pub source: Option<Arc<Source>>,
    pub group: Vec<Arc<Waiter>>,
    pub due: Box<dyn Fn() -> bool + Send + Sync>,
    pub progress: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Watchdog bookkeeping: since when (ns) the group sleeps while due,
    /// and the progress value then.
    pub since: Mutex<Option<(i64, u64)>>,
    /// Recovery after a detection (e.g. produce again); the watchdog also
    /// interrupts the group with SIGUSR1.
    pub recover: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Obligation {
    /// The usual one: `src` has a due unit and the kernel says it is
    /// readable; progress = units consumed.
    pub fn readable(label: &str, src: &Arc<Source>, group: &[Arc<Waiter>]) -> Obligation {
        let s1 = src.clone();
        let s2 = src.clone();
        Obligation {
            label: label.to_string(),
            source: Some(src.clone()),
            group: group.to_vec(),
            due: Box::new(move || s1.due() && s1.kernel_readable()),
            progress: Box::new(move || s2.consumed.load(SeqCst)),
            since: Mutex::new(None),
            recover: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    FalseNegative,
    LostWakeup,
}

impl Bug {
    pub fn kind(self) -> &'static str {
        match self {
            Bug::FalseNegative => "false negative",
            Bug::LostWakeup => "lost wake-up",
        }
    }
}

/// A closure run after a pattern's threads stopped.
pub type Finalizer = Box<dyn FnOnce(&Ctx) + Send>;

pub struct Ctx {
    pub pattern: &'static str,
    pub opts: Arc<Opts>,
    pub t0: i64,
    pub deadline: i64,
    pub stop: AtomicBool,
    pub ops: AtomicU64,
    pub events: AtomicU64,
    pub lost: AtomicU64,
    pub fneg: AtomicU64,
    pub first_ns: AtomicI64,
    pub detail: Mutex<Option<(Bug, String)>>,
    pub error: Mutex<Option<String>>,
    pub waiters: Mutex<Vec<Arc<Waiter>>>,
    pub obligations: Mutex<Vec<Arc<Obligation>>>,
    /// The pattern's sources (for the latency metrics).
    pub sources: Mutex<Vec<Arc<Source>>>,
    /// Thread ids of every worker (to interrupt them at the end).
    pub tids: Mutex<Vec<i32>>,
    /// Extra `key=value` metrics of this pattern.
    pub extra: Mutex<Vec<(String, String)>>,
    /// Longest timeout overrun of a timed wait that returned 0 (ns).
    pub overrun_max: AtomicI64,
    /// Run by the main thread after every worker stopped (metrics).
    pub finalizers: Mutex<Vec<Finalizer>>,
}

impl Ctx {
    pub fn new(pattern: &'static str, opts: Arc<Opts>, budget_ns: i64) -> Arc<Ctx> {
        let t0 = now_ns();
        Arc::new(Ctx {
            pattern,
            opts,
            t0,
            deadline: t0 + budget_ns,
            stop: AtomicBool::new(false),
            ops: AtomicU64::new(0),
            events: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            fneg: AtomicU64::new(0),
            first_ns: AtomicI64::new(-1),
            detail: Mutex::new(None),
            error: Mutex::new(None),
            waiters: Mutex::new(Vec::new()),
            obligations: Mutex::new(Vec::new()),
            sources: Mutex::new(Vec::new()),
            tids: Mutex::new(Vec::new()),
            extra: Mutex::new(Vec::new()),
            overrun_max: AtomicI64::new(0),
            finalizers: Mutex::new(Vec::new()),
        })
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(SeqCst)
    }

    pub fn op(&self) {
        self.ops.fetch_add(1, SeqCst);
    }

    pub fn got(&self, n: u64) {
        self.events.fetch_add(n, SeqCst);
    }

    pub fn waiter(&self, name: &str, kind: WaitKind) -> Arc<Waiter> {
        let w = Waiter::new(name, kind);
        self.waiters.lock().unwrap().push(w.clone());
        w
    }

    pub fn source(&self, s: Source) -> Arc<Source> {
        let s = Arc::new(s);
        self.sources.lock().unwrap().push(s.clone());
        s
    }

    pub fn oblige(&self, o: Obligation) {
        self.obligations.lock().unwrap().push(Arc::new(o));
    }

    pub fn metric(&self, k: &str, v: impl ToString) {
        self.extra
            .lock()
            .unwrap()
            .push((k.to_string(), v.to_string()));
    }

    /// A setup or runtime failure of the harness (not a kernel bug).
    pub fn fail(&self, what: String) {
        let mut e = self.error.lock().unwrap();
        if e.is_none() {
            out::line(&format!("# error pattern={} {}", self.pattern, what));
            *e = Some(what);
        }
        self.stop.store(true, SeqCst);
    }

    /// Records a detection. The first one is printed with its details; the
    /// pattern stops once `max` of this kind were seen.
    pub fn detect(&self, bug: Bug, detail: String, diag: &[String]) {
        let (n, max) = match bug {
            Bug::FalseNegative => (self.fneg.fetch_add(1, SeqCst) + 1, self.opts.max_fn),
            Bug::LostWakeup => (self.lost.fetch_add(1, SeqCst) + 1, self.opts.max_lost),
        };
        {
            let mut d = self.detail.lock().unwrap();
            if d.is_none() {
                let t = now_ns() - self.t0;
                self.first_ns.store(t, SeqCst);
                out::line(&format!(
                    "# detected pattern={} kind=\"{}\" t_ms={} {}",
                    self.pattern,
                    bug.kind(),
                    t / 1_000_000,
                    detail
                ));
                for l in diag {
                    out::line(&format!("#   {l}"));
                }
                *d = Some((bug, detail));
            }
        }
        if max > 0 && n >= max {
            self.stop.store(true, SeqCst);
        }
    }

    /// Adds a closure run once the pattern's threads are gone.
    pub fn finally(&self, f: impl FnOnce(&Ctx) + Send + 'static) {
        self.finalizers.lock().unwrap().push(Box::new(f));
    }

    /// Registers the calling worker thread for the final interruption.
    pub fn register_thread(&self) {
        self.tids.lock().unwrap().push(sys::gettid());
    }

    /// Records the overrun of a timed wait that returned no event.
    pub fn overrun(&self, start: i64, timeout_ms: i32) {
        let o = now_ns() - start - timeout_ms as i64 * 1_000_000;
        self.overrun_max.fetch_max(o, SeqCst);
    }
}

/// Keeps a busy SCHED_FIFO loop from monopolising its CPU: after `busy_ns`
/// of work it sleeps `idle_ns` (an hrtimer sleep), so that lower-priority
/// threads of the same CPU (rcuc, ktimers, kworkers, an exiting thread of
/// ours holding mmap_lock) still run. Without it a FIFO busy loop starves
/// them: RCU stall reports, or a process frozen on its own mmap_lock.
pub struct Pace {
    busy_ns: i64,
    idle_ns: i64,
    since: i64,
}

impl Pace {
    pub fn new() -> Pace {
        Pace {
            busy_ns: 2_000_000,
            idle_ns: 100_000,
            since: now_ns(),
        }
    }

    pub fn tick(&mut self) {
        let now = now_ns();
        if now - self.since >= self.busy_ns {
            sys::sleep_until(now + self.idle_ns);
            self.since = now_ns();
        }
    }
}
