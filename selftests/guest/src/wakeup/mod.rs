//! ept-wakeup: wake-up torture for epoll with an oracle for every event.
//!
//! Patterns (one KTAP test each) drive epoll instances from SCHED_FIFO
//! threads pinned to CPUs, while hogs (SCHED_FIFO, above the waiters,
//! woken by hrtimers) preempt them in the middle of their epoll calls: on
//! PREEMPT_RT every ep->lock / ep->mtx section is preemptible, so a burst
//! holds a race window open for its whole length.
//!
//! Two oracles:
//! - false negative: epoll_wait(..., 0) (or a timed wait) returns 0 while a
//!   level-triggered fd in the set is known to be readable for the whole
//!   call (a sentinel that is never drained, or a unit nobody read);
//! - lost wake-up: an event is due (the kernel itself says the fd is
//!   ready) while every waiter that must wake for it sleeps in its wait
//!   (task state S), and that lasts longer than --bound-ms with nothing
//!   consumed. The waiters, the fd and the kernel stacks are printed.
//!
//! See docs/wakeup.md for what each pattern exercises and the measurements.

mod boot;
mod common;
mod core;
mod out;
mod patterns;
mod rng;
mod runtime;
mod source;
mod sys;

use self::core::Ctx;
use ept_guest::{now_ns, set_fifo};
use source::Kind;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

pub struct Opts {
    pub patterns: Vec<String>,
    pub duration_s: u64,
    pub seed: u64,
    pub bound_ms: u64,
    pub max_lost: u64,
    pub max_fn: u64,
    pub hog_cpus: Vec<usize>,
    pub hog_burst_min_us: u32,
    pub hog_burst_max_us: u32,
    pub hog_period_us: u32,
    pub hog_prio: i32,
    pub waiter_prio: i32,
    pub producer_prio: i32,
    pub watchdog_prio: i32,
    pub pollers: usize,
    /// fn pattern: split readers and scanners (else every poller rotates).
    pub fn_split: bool,
    pub sources: Vec<Kind>,
    pub cpus: usize,
    /// Per-pattern budget weights ("fn=3,rr=0.5"); default 1.
    pub weights: Vec<(String, f64)>,
    /// Skip the patterns after the first one that detects a bug (the
    /// verdict is settled; `--stop-first`).
    pub stop_first: bool,
}

const USAGE: &str = "usage: ept-wakeup [--patterns a,b,..|all] [--duration S] [--seed N]
       [--bound-ms MS] [--max-lost K] [--max-fn K] [--weights p=w,..] [--stop-first]
       (budget shares; default fn=4,et-inout=4,boot=1.5,rr=1, others 1)
       [--hog-cpus all|none|0,1] [--hog-burst-us MIN-MAX] [--hog-period-us US]
       [--hog-prio P] [--waiter-prio P] [--producer-prio P] [--watchdog-prio P]
       [--pollers N] [--fn-roles rotate|split] [--sources eventfd,pipe,socket,timerfd] [--list]
patterns: lt et oneshot exclusive nested multi ctl fn rr et-inout boot
exit: 0 every pattern ok, 1 a bug detected, 2 a setup/harness error";

