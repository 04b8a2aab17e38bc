//! ept-run: run one epoll_torture scenario end to end in the guest.
//!
//! The module cannot create an epoll instance (nothing in fs/eventpoll.c is
//! exported), so this program creates the epoll fd and the eventfds
//! (O_NONBLOCK, all added with EPOLLIN), then runs
//! `insmod epoll_torture.ko scenario=S epfd=E evfds=A-B [params...]` with
//! the fds inherited; module init takes its own references. It then waits
//! on /dev/kmsg for the KTAP result line, and removes the module.
//!
//! usage: ept-run [options] SCENARIO [param=value ...]
//!        ept-run --shell          (a shell holding the fds; $EPT_FDS)
//!
//! options:
//!   -n N              eventfds to create (default 64)
//!   --dups K          add each eventfd K times to the epoll set, through
//!                     dup()ed fds (default 1): one eventfd_signal() then
//!                     runs K ep_poll_callback()s, each taking the ready-list
//!                     lock on the read side, which makes the producer far
//!                     more likely to be preempted inside it (default 1;
//!                     measured on TCG: no clear effect)
//!   --ko PATH         module (default /lib/modules/epoll_torture.ko)
//!   --timeout SEC     give up waiting for the result (default 0 = never)
//!   --abort-after SEC rmmod after SEC seconds, before the result
//!   --linger SEC      after a hang verdict, wait SEC seconds (RCU stall,
//!                     hung task reports) before rmmod (default 0)
//!   --no-rmmod        leave the module loaded
//!   --cpu N           pin ept-run to CPU N (keep it off the hog's CPU)
//!   --alive SEC       print an "alive" line every SEC seconds while
//!                     waiting (a guest-side heartbeat; default 0 = off)
//!   --echo            copy every new kernel log record to stdout as
//!                     "kmsg: [ seconds.micros] text", with the record's
//!                     own time (the tty path keeps working when the
//!                     kernel's console printer thread is stuck; the host
//!                     matches each echo with its console copy by time
//!                     and text and counts the record once)
//!   --sysrq-w         on a hang verdict, trigger SysRq-w (blocked tasks)
//!   --prio P          SCHED_FIFO priority of ept-run itself (default 50;
//!                     keeps its own timers working while ktimers is stuck)
//!
//! exit: 0 ok, 1 not ok (bug detected), 2 insmod failed, 3 no result
//! (timeout), 4 usage/setup error, 5 aborted as requested.

use ept_guest::{check, now_ns, run, set_fifo};
use std::io;
use std::os::fd::RawFd;
use std::process::exit;

const KO: &str = "/lib/modules/epoll_torture.ko";

struct Opts {
    nevfds: usize,
    dups: usize,
    ko: String,
    timeout: i64,
    abort_after: i64,
    linger: i64,
    rmmod: bool,
    prio: i32,
    cpu: Option<usize>,
    alive: i64,
    echo: bool,
    sysrq_w: bool,
    shell: bool,
    scenario: String,
    params: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: ept-run [-n N] [--ko PATH] [--timeout SEC] [--abort-after SEC] [--linger SEC] [--no-rmmod] [--prio P] SCENARIO [param=value ...]\n       ept-run [-n N] --shell"
    );
    exit(4)
}

fn parse() -> Opts {
    let mut o = Opts {
        nevfds: 64,
        dups: 1,
        ko: KO.into(),
        timeout: 0,
        abort_after: 0,
        linger: 0,
        rmmod: true,
        prio: 50,
        cpu: None,
        alive: 0,
        echo: false,
        sysrq_w: false,
        shell: false,
        scenario: String::new(),
        params: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    let num =
        |v: Option<String>| -> i64 { v.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()) };
    while let Some(a) = args.next() {
        match a.as_str() {
            "-n" => o.nevfds = num(args.next()) as usize,
            "--dups" => o.dups = num(args.next()) as usize,
            "--ko" => o.ko = args.next().unwrap_or_else(|| usage()),
            "--timeout" => o.timeout = num(args.next()),
            "--abort-after" => o.abort_after = num(args.next()),
            "--linger" => o.linger = num(args.next()),
            "--no-rmmod" => o.rmmod = false,
            "--prio" => o.prio = num(args.next()) as i32,
            "--shell" => o.shell = true,
            "--cpu" => o.cpu = Some(num(args.next()) as usize),
            "--alive" => o.alive = num(args.next()),
            "--echo" => o.echo = true,
            "--sysrq-w" => o.sysrq_w = true,
            "-h" | "--help" => usage(),
            _ if o.scenario.is_empty() && !o.shell && !a.contains('=') => o.scenario = a,
            _ => o.params.push(a),
        }
    }
    if (o.scenario.is_empty() && !o.shell) || o.nevfds == 0 || o.nevfds > 1024 || o.dups == 0 {
        usage();
    }
    o
}

