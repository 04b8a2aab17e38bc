//! The fidelity check against the real patched fs/eventpoll.c of every
//! variant that stands for upstream code, and mutations of those files
//! that must fail it.
//!
//! No kernel code is committed: the tests take today's Debian
//! fs/eventpoll.c from the build cache (`$EPT_FIDELITY_BASE`, or the
//! newest `$EPT_CACHE/src/linux-source-7.*/fs/eventpoll.c`), apply the
//! variant's patches with patch(1) in a scratch directory, and check the
//! result against `qemu/variants/<variant>/fidelity.ref`. Without the
//! cache (or patch(1)) they print why and pass without checking.
//!
//! `given_file` checks one file named by `$EPT_FIDELITY_FILE` against
//! `$EPT_FIDELITY_REF` (what qemu/fidelity.sh runs).

use ept_host::fidelity::{check, Outcome, Report};
use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache() -> PathBuf {
    if let Ok(c) = std::env::var("EPT_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    home.join("epoll-torture")
}

/// Today's base fs/eventpoll.c and its kernel series ("7.3"), if cached.
fn base() -> Option<(PathBuf, String)> {
    if let Ok(p) = std::env::var("EPT_FIDELITY_BASE") {
        let p = PathBuf::from(p);
        let series = std::env::var("EPT_FIDELITY_SERIES").unwrap_or_else(|_| "7.3".into());
        return p.is_file().then_some((p, series));
    }
    let src = cache().join("src");
    let mut trees: Vec<(Vec<u32>, PathBuf, String)> = std::fs::read_dir(&src)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let ver = name
                .strip_prefix("linux-source-")?
                .split('_')
                .next()?
                .to_string();
            if !ver.starts_with("7.") {
                return None;
            }
            let key = ver.split('.').filter_map(|x| x.parse().ok()).collect();
            let f = e.path().join("fs/eventpoll.c");
            f.is_file().then_some((key, f, ver))
        })
        .collect();
    trees.sort();
    trees.pop().map(|(_, f, v)| (f, v))
}

