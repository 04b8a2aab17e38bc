//! ept-kiszka: the userspace reproducer of report [2] (after Jan Kiszka's,
//! 2025-04-15), written for this project.
//!
//! A reader process watches a pipe (FIFO) and a timerfd firing every 50 us
//! with one epoll instance and loops in epoll_wait(); a writer process loops
//! writing one byte to the pipe inside a cgroup v2 with cpu.max "1000 2000".
//! On kernels that throttle CFS tasks inside the kernel (no "defer throttle
//! to user entry", e.g. 6.12) and still have the eventpoll rwlock, the
//! writer gets throttled inside ep_poll_callback() holding the read lock,
//! the reader blocks as a writer, ktimers blocks behind it and the bandwidth
//! timer never unthrottles the writer: the reader stops for good.
//!
//! A monitor (this process, SCHED_FIFO so that its hard-hrtimer sleeps keep
//! working) prints one progress line per second with the reader's
//! iterations per second, and a summary with the longest reader stall.
//!
//! usage: ept-kiszka [--duration SEC] [--pin CPU] [--timer-us US]
//!                   [--cpu-max "QUOTA PERIOD"] [--no-cgroup] [--prio P]
//! exit: 0 the reader was progressing at the end, 1 it was stalled
//! (longer than --stalled-ms, default 5000) at the end, 4 setup error.

use ept_guest::{check, now_ns, pin_cpu, set_fifo, sleep_ns};
use std::fs;
use std::io;
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const CG: &str = "/sys/fs/cgroup";
const CG_W: &str = "/sys/fs/cgroup/ept-writer";

struct Opts {
    duration: i64,
    pin: Option<usize>,
    timer_us: i64,
    cpu_max: String,
    cgroup: bool,
    prio: i32,
    stalled_ms: i64,
}

fn usage() -> ! {
    eprintln!("usage: ept-kiszka [--duration SEC] [--pin CPU] [--timer-us US] [--cpu-max \"Q P\"] [--no-cgroup] [--prio P] [--stalled-ms MS]");
    exit(4)
}

fn parse() -> Opts {
    let mut o = Opts {
        duration: 60,
        pin: None,
        timer_us: 50,
        cpu_max: "1000 2000".into(),
        cgroup: true,
        prio: 80,
        stalled_ms: 5000,
    };
    let mut a = std::env::args().skip(1);
    let num =
        |v: Option<String>| -> i64 { v.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()) };
    while let Some(x) = a.next() {
        match x.as_str() {
            "--duration" => o.duration = num(a.next()),
            "--pin" => o.pin = Some(num(a.next()) as usize),
            "--timer-us" => o.timer_us = num(a.next()),
            "--cpu-max" => o.cpu_max = a.next().unwrap_or_else(|| usage()),
            "--no-cgroup" => o.cgroup = false,
            "--prio" => o.prio = num(a.next()) as i32,
            "--stalled-ms" => o.stalled_ms = num(a.next()),
            _ => usage(),
        }
    }
    o
}

fn setup_cgroup(cpu_max: &str) -> io::Result<()> {
    if fs::metadata(format!("{CG}/cgroup.controllers")).is_err() {
        let _ = fs::create_dir_all(CG);
        // SAFETY: valid NUL-terminated strings.
        check(
            unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c"/sys/fs/cgroup".as_ptr(),
                    c"cgroup2".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            },
            "mount cgroup2",
        )?;
    }
    fs::write(format!("{CG}/cgroup.subtree_control"), "+cpu")
        .map_err(|e| io::Error::new(e.kind(), format!("enable +cpu: {e}")))?;
    let _ = fs::create_dir(CG_W);
    fs::write(format!("{CG_W}/cpu.max"), cpu_max)
        .map_err(|e| io::Error::new(e.kind(), format!("cpu.max: {e}")))?;
    Ok(())
}

/// Shared counters (MAP_SHARED, survive fork).
struct Shm {
    reader_iters: AtomicU64,
    writer_bytes: AtomicU64,
    timer_ticks: AtomicU64,
}

fn shm() -> &'static Shm {
    // SAFETY: anonymous shared mapping, zero-filled, large enough; atomics
    // of zero bytes are valid.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            eprintln!("ept-kiszka: mmap failed");
            exit(4);
        }
        &*(p as *const Shm)
    }
}

