//! Event sources (eventfd, pipe, AF_UNIX socket, timerfd) with the counters
//! the oracles need.
//!
//! A source has at most one unit "in flight": a producer makes it readable
//! (one eventfd write, one byte into a pipe or socket, one timerfd expiry)
//! only when the previous unit was consumed. That keeps the delivery
//! latency exact (time of the write to the consumer's read) and the
//! "readable throughout a call" test of the false-negative oracle simple.

use super::sys::{self, Fd};
use ept_guest::now_ns;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Eventfd,
    Pipe,
    Socket,
    Timerfd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Eventfd => "eventfd",
            Kind::Pipe => "pipe",
            Kind::Socket => "socket",
            Kind::Timerfd => "timerfd",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "eventfd" => Some(Kind::Eventfd),
            "pipe" => Some(Kind::Pipe),
            "socket" => Some(Kind::Socket),
            "timerfd" => Some(Kind::Timerfd),
            _ => None,
        }
    }

    pub const ALL: [Kind; 4] = [Kind::Eventfd, Kind::Pipe, Kind::Socket, Kind::Timerfd];
}

pub struct Source {
    pub kind: Kind,
    pub name: String,
    /// The fd watched by epoll and read by consumers.
    pub rfd: Fd,
    /// The fd producers write to (== rfd for eventfd and timerfd).
    pub wfd: Fd,
    /// A unit was produced and not yet consumed.
    pub in_flight: AtomicBool,
    /// The producer's write (or timer arming) has returned: its wake-ups
    /// were issued. A unit is only owed once this is set.
    pub written: AtomicBool,
    /// When the producer started making the current unit (before the
    /// write; for a timerfd: its expiry time).
    pub t_write: AtomicI64,
    /// Completed writes (timerfd: expiries that are due by t_write).
    pub writes: AtomicU64,
    /// Drain attempts started / finished, units consumed.
    pub reads_started: AtomicU64,
    pub reads_done: AtomicU64,
    pub consumed: AtomicU64,
    /// Longest write-to-read latency seen (ns).
    pub lat_max: AtomicI64,
    pub lat_sum: AtomicI64,
    pub lat_n: AtomicU64,
}

/// A snapshot taken before a non-blocking or timed wait, to tell afterwards
/// whether the source was readable for the whole call.
#[derive(Clone, Copy)]
pub struct Snap {
    started: u64,
    ok: bool,
}

impl Source {
    pub fn new(kind: Kind, name: &str) -> io::Result<Source> {
        let (rfd, wfd) = match kind {
            Kind::Eventfd => {
                let f = sys::eventfd(0)?;
                (f, f)
            }
            Kind::Pipe => sys::pipe()?,
            Kind::Socket => sys::socketpair()?,
            Kind::Timerfd => {
                let f = sys::timerfd()?;
                (f, f)
            }
        };
        Ok(Source {
            kind,
            name: name.to_string(),
            rfd,
            wfd,
            in_flight: AtomicBool::new(false),
            written: AtomicBool::new(false),
            t_write: AtomicI64::new(0),
            writes: AtomicU64::new(0),
            reads_started: AtomicU64::new(0),
            reads_done: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            lat_max: AtomicI64::new(0),
            lat_sum: AtomicI64::new(0),
            lat_n: AtomicU64::new(0),
        })
    }

    /// Makes the source readable for good (never drained): the sentinel of
    /// the false-negative oracle.
    pub fn make_sentinel(&self) -> io::Result<()> {
        match self.kind {
            Kind::Eventfd => sys::write_u64(self.wfd, 1)?,
            Kind::Pipe | Kind::Socket => {
                sys::write_bytes(self.wfd, b"s")?;
            }
            Kind::Timerfd => {
                sys::timerfd_arm(self.wfd, 1)?;
                // Wait until it has expired so it is readable from now on.
                let end = now_ns() + 1_000_000_000;
                while sys::poll1(self.rfd, libc::POLLIN, 10)? == 0 && now_ns() < end {}
            }
        }
        self.in_flight.store(true, SeqCst);
        self.written.store(true, SeqCst);
        self.writes.fetch_add(1, SeqCst);
        Ok(())
    }

