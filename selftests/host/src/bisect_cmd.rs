//! `ept bisect`: the command line side (the logic is ept_host::bisect).

use crate::cli::{self, BisectArgs};
use crate::Fail;
use ept_host::bisect::{self, Ctx, Sprt};
use ept_host::find_top;
use std::path::PathBuf;

fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|s| !s.is_empty())
}

pub fn run(a: BisectArgs) -> Result<i32, Fail> {
    let sprt = Sprt {
        alpha: a.alpha,
        beta: a.beta,
        p_detect: a.p_detect,
        p_false: a.p_false,
        batch: a.batch,
        max_runs: a.max_runs,
    };
    sprt.validate().map_err(Fail::Usage)?;
    let scen = match &a.data.scenarios_file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .map_err(|e| Fail::Usage(format!("{}: {e}", f.display())))?;
            ept_host::data::Scenarios::from_json(&t).map_err(Fail::Usage)?
        }
        None => ept_host::data::Scenarios::builtin(),
    };
    if !scen.is_known(&a.scenario) {
        return Err(Fail::Usage(format!(
            "bisect: unknown scenario {} (known: {})",
            a.scenario,
            scen.names().join(" ")
        )));
    }
    let kernel_src = a.kernel_src.or_else(|| env_nonempty("KERNEL_SRC"));
    let patches = a.patches.or_else(|| env_nonempty("PATCHES"));
    let good = a.good.or_else(|| env_nonempty("GOOD"));
    let bad = a.bad.or_else(|| env_nonempty("BAD"));
    // The build scripts get exactly what each step sets.
    std::env::remove_var("PATCHES");
    std::env::remove_var("KERNEL_SRC");
    let top = find_top().ok_or_else(|| {
        Fail::Infra("cannot find the repository top (qemu/run-vm.sh); set EPT_TOP".into())
    })?;
    let git_mode = good.is_some() || bad.is_some();
    let out = a.out.unwrap_or_else(|| {
        top.join(format!(
            "out/bisect/{}-{}{}",
            a.arch,
            a.scenario,
            if git_mode { "-git" } else { "" }
        ))
    });
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| Fail::Infra(format!("{}: {e}", out.display())))?;
    // Absolute: `ept bisect-step` runs in the clone (git bisect run).
    let out = out
        .canonicalize()
        .map_err(|e| Fail::Infra(format!("{}: {e}", out.display())))?;
    let ctx = Ctx {
        top: top.clone(),
        arch: a.arch.clone(),
        scenario: a.scenario.clone(),
        sprt,
        out: out.clone(),
        deadline: a.deadline,
        scenarios_file: a.data.scenarios_file.clone(),
        expectations: a.data.expectations.clone(),
        tree: None,
        old: None,
        steps_file: None,
    };
    let progress = |l: &str| eprintln!("{l}");
    let b = if git_mode {
        let (Some(g), Some(b), Some(src)) = (good, bad, kernel_src) else {
            return Err(Fail::Usage(
                "bisect: git mode needs --good, --bad and --kernel-src (or GOOD=, BAD=, KERNEL_SRC=)"
                    .into(),
            ));
        };
        if a.series.is_some() || patches.is_some() {
            return Err(Fail::Usage(
                "bisect: give a series (--series/--patches) or a git range (--good/--bad), not both"
                    .into(),
            ));
        }
        let cache = env_nonempty("EPT_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                env_nonempty("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("epoll-torture"))
            })
            .or_else(|| env_nonempty("HOME").map(|h| PathBuf::from(h).join(".cache/epoll-torture")))
            .ok_or_else(|| Fail::Infra("no EPT_CACHE or HOME".into()))?;
        let exe = std::env::current_exe().map_err(|e| Fail::Infra(e.to_string()))?;
        bisect::run_git(
            &ctx,
            &cache,
            std::path::Path::new(&src),
            &g,
            &b,
            &exe,
            &progress,
        )
    } else {
        let files: Vec<PathBuf> = match (&a.series, &patches) {
            (Some(d), _) => bisect::series_patches(d).map_err(Fail::Usage)?,
            (None, Some(p)) => cli::list(p).into_iter().map(PathBuf::from).collect(),
            (None, None) => {
                return Err(Fail::Usage(
                    "bisect: give --series DIR, --patches LIST (or PATCHES=), or --good/--bad with --kernel-src"
                        .into(),
                ))
            }
        };
        let mut abs = Vec::new();
        for f in files {
            abs.push(
                f.canonicalize()
                    .map_err(|e| Fail::Usage(format!("{}: {e}", f.display())))?,
            );
        }
        let to = a.to.unwrap_or(abs.len());
        if to > abs.len() || a.from >= to {
            return Err(Fail::Usage(format!(
                "bisect: need 0 <= --from < --to <= {} (the series' length)",
                abs.len()
            )));
        }
        bisect::run_series(&ctx, kernel_src, &abs, a.from, to, &progress)
    };
    let json = serde_json::to_string_pretty(&b).unwrap_or_default() + "\n";
    let md = bisect::render_md(&b);
    let _ = std::fs::write(out.join("bisect.json"), &json);
    let _ = std::fs::write(out.join("bisect.md"), &md);
    if a.json {
        print!("{json}");
    } else {
        print!("{md}");
    }
    eprintln!(
        "ept: bisect {}; wrote bisect.md bisect.json in {}",
        b.status,
        out.display()
    );
    Ok(match b.status.as_str() {
        "found" => 0,
        "ends-agree" | "ambiguous" => 1,
        _ => 3,
    })
}
