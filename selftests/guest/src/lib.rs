//! Small helpers shared by the guest programs: errno-checked syscalls,
//! monotonic time, scheduling policy, CPU pinning.

use std::ffi::CString;
use std::io;

/// Returns `Err(last OS error)` when `r` is negative.
pub fn check(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Sleeps `ns` nanoseconds (restarting on EINTR).
pub fn sleep_ns(ns: i64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut req = ts;
    // SAFETY: valid timespec pointers.
    while unsafe { libc::nanosleep(&req, &mut rem) } != 0 {
        req = rem;
    }
}

/// Sets the calling thread to SCHED_FIFO `prio` (0: SCHED_OTHER).
pub fn set_fifo(prio: i32) -> io::Result<()> {
    // SAFETY: all-zero is a valid sched_param (musl has extra fields).
    let mut p: libc::sched_param = unsafe { std::mem::zeroed() };
    p.sched_priority = prio;
    let pol = if prio == 0 {
        libc::SCHED_OTHER
    } else {
        libc::SCHED_FIFO
    };
    // SAFETY: `p` is a valid sched_param; pid 0 is the calling thread.
    // (musl's sched_setscheduler() is a stub returning ENOSYS: use the
    // raw syscall.)
    check(
        unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                0,
                pol,
                &p as *const libc::sched_param,
            )
        } as libc::c_int,
        "sched_setscheduler",
    )
    .map(|_| ())
}

/// Pins the calling thread to `cpu`.
pub fn pin_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        check(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            "sched_setaffinity",
        )?;
    }
    Ok(())
}

/// fork + execv `argv`, returns the child's pid. The child inherits every
/// fd without FD_CLOEXEC.
pub fn spawn(argv: &[String]) -> io::Result<libc::pid_t> {
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()).expect("NUL in argument"))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: plain fork; the child only calls async-signal-safe execv/_exit.
    let pid = check(unsafe { libc::fork() }, "fork")?;
    if pid == 0 {
        // SAFETY: `ptrs` is a NULL-terminated array of valid C strings.
        unsafe {
            libc::execv(ptrs[0], ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Waits for `pid`; returns its exit status (128+signal if killed).
pub fn wait(pid: libc::pid_t) -> io::Result<i32> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    Ok(if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        128 + libc::WTERMSIG(st)
    })
}

/// Runs `argv` to completion; returns its exit status.
pub fn run(argv: &[&str]) -> io::Result<i32> {
    let v: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    wait(spawn(&v)?)
}