    /// Produces one unit if none is in flight. Returns whether it did.
    /// `timer_ns`: expiry delay for a timerfd.
    pub fn produce(&self, timer_ns: i64) -> io::Result<bool> {
        if self
            .in_flight
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            return Ok(false);
        }
        let now = now_ns();
        match self.kind {
            Kind::Eventfd => {
                self.t_write.store(now, SeqCst);
                sys::write_u64(self.wfd, 1)?;
            }
            Kind::Pipe | Kind::Socket => {
                self.t_write.store(now, SeqCst);
                sys::write_bytes(self.wfd, b"x")?;
            }
            Kind::Timerfd => {
                self.t_write.store(now + timer_ns.max(1), SeqCst);
                sys::timerfd_arm(self.wfd, timer_ns)?;
            }
        }
        self.written.store(true, SeqCst);
        self.writes.fetch_add(1, SeqCst);
        Ok(true)
    }

    /// Reads everything (until EAGAIN). Returns the units consumed.
    pub fn drain(&self) -> u64 {
        self.reads_started.fetch_add(1, SeqCst);
        let mut n = 0u64;
        match self.kind {
            Kind::Eventfd | Kind::Timerfd => {
                while let Ok(v) = sys::read_u64(self.rfd) {
                    n += v;
                }
            }
            Kind::Pipe | Kind::Socket => {
                let mut b = [0u8; 256];
                while let Ok(k) = sys::read_bytes(self.rfd, &mut b) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
            }
        }
        if n > 0 {
            let lat = now_ns() - self.t_write.load(SeqCst);
            self.consumed.fetch_add(n, SeqCst);
            if lat >= 0 {
                self.lat_max.fetch_max(lat, SeqCst);
                self.lat_sum.fetch_add(lat, SeqCst);
                self.lat_n.fetch_add(1, SeqCst);
            }
            self.written.store(false, SeqCst);
            self.in_flight.store(false, SeqCst);
        }
        self.reads_done.fetch_add(1, SeqCst);
        n
    }

    /// The kernel's own answer: is rfd readable now?
    pub fn kernel_readable(&self) -> bool {
        matches!(sys::poll1(self.rfd, libc::POLLIN, 0), Ok(r) if r & libc::POLLIN != 0)
    }

    /// A unit is in flight and due: its write returned (so the kernel has
    /// issued the wake-ups), and a timer is past its expiry.
    pub fn due(&self) -> bool {
        self.in_flight.load(SeqCst)
            && self.written.load(SeqCst)
            && (self.kind != Kind::Timerfd || now_ns() >= self.t_write.load(SeqCst))
    }

    /// Before a non-blocking/timed wait: is a unit known to be readable now,
    /// with no drain in progress? (Never for a timerfd: its expiry time is
    /// the kernel's business.)
    pub fn snap(&self) -> Snap {
        let started = self.reads_started.load(SeqCst);
        let done = self.reads_done.load(SeqCst);
        let consumed = self.consumed.load(SeqCst);
        let writes = self.writes.load(SeqCst);
        Snap {
            started,
            ok: self.kind != Kind::Timerfd && started == done && writes > consumed,
        }
    }

    /// After the call: was the source readable throughout (no drain started
    /// since `s`, and a unit was readable at `s`)?
    pub fn readable_throughout(&self, s: &Snap) -> bool {
        s.ok && self.reads_started.load(SeqCst) == s.started
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        sys::close(self.rfd);
        if self.wfd != self.rfd {
            sys::close(self.wfd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_unit_in_flight_and_drain() {
        for k in [Kind::Eventfd, Kind::Pipe, Kind::Socket] {
            let s = Source::new(k, "t").unwrap();
            assert!(!s.due() && !s.kernel_readable());
            assert!(s.produce(0).unwrap());
            // A second unit waits for the first to be consumed.
            assert!(!s.produce(0).unwrap());
            assert!(s.due() && s.kernel_readable(), "{k:?}");
            assert_eq!(s.drain(), 1, "{k:?}");
            assert!(!s.due() && !s.kernel_readable());
            assert_eq!(s.consumed.load(SeqCst), 1);
            assert_eq!(s.lat_n.load(SeqCst), 1);
        }
    }

    #[test]
    fn readable_throughout_needs_no_drain_in_between() {
        let s = Source::new(Kind::Eventfd, "t").unwrap();
        // Nothing written: never "readable throughout".
        let a = s.snap();
        assert!(!s.readable_throughout(&a));
        s.produce(0).unwrap();
        let b = s.snap();
        assert!(s.readable_throughout(&b));
        // A drain that starts after the snapshot voids it.
        s.drain();
        assert!(!s.readable_throughout(&b));
    }

    #[test]
    fn timer_is_due_only_after_expiry_and_never_snapped() {
        let s = Source::new(Kind::Timerfd, "t").unwrap();
        s.produce(200_000_000).unwrap();
        assert!(!s.due());
        assert!(!s.snap().ok);
        s.make_sentinel().unwrap();
        assert!(s.kernel_readable());
    }
}