fn reader(s: &Shm, rfd: i32, timer_us: i64, pin: Option<usize>) -> ! {
    if let Some(c) = pin {
        let _ = pin_cpu(c);
    }
    let _ = set_fifo(0);
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        let ep = libc::epoll_create1(0);
        let tfd = libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK);
        let its = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: (timer_us * 1000) as _,
            },
            it_value: libc::timespec {
                tv_sec: 0,
                tv_nsec: (timer_us * 1000) as _,
            },
        };
        libc::timerfd_settime(tfd, 0, &its, std::ptr::null_mut());
        for fd in [rfd, tfd] {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
        }
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::epoll_wait(ep, evs.as_mut_ptr(), 4, -1);
            for e in evs.iter().take(n.max(0) as usize) {
                let fd = e.u64 as i32;
                let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if fd == tfd && r == 8 {
                    s.timer_ticks.fetch_add(1, Relaxed);
                }
            }
            s.reader_iters.fetch_add(1, Relaxed);
        }
    }
}

fn writer(s: &Shm, wfd: i32, cgroup: bool, pin: Option<usize>) -> ! {
    if cgroup {
        // SAFETY: plain syscall.
        let pid = unsafe { libc::getpid() };
        if let Err(e) = fs::write(format!("{CG_W}/cgroup.procs"), pid.to_string()) {
            eprintln!("ept-kiszka: writer: cgroup.procs: {e}");
        }
    }
    if let Some(c) = pin {
        let _ = pin_cpu(c);
    }
    let _ = set_fifo(0);
    let b = [b'x'];
    loop {
        // SAFETY: `b` is a valid 1-byte buffer.
        if unsafe { libc::write(wfd, b.as_ptr().cast(), 1) } == 1 {
            s.writer_bytes.fetch_add(1, Relaxed);
        }
    }
}

fn main() {
    let o = parse();
    if o.cgroup {
        if let Err(e) = setup_cgroup(&o.cpu_max) {
            eprintln!("ept-kiszka: {e}");
            exit(4);
        }
    }
    let s = shm();
    let mut p = [0i32; 2];
    // SAFETY: `p` has room for two fds.
    if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
        eprintln!("ept-kiszka: pipe failed");
        exit(4);
    }
    // SAFETY: fork; the children run their loops only.
    let rpid = unsafe { libc::fork() };
    if rpid == 0 {
        reader(s, p[0], o.timer_us, o.pin);
    }
    // SAFETY: as above.
    let wpid = unsafe { libc::fork() };
    if wpid == 0 {
        writer(s, p[1], o.cgroup, o.pin);
    }
    if let Err(e) = set_fifo(o.prio) {
        eprintln!("ept-kiszka: monitor: {e} (continuing)");
    }
    println!(
        "ept-kiszka: reader={rpid} writer={wpid} timer_us={} cpu_max=\"{}\" cgroup={} pin={:?} duration_s={}",
        o.timer_us, o.cpu_max, o.cgroup, o.pin, o.duration
    );
    let t0 = now_ns();
    let (mut last_iters, mut last_change) = (0u64, t0);
    let (mut prev_iters, mut prev_bytes, mut prev_t) = (0u64, 0u64, t0);
    let mut longest = 0i64;
    let mut next_print = t0 + 1_000_000_000;
    while now_ns() - t0 < o.duration * 1_000_000_000 {
        sleep_ns(10_000_000);
        let now = now_ns();
        let it = s.reader_iters.load(Relaxed);
        if it != last_iters {
            last_iters = it;
            last_change = now;
        }
        longest = longest.max(now - last_change);
        if now >= next_print {
            next_print += 1_000_000_000;
            let by = s.writer_bytes.load(Relaxed);
            let dt = ((now - prev_t) / 1_000_000).max(1);
            println!(
                "ept-kiszka: t={}s reader_iters/s={} writer_bytes/s={} timer_ticks={} stalled_ms={} longest_stall_ms={}",
                (now - t0) / 1_000_000_000,
                (it - prev_iters) * 1000 / dt as u64,
                (by - prev_bytes) * 1000 / dt as u64,
                s.timer_ticks.load(Relaxed),
                (now - last_change) / 1_000_000,
                longest / 1_000_000
            );
            prev_iters = it;
            prev_bytes = by;
            prev_t = now;
        }
    }
    let stalled_now = (now_ns() - last_change) / 1_000_000;
    let stuck = stalled_now >= o.stalled_ms;
    println!(
        "ept-kiszka: summary duration_s={} reader_iters={} writer_bytes={} longest_stall_ms={} stalled_at_end_ms={} verdict={}",
        o.duration,
        s.reader_iters.load(Relaxed),
        s.writer_bytes.load(Relaxed),
        longest / 1_000_000,
        stalled_now,
        if stuck { "STALLED" } else { "progressing" }
    );
    // SAFETY: plain syscalls.
    unsafe {
        libc::kill(rpid, libc::SIGKILL);
        libc::kill(wpid, libc::SIGKILL);
    }
    // Do not wait forever for children stuck in the kernel.
    for _ in 0..200 {
        // SAFETY: plain syscall.
        if unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } < 0 {
            break;
        }
        sleep_ns(10_000_000);
    }
    exit(if stuck { 1 } else { 0 });
}