fn usage(msg: &str) -> ! {
    eprintln!("ept-wakeup: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let cpus = sys::online_cpus();
    let mut o = Opts {
        patterns: patterns::ALL.iter().map(|s| s.to_string()).collect(),
        duration_s: 30,
        seed: (now_ns() as u64) ^ 0x5eed,
        bound_ms: 2000,
        max_lost: 1,
        max_fn: 1,
        hog_cpus: (0..cpus).collect(),
        hog_burst_min_us: 100,
        hog_burst_max_us: 500,
        hog_period_us: 1000,
        hog_prio: 40,
        waiter_prio: 30,
        producer_prio: 20,
        watchdog_prio: 90,
        pollers: 1,
        fn_split: true,
        sources: Kind::ALL.to_vec(),
        cpus,
        weights: Vec::new(),
        stop_first: false,
    };
    let mut it = args.iter();
    fn num<T: std::str::FromStr>(v: Option<&String>, what: &str) -> Result<T, String> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what} needs a number"))
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stop-first" => o.stop_first = true,
            "--patterns" => {
                let v = it.next().ok_or("--patterns needs a list")?;
                if v != "all" {
                    let ps: Vec<String> = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_string())
                        .collect();
                    for p in &ps {
                        if !patterns::ALL.contains(&p.as_str()) {
                            return Err(format!("unknown pattern {p}"));
                        }
                    }
                    if ps.is_empty() {
                        return Err("--patterns: empty list".into());
                    }
                    o.patterns = ps;
                }
            }
            "--duration" => o.duration_s = num(it.next(), "--duration")?,
            "--seed" => o.seed = num(it.next(), "--seed")?,
            "--bound-ms" => o.bound_ms = num(it.next(), "--bound-ms")?,
            "--max-lost" => o.max_lost = num(it.next(), "--max-lost")?,
            "--max-fn" => o.max_fn = num(it.next(), "--max-fn")?,
            "--hog-cpus" => {
                let v = it.next().ok_or("--hog-cpus needs a value")?;
                o.hog_cpus = match v.as_str() {
                    "all" => (0..cpus).collect(),
                    "none" => Vec::new(),
                    l => l
                        .split(',')
                        .map(|x| {
                            x.parse::<usize>()
                                .map_err(|_| format!("--hog-cpus: bad CPU {x}"))
                        })
                        .collect::<Result<_, _>>()?,
                };
                if o.hog_cpus.iter().any(|&c| c >= cpus) {
                    return Err(format!("--hog-cpus: only {cpus} CPUs online"));
                }
            }
            "--hog-burst-us" => {
                let v = it.next().ok_or("--hog-burst-us needs MIN-MAX")?;
                let (a, b) = v.split_once('-').unwrap_or((v, v));
                o.hog_burst_min_us = a.parse().map_err(|_| "--hog-burst-us: bad MIN")?;
                o.hog_burst_max_us = b.parse().map_err(|_| "--hog-burst-us: bad MAX")?;
                if o.hog_burst_min_us > o.hog_burst_max_us {
                    return Err("--hog-burst-us: MIN > MAX".into());
                }
            }
            "--hog-period-us" => o.hog_period_us = num(it.next(), "--hog-period-us")?,
            "--hog-prio" => o.hog_prio = num(it.next(), "--hog-prio")?,
            "--waiter-prio" => o.waiter_prio = num(it.next(), "--waiter-prio")?,
            "--producer-prio" => o.producer_prio = num(it.next(), "--producer-prio")?,
            "--watchdog-prio" => o.watchdog_prio = num(it.next(), "--watchdog-prio")?,
            "--pollers" => o.pollers = num(it.next(), "--pollers")?,
            "--fn-roles" => {
                o.fn_split = match it.next().map(|s| s.as_str()) {
                    Some("split") => true,
                    Some("rotate") => false,
                    _ => return Err("--fn-roles: rotate or split".into()),
                }
            }
            "--sources" => {
                let v = it.next().ok_or("--sources needs a list")?;
                o.sources = v
                    .split(',')
                    .map(|s| Kind::parse(s).ok_or_else(|| format!("unknown source {s}")))
                    .collect::<Result<_, _>>()?;
                if o.sources.is_empty() {
                    return Err("--sources: empty list".into());
                }
            }
            "--weights" => {
                let v = it.next().ok_or("--weights needs p=w,..")?;
                for kv in v.split(',') {
                    let (k, w) = kv
                        .split_once('=')
                        .ok_or_else(|| format!("--weights: bad {kv}"))?;
                    let w: f64 = w
                        .parse()
                        .map_err(|_| format!("--weights: bad weight {w}"))?;
                    if !(0.0..=1000.0).contains(&w) {
                        return Err(format!("--weights: weight {w} out of range"));
                    }
                    o.weights.push((k.to_string(), w));
                }
            }
            "--list" => {
                println!("{}", patterns::ALL.join(" "));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            x => return Err(format!("unknown option {x}")),
        }
    }
    for (name, p) in [
        ("--hog-prio", o.hog_prio),
        ("--waiter-prio", o.waiter_prio),
        ("--producer-prio", o.producer_prio),
        ("--watchdog-prio", o.watchdog_prio),
    ] {
        if !(0..=99).contains(&p) {
            return Err(format!("{name} must be 0..99"));
        }
    }
    if o.duration_s == 0 || o.bound_ms == 0 {
        return Err("--duration and --bound-ms must be > 0".into());
    }
    if o.hog_burst_max_us as u64 >= o.hog_period_us as u64 && o.hog_burst_max_us > 0 {
        return Err("--hog-burst-us MAX must be below --hog-period-us".into());
    }
    Ok(o)
}