/// The patches of a variant for a kernel series, as build-kernel.sh picks
/// them (a directory named after the series wins).
fn patches(variant: &str, series: &str) -> Vec<PathBuf> {
    let vdir = top().join("qemu/variants").join(variant);
    let dir = if vdir.join(series).is_dir() {
        vdir.join(series)
    } else {
        vdir
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "patch"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// fs/eventpoll.c of `variant` on today's base, or why it cannot be made.
fn patched(variant: &str) -> Result<String, String> {
    let (file, series) = base().ok_or_else(|| {
        format!(
            "no cached Debian 7.x source under {} (set EPT_FIDELITY_BASE)",
            cache().join("src").display()
        )
    })?;
    // One directory per call: the tests run in parallel, several per variant.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "ept-fidelity-{}-{}-{n}",
        std::process::id(),
        variant
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("fs")).map_err(|e| e.to_string())?;
    std::fs::copy(&file, dir.join("fs/eventpoll.c")).map_err(|e| e.to_string())?;
    for p in patches(variant, &series) {
        let out = Command::new("patch")
            .args(["-s", "-p1", "--no-backup-if-mismatch", "-d"])
            .arg(&dir)
            .arg("-i")
            .arg(&p)
            .output()
            .map_err(|e| format!("patch(1) not usable: {e}"))?;
        assert!(
            out.status.success(),
            "{} does not apply to {}: {}",
            p.display(),
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let text = std::fs::read_to_string(dir.join("fs/eventpoll.c")).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    text
}

fn reference(variant: &str) -> String {
    let p = top()
        .join("qemu/variants")
        .join(variant)
        .join("fidelity.ref");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The variant's patched file, or None (with the reason printed).
fn source_or_skip(variant: &str) -> Option<String> {
    match patched(variant) {
        Ok(t) => Some(t),
        Err(why) => {
            eprintln!("SKIP fidelity of {variant}: {why}");
            None
        }
    }
}

fn report(variant: &str, text: &str) -> Report {
    let r = check(&reference(variant), text).unwrap_or_else(|e| panic!("{variant}: {e}"));
    eprintln!("{}", r.render());
    r
}

fn assert_faithful(variant: &str) {
    let Some(text) = source_or_skip(variant) else {
        return;
    };
    let r = report(variant, &text);
    assert!(
        r.ok(),
        "{variant} departs from its reference:\n{}",
        r.render()
    );
}

/// Where the body of function `func` starts (its "\n{") and ends.
fn body_span(text: &str, func: &str) -> (usize, usize) {
    let pat = format!("{func}(");
    let start = text
        .match_indices(&pat)
        .map(|(k, _)| k)
        .filter(|&k| {
            let before = text[..k].chars().next_back();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .find_map(|k| {
            // A definition: the parameter list's ')' is followed by "\n{".
            let open = k + func.len();
            let mut depth = 0;
            for (i, c) in text[open..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            let after = open + i + 1;
                            return text[after..].starts_with("\n{").then_some(after);
                        }
                    }
                    _ => {}
                }
            }
            None
        })
        .unwrap_or_else(|| panic!("no definition of {func}"));
    let end = start + text[start..].find("\n}\n").expect("end of function");
    (start, end)
}

/// Replace exactly one occurrence of `from` inside function `func`.
fn mutate(text: &str, func: &str, from: &str, to: &str) -> String {
    let (start, end) = body_span(text, func);
    let body = &text[start..end];
    assert_eq!(body.matches(from).count(), 1, "'{from}' in {func}");
    format!(
        "{}{}{}",
        &text[..start],
        body.replacen(from, to, 1),
        &text[end..]
    )
}

/// The mutated file fails the check, in `func` (and nowhere else).
fn assert_caught(variant: &str, text: &str, func: &str) {
    let r = report(variant, text);
    assert!(!r.ok(), "mutation in {func} of {variant} was not caught");
    assert_eq!(r.failed(), [func], "{}", r.render());
    let f = r.functions.iter().find(|f| f.name == func).unwrap();
    assert!(matches!(f.outcome, Outcome::Mismatch(_)));
}

#[test]
fn lockless_is_the_merged_v3() {
    assert_faithful("lockless");
}

#[test]
fn rwlock_is_the_prefix_design() {
    assert_faithful("rwlock");
}

#[test]
fn spinlock_2025_is_v6_18_to_v7_1() {
    assert_faithful("spinlock-2025");
}

#[test]
fn spinlock_is_today_with_the_2026_seqcount() {
    assert_faithful("spinlock");
}

#[test]
fn reformatting_the_file_changes_nothing() {
    let Some(text) = source_or_skip("lockless") else {
        return;
    };
    // Every statement on its own line with other indentation, and no
    // comments: the operations stay the same.
    let reflowed: String = text
        .lines()
        .map(|l| format!("  {}", l.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(";\n", ";\n\n")
        .replace("(&", "( &");
    assert_ne!(reflowed, text);
    assert!(report("lockless", &reflowed).ok());
}

#[test]
fn trylock_replaced_by_a_plain_check_is_caught() {
    let Some(text) = source_or_skip("lockless") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_events_available",
        "locked = mutex_trylock(&ep->mtx);",
        "locked = !mutex_is_locked(&ep->mtx);",
    );
    assert_caught("lockless", &m, "ep_events_available");
}

#[test]
fn dropped_read_lock_is_caught() {
    let Some(text) = source_or_skip("rwlock") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_poll_callback",
        "read_lock_irqsave(&ep->lock, flags);",
        "local_irq_save(flags);",
    );
    assert_caught("rwlock", &m, "ep_poll_callback");
}

#[test]
fn read_lock_flavour_change_is_caught() {
    let Some(text) = source_or_skip("rwlock") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_poll_callback",
        "read_lock_irqsave(&ep->lock, flags);",
        "write_lock_irqsave(&ep->lock, flags);",
    );
    assert_caught("rwlock", &m, "ep_poll_callback");
}

#[test]
fn wakeup_moved_out_of_the_locked_region_is_caught() {
    let Some(text) = source_or_skip("spinlock-2025") else {
        return;
    };
    let m = mutate(&text, "ep_done_scan", "\n\tspin_unlock_irq(&ep->lock);", "");
    let m = mutate(
        &m,
        "ep_done_scan",
        "\tif (!list_empty(&ep->rdllist)) {",
        "\tspin_unlock_irq(&ep->lock);\n\tif (!list_empty(&ep->rdllist)) {",
    );
    assert_caught("spinlock-2025", &m, "ep_done_scan");
}

#[test]
fn missing_seqcount_is_caught() {
    let Some(text) = source_or_skip("spinlock") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_start_scan",
        "write_seqcount_begin(&ep->seq);",
        "",
    );
    assert_caught("spinlock", &m, "ep_start_scan");
}

#[test]
fn wake_only_if_queued_is_caught() {
    // The earlier, unfaithful lockless design woke waiters in ep_modify()
    // only when that call queued the item.
    let Some(text) = source_or_skip("lockless") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_modify",
        "\t\tepitem_ready(epi);\n",
        "\t\tif (!llist_on_list(&epi->rdllink))\n\t\t\tepitem_ready(epi);\n",
    );
    assert_caught("lockless", &m, "ep_modify");
}

#[test]
fn given_file() {
    let (Ok(file), Ok(refp)) = (
        std::env::var("EPT_FIDELITY_FILE"),
        std::env::var("EPT_FIDELITY_REF"),
    ) else {
        eprintln!(
            "SKIP given_file: set EPT_FIDELITY_FILE and EPT_FIDELITY_REF (qemu/fidelity.sh does)"
        );
        return;
    };
    let text = std::fs::read_to_string(Path::new(&file)).expect("EPT_FIDELITY_FILE");
    let reference = std::fs::read_to_string(Path::new(&refp)).expect("EPT_FIDELITY_REF");
    let r = check(&reference, &text).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", r.render());
    if std::env::var("EPT_FIDELITY_VERBOSE").is_ok() {
        for f in &r.functions {
            println!("fn {}\n    {}\nend", f.name, f.actual.join("\n    "));
        }
    }
    assert!(r.ok(), "{file} departs from {refp}");
}

#[test]
fn oneshot_left_off_the_requeue_is_caught() {
    // The earlier, unfaithful lockless design did not re-queue EPOLLONESHOT
    // items at the end of ep_send_events(); v3 re-queues every item that is
    // not EPOLLET.
    let Some(text) = source_or_skip("lockless") else {
        return;
    };
    let m = mutate(
        &text,
        "ep_send_events",
        "if (!(epi->event.events & EPOLLET)) {",
        "if (!(epi->event.events & (EPOLLET | EPOLLONESHOT))) {",
    );
    assert_caught("lockless", &m, "ep_send_events");
}