/// Creates the epoll fd and `n` O_NONBLOCK eventfds watched by it; returns
/// the insmod arguments `epfd=E evfds=...`.
fn make_fds(n: usize, dups: usize) -> io::Result<String> {
    // SAFETY: plain syscalls with valid arguments.
    let ep = check(unsafe { libc::epoll_create1(0) }, "epoll_create1")?;
    let mut fds: Vec<RawFd> = Vec::new();
    for _ in 0..n {
        // SAFETY: plain syscall.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) }, "eventfd")?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event.
        check(
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) },
            "epoll_ctl",
        )?;
        fds.push(fd);
    }
    // The extra items: dup()s above the contiguous eventfd range. They stay
    // open in this process (and are inherited by insmod); the epoll items
    // live as long as the eventfd file, which the module holds.
    for &fd in &fds {
        for _ in 1..dups {
            // SAFETY: plain syscall on an open fd.
            let d = check(unsafe { libc::dup(fd) }, "dup")?;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: `ev` is a valid epoll_event.
            check(
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, d, &mut ev) },
                "epoll_ctl(dup)",
            )?;
        }
    }
    let contiguous = fds.windows(2).all(|w| w[1] == w[0] + 1);
    let list = if contiguous {
        format!("{}-{}", fds[0], fds[n - 1])
    } else {
        fds.iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(format!("epfd={ep} evfds={list}"))
}

/// Opens /dev/kmsg positioned at its end (only new records are read).
fn open_kmsg() -> io::Result<RawFd> {
    // SAFETY: valid NUL-terminated path.
    let fd = check(
        unsafe { libc::open(c"/dev/kmsg".as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) },
        "open /dev/kmsg",
    )?;
    // SAFETY: plain syscall.
    unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
    Ok(fd)
}

/// Reads the next kmsg record's text, waiting up to `ms` (None: timeout).
fn kmsg_line(fd: RawFd, ms: i32, echo: bool) -> Option<String> {
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let rec = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
            // "prio,seq,ts_usec,flags;text": the echo keeps the record's
            // own time in console format, so the host can tell it is the
            // same record as the console's copy.
            let (head, text) = rec.split_once(';').unwrap_or(("", &rec));
            let line = text.lines().next().unwrap_or("").to_string();
            if echo {
                match head.split(',').nth(2).and_then(|t| t.parse::<u64>().ok()) {
                    Some(us) => {
                        println!("kmsg: [{:5}.{:06}] {line}", us / 1_000_000, us % 1_000_000)
                    }
                    None => println!("kmsg: {line}"),
                }
            }
            return Some(line);
        }
        let e = io::Error::last_os_error().raw_os_error();
        if n < 0 && e == Some(libc::EPIPE) {
            continue; // overwritten records: continue with the next one
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is a valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r == 0 {
            return None;
        }
    }
}

/// Loads the module with `finit_module()`.
fn finit_module(ko: &str, params: &str) -> io::Result<()> {
    let bad = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let path = std::ffi::CString::new(ko).map_err(bad)?;
    let params = std::ffi::CString::new(params).map_err(bad)?;
    // SAFETY: valid NUL-terminated path.
    let fd = check(
        unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) },
        "open module",
    )?;
    // SAFETY: `fd` is open, `params` is NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, params.as_ptr(), 0) };
    let e = io::Error::last_os_error();
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    if r != 0 {
        return Err(io::Error::new(e.kind(), format!("finit_module: {e}")));
    }
    Ok(())
}

fn rmmod() -> i32 {
    println!("ept-run: rmmod epoll_torture");
    let t = now_ns();
    let r = run(&["/bin/rmmod", "epoll_torture"]).unwrap_or(127);
    println!(
        "ept-run: rmmod exit={r} took_ms={}",
        (now_ns() - t) / 1_000_000
    );
    r
}

