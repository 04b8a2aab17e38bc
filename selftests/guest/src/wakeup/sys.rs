//! Thin, errno-checked wrappers of the system calls ept-wakeup uses. Every
//! fd is created O_NONBLOCK | O_CLOEXEC; the only blocking calls are the
//! waits under test (epoll_wait, poll) and sleeps, all of which a SIGUSR1
//! interrupts (the handler is installed without SA_RESTART).

use ept_guest::check;
use std::io;
use std::os::fd::RawFd;

pub type Fd = RawFd;

fn cvt(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    check(r, what)
}

fn cvt_isize(r: isize, what: &str) -> io::Result<usize> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r as usize)
    }
}

/// The errno of an error made by this module (or of the last OS error).
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or_else(|| {
        // Errors rewrapped with a message lose raw_os_error: recover the
        // kind we care about.
        match e.kind() {
            io::ErrorKind::WouldBlock => libc::EAGAIN,
            io::ErrorKind::Interrupted => libc::EINTR,
            _ => 0,
        }
    })
}

pub fn is_eagain(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || errno_of(e) == libc::EAGAIN
}

pub fn is_eintr(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted || errno_of(e) == libc::EINTR
}

pub fn epoll_create() -> io::Result<Fd> {
    // SAFETY: plain syscall.
    cvt(
        unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
        "epoll_create1",
    )
}

pub fn epoll_ctl(ep: Fd, op: i32, fd: Fd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event (ignored for DEL).
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }, "epoll_ctl").map(|_| ())
}

/// epoll_wait(); Ok(n) events in `buf[..n]` as (events, data).
pub fn epoll_wait(ep: Fd, buf: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` events.
    let r = unsafe { libc::epoll_wait(ep, buf.as_mut_ptr(), buf.len() as i32, timeout_ms) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// (events, data) of one returned epoll_event (the struct is packed on x86).
pub fn ev_of(e: &libc::epoll_event) -> (u32, u64) {
    let ev = e.events;
    let d = e.u64;
    (ev, d)
}

pub fn new_events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n.max(1)]
}

/// poll() one fd; Ok(revents) (0 on timeout).
pub fn poll1(fd: Fd, events: i16, timeout_ms: i32) -> io::Result<i16> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else if r == 0 {
        Ok(0)
    } else {
        Ok(p.revents)
    }
}

pub fn eventfd(init: u32) -> io::Result<Fd> {
    // SAFETY: plain syscall.
    cvt(
        unsafe { libc::eventfd(init, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
        "eventfd",
    )
}

/// (read end, write end), both non-blocking.
pub fn pipe() -> io::Result<(Fd, Fd)> {
    let mut p = [0; 2];
    // SAFETY: `p` has room for two fds.
    cvt(
        unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
        "pipe2",
    )?;
    Ok((p[0], p[1]))
}

/// An AF_UNIX stream socketpair, both ends non-blocking.
pub fn socketpair() -> io::Result<(Fd, Fd)> {
    let mut p = [0; 2];
    // SAFETY: `p` has room for two fds.
    cvt(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                p.as_mut_ptr(),
            )
        },
        "socketpair",
    )?;
    Ok((p[0], p[1]))
}

pub fn set_sndbuf(fd: Fd, bytes: i32) -> io::Result<()> {
    // SAFETY: valid option pointer and length.
    cvt(
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                &bytes as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as u32,
            )
        },
        "setsockopt SO_SNDBUF",
    )
    .map(|_| ())
}

pub fn timerfd() -> io::Result<Fd> {
    // SAFETY: plain syscall.
    cvt(
        unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        },
        "timerfd_create",
    )
}

/// Arms `fd` to expire once, `ns` from now (ns >= 1).
pub fn timerfd_arm(fd: Fd, ns: i64) -> io::Result<()> {
    let ns = ns.max(1);
    let its = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (ns / 1_000_000_000) as _,
            tv_nsec: (ns % 1_000_000_000) as _,
        },
    };
    // SAFETY: valid itimerspec; old value not wanted.
    cvt(
        unsafe { libc::timerfd_settime(fd, 0, &its, std::ptr::null_mut()) },
        "timerfd_settime",
    )
    .map(|_| ())
}

pub fn write_u64(fd: Fd, v: u64) -> io::Result<()> {
    // SAFETY: 8 valid bytes.
    let r = unsafe { libc::write(fd, &v as *const u64 as *const libc::c_void, 8) };
    cvt_isize(r, "write").map(|_| ())
}

pub fn read_u64(fd: Fd) -> io::Result<u64> {
    let mut v = 0u64;
    // SAFETY: 8 writable bytes.
    let r = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    cvt_isize(r, "read").map(|_| v)
}

pub fn write_bytes(fd: Fd, b: &[u8]) -> io::Result<usize> {
    // SAFETY: `b` is valid for its length.
    let r = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) };
    cvt_isize(r, "write")
}

pub fn read_bytes(fd: Fd, b: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `b` is writable for its length.
    let r = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
    cvt_isize(r, "read")
}

pub fn close(fd: Fd) {
    // SAFETY: closing an fd we own.
    unsafe { libc::close(fd) };
}

pub fn dup(fd: Fd) -> io::Result<Fd> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }, "dup")
}

pub fn gettid() -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

pub fn getpid() -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::getpid() }
}

/// Sends `sig` to thread `tid` of this process.
pub fn tgkill(tid: i32, sig: i32) {
    if tid > 0 {
        // SAFETY: plain syscall.
        unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, sig) };
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// SIGUSR1 interrupts blocking calls (no SA_RESTART) and does nothing else.
pub fn install_sigusr1() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        cvt(
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()),
            "sigaction",
        )?;
    }
    Ok(())
}

/// Sleeps until CLOCK_MONOTONIC reaches `t_ns` (hrtimer; returns early on a
/// signal).
pub fn sleep_until(t_ns: i64) {
    let ts = libc::timespec {
        tv_sec: (t_ns / 1_000_000_000) as _,
        tv_nsec: (t_ns % 1_000_000_000) as _,
    };
    // SAFETY: valid timespec; no remainder with TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Busy-waits until CLOCK_MONOTONIC reaches `t_ns`.
pub fn spin_until(t_ns: i64) {
    while ept_guest::now_ns() < t_ns {
        std::hint::spin_loop();
    }
}

pub fn sched_yield() {
    // SAFETY: plain syscall.
    unsafe { libc::sched_yield() };
}

pub fn online_cpus() -> usize {
    // SAFETY: plain libc call.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}

/// Raises RLIMIT_RTPRIO / memlock are not needed (root); lock memory so
/// page faults do not disturb the timing of FIFO threads.
pub fn mlockall() {
    // SAFETY: plain syscall; failure is harmless.
    unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
}