/// Default budget weights: the false-negative race and the et-inout
/// aim need the most time, rr detects in a few calls, the login model gets
/// a little more than the rest. Measured in docs/wakeup.md.
const DEFAULT_WEIGHTS: [(&str, f64); 4] =
    [("fn", 4.0), ("et-inout", 4.0), ("boot", 1.5), ("rr", 1.0)];

fn weight(o: &Opts, p: &str) -> f64 {
    o.weights
        .iter()
        .rev()
        .find(|(k, _)| k == p)
        .map(|(_, w)| *w)
        .or_else(|| {
            DEFAULT_WEIGHTS
                .iter()
                .find(|(k, _)| *k == p)
                .map(|(_, w)| *w)
        })
        .unwrap_or(1.0)
}

fn uname() -> (String, String) {
    // SAFETY: zeroed utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::uname(&mut u) };
    let f = |a: &[libc::c_char]| -> String {
        let b: Vec<u8> = a
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (f(&u.release), f(&u.version))
}

/// Runs one pattern; returns (result line suffix, bug?, error?).
fn run_pattern(opts: &Arc<Opts>, name: &str, budget_ns: i64) -> (String, bool, bool) {
    let pname: &'static str = patterns::ALL
        .iter()
        .find(|p| **p == name)
        .copied()
        .unwrap_or("?");
    let ctx = Ctx::new(pname, opts.clone(), budget_ns);
    let mut hs = match patterns::start(name, &ctx) {
        Ok(h) => h,
        Err(e) => {
            ctx.fail(format!("setup: {e}"));
            Vec::new()
        }
    };
    if !ctx.stopped() {
        hs.extend(runtime::hogs(&ctx, opts.seed ^ 0x4057));
        hs.push(runtime::watchdog(&ctx));
        while !ctx.stopped() {
            sys::sleep_until(now_ns() + 10_000_000);
            if now_ns() > ctx.deadline + 1_000_000_000 {
                // The watchdog should have stopped us: it is starved.
                ctx.stop.store(true, SeqCst);
            }
        }
    }
    let elapsed = now_ns() - ctx.t0;
    runtime::stop_all(&ctx, hs);
    runtime::DONE_OPS.fetch_add(ctx.ops.load(SeqCst), SeqCst);
    common::latency_metrics(&ctx);
    let mut m = format!(
        "# metrics scenario=wakeup pattern={} ops={} events={} lost={} false_negatives={}",
        name,
        ctx.ops.load(SeqCst),
        ctx.events.load(SeqCst),
        ctx.lost.load(SeqCst),
        ctx.fneg.load(SeqCst)
    );
    let first = ctx.first_ns.load(SeqCst);
    if first >= 0 {
        m.push_str(&format!(" first_ms={}", first / 1_000_000));
    }
    m.push_str(&format!(
        " budget_ms={} elapsed_ms={}",
        budget_ns / 1_000_000,
        elapsed / 1_000_000
    ));
    let ov = ctx.overrun_max.load(SeqCst);
    if ov > 0 {
        m.push_str(&format!(" timeout_overrun_max_us={}", ov / 1000));
    }
    for (k, v) in ctx.extra.lock().unwrap().iter() {
        m.push_str(&format!(" {}={}", k, out::token(v)));
    }
    out::line(&m);
    let detail = ctx.detail.lock().unwrap().clone();
    let err = ctx.error.lock().unwrap().clone();
    match (detail, err) {
        (Some((bug, d)), _) => (
            format!(" # bug detected: {}: {}", bug.kind(), d),
            true,
            false,
        ),
        (None, Some(e)) => (format!(" # error: {e}"), false, true),
        (None, None) => (String::new(), false, false),
    }
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => Arc::new(o),
        Err(e) => usage(&e),
    };
    runtime::T_START.store(now_ns(), SeqCst);
    let (rel, ver) = uname();
    out::line("KTAP version 1");
    out::line(&format!("1..{}", opts.patterns.len()));
    out::line(&format!(
        "# config scenario=wakeup patterns={} weights={} duration_s={} seed={} bound_ms={} max_lost={} max_fn={} cpus={} hog_cpus={} hog_burst_us={}-{} hog_period_us={} prio_hog={} prio_waiter={} prio_producer={} prio_watchdog={} pollers={} fn_roles={} sources={} release={} version={}",
        opts.patterns.join(","),
        opts.patterns.iter().map(|p| format!("{p}:{}", weight(&opts, p))).collect::<Vec<_>>().join(","),
        opts.duration_s,
        opts.seed,
        opts.bound_ms,
        opts.max_lost,
        opts.max_fn,
        opts.cpus,
        if opts.hog_cpus.is_empty() { "none".to_string() } else { opts.hog_cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",") },
        opts.hog_burst_min_us,
        opts.hog_burst_max_us,
        opts.hog_period_us,
        opts.hog_prio,
        opts.waiter_prio,
        opts.producer_prio,
        opts.watchdog_prio,
        opts.pollers,
        if opts.fn_split { "split" } else { "rotate" },
        opts.sources.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        out::token(&rel),
        out::token(&ver)
    ));
    let mut setup_err = None;
    if let Err(e) = sys::install_sigusr1() {
        setup_err = Some(format!("{e}"));
    }
    sys::mlockall();
    // The main thread stops the patterns: keep it above every worker.
    if let Err(e) = set_fifo(opts.watchdog_prio) {
        setup_err = Some(format!("SCHED_FIFO {}: {e}", opts.watchdog_prio));
    }
    let start = now_ns();
    let total_ns = opts.duration_s as i64 * 1_000_000_000;
    let mut bugs = false;
    let mut errors = false;
    let mut settled_by: Option<&str> = None;
    for (k, name) in opts.patterns.iter().enumerate() {
        if let Some(first) = settled_by {
            out::line(&format!(
                "ok {} {name} # SKIP verdict settled by {first} (--stop-first)",
                k + 1
            ));
            continue;
        }
        let (res, bug, err) = if let Some(e) = &setup_err {
            (format!(" # error: {e}"), false, true)
        } else {
            let left = (start + total_ns - now_ns()).max(1_000_000_000);
            let wsum: f64 = opts.patterns[k..].iter().map(|p| weight(&opts, p)).sum();
            let share = if wsum > 0.0 {
                weight(&opts, name) / wsum
            } else {
                0.0
            };
            let budget = ((left as f64 * share) as i64).max(1_000_000_000);
            run_pattern(&opts, name, budget)
        };
        bugs |= bug;
        errors |= err;
        if bug && opts.stop_first {
            settled_by = Some(name);
        }
        let ok = if bug || err { "not ok" } else { "ok" };
        out::line(&format!("{ok} {} {name}{res}", k + 1));
    }
    runtime::heartbeat(None);
    if bugs {
        1
    } else if errors {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Opts, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_cover_every_pattern() {
        let o = p(&[]).unwrap();
        assert_eq!(o.patterns.len(), patterns::ALL.len());
        assert_eq!(o.bound_ms, 2000);
        assert_eq!(o.max_fn, 1);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(p(&["--patterns", "nope"]).is_err());
        assert!(p(&["--hog-burst-us", "600-100"]).is_err());
        assert!(p(&["--hog-burst-us", "100-1000", "--hog-period-us", "1000"]).is_err());
        assert!(p(&["--waiter-prio", "100"]).is_err());
        assert!(p(&["--sources", "fifo"]).is_err());
        assert!(p(&["--duration", "0"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }

    #[test]
    fn parses_lists_and_weights() {
        let o = p(&[
            "--patterns",
            "fn,rr",
            "--weights",
            "fn=3,rr=0.5",
            "--hog-burst-us",
            "200-300",
            "--sources",
            "pipe",
        ])
        .unwrap();
        assert_eq!(o.patterns, vec!["fn", "rr"]);
        assert_eq!(weight(&o, "fn"), 3.0);
        assert_eq!(weight(&o, "rr"), 0.5);
        assert_eq!(weight(&o, "lt"), 1.0);
        let d = p(&[]).unwrap();
        assert_eq!(weight(&d, "fn"), 4.0);
        assert_eq!(weight(&d, "rr"), 1.0);
        assert_eq!((o.hog_burst_min_us, o.hog_burst_max_us), (200, 300));
        assert_eq!(o.sources, vec![Kind::Pipe]);
        assert!(!o.stop_first);
        assert!(p(&["--stop-first"]).unwrap().stop_first);
    }

    #[test]
    fn bug_kinds_are_the_judge_words() {
        use self::core::Bug;
        assert_eq!(Bug::FalseNegative.kind(), "false negative");
        assert_eq!(Bug::LostWakeup.kind(), "lost wake-up");
    }
}