fn main() {
    let o = parse();
    let fdargs = make_fds(o.nevfds, o.dups).unwrap_or_else(|e| {
        eprintln!("ept-run: {e}");
        exit(4)
    });
    if o.shell {
        println!("ept-run: fds ready: {fdargs}");
        println!(
            "ept-run: insmod {} scenario=inversion $EPT_FDS ; dmesg ; rmmod epoll_torture",
            o.ko
        );
        std::env::set_var("EPT_FDS", &fdargs);
        let e = run(&["/bin/sh"]).unwrap_or(127);
        exit(e);
    }
    if let Some(c) = o.cpu {
        if let Err(e) = ept_guest::pin_cpu(c) {
            eprintln!("ept-run: {e} (continuing)");
        }
    }
    if o.prio > 0 {
        if let Err(e) = set_fifo(o.prio) {
            eprintln!("ept-run: {e} (continuing)");
        }
    }
    let kmsg = open_kmsg().unwrap_or_else(|e| {
        eprintln!("ept-run: {e}");
        exit(4)
    });
    let mut args: Vec<String> = vec![format!("scenario={}", o.scenario)];
    args.extend(fdargs.split(' ').map(String::from));
    args.extend(o.params.iter().cloned());
    // TRACE=1 (docs/trace.md): freeze ftrace at the worst call and a hang,
    // unless the command line already says trace=.
    if std::env::var("EPT_TRACE").is_ok_and(|v| v == "1")
        && o.scenario != "throughput"
        && !args.iter().any(|a| a.starts_with("trace="))
    {
        args.push("trace=1".into());
    }
    println!("ept-run: insmod {} {}", o.ko, args.join(" "));
    let t0 = now_ns();
    // finit_module() directly (not busybox insmod, which retries a failed
    // finit_module() with init_module(), running module init twice and so
    // printing every parameter error twice). Module init runs in this
    // process and takes its own references on our fds.
    if let Err(e) = finit_module(&o.ko, &args.join(" ")) {
        println!("ept-run: insmod failed: {e}");
        exit(2);
    }
    let elapsed = || (now_ns() - t0) / 1_000_000_000;
    let mut verdict: Option<(bool, String)> = None;
    let mut next_alive = if o.alive > 0 { o.alive } else { i64::MAX };
    while verdict.is_none() {
        if elapsed() >= next_alive {
            println!("ept-run: alive t={}s", elapsed());
            next_alive += o.alive;
        }
        if o.abort_after > 0 && elapsed() >= o.abort_after {
            println!("ept-run: aborting after {} s", o.abort_after);
            let r = rmmod();
            // Show what the module printed on the way out.
            while let Some(l) = kmsg_line(kmsg, 200, o.echo) {
                if l.starts_with("epoll_torture: ")
                    && (l.contains("ok 1 ") || l.contains("unloaded"))
                {
                    println!("ept-run: {l}");
                }
            }
            exit(if r == 0 { 5 } else { 3 });
        }
        if o.timeout > 0 && elapsed() >= o.timeout {
            println!("ept-run: no result after {} s", o.timeout);
            exit(3);
        }
        if let Some(l) = kmsg_line(kmsg, 500, o.echo) {
            if let Some(rest) = l.strip_prefix("epoll_torture: ") {
                if rest.starts_with("ok 1 ") {
                    verdict = Some((true, rest.to_string()));
                } else if rest.starts_with("not ok 1 ") {
                    verdict = Some((false, rest.to_string()));
                }
            }
        }
    }
    let (ok, line) = verdict.unwrap_or((false, String::new()));
    println!(
        "ept-run: result after {} ms: {line}",
        (now_ns() - t0) / 1_000_000
    );
    if !ok && line.contains("hang") && o.linger > 0 {
        println!("ept-run: hang reported, lingering {} s", o.linger);
        if o.sysrq_w {
            println!("ept-run: SysRq-w");
            let _ = std::fs::write("/proc/sysrq-trigger", "w");
        }
        let end = now_ns() + o.linger * 1_000_000_000;
        let mut next = now_ns();
        while now_ns() < end {
            if o.alive > 0 && now_ns() >= next {
                println!("ept-run: alive t={}s (lingering)", elapsed());
                next += o.alive * 1_000_000_000;
            }
            let _ = kmsg_line(kmsg, 1000, o.echo);
        }
    }
    if o.rmmod {
        rmmod();
    }
    exit(if ok { 0 } else { 1 });
}
