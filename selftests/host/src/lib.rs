//! epoll-torture host side: judge console logs of the test VMs, run the
//! matrix, render and compare reports. The binary is `ept` (src/main.rs).

pub mod bisect;
pub mod compare;
pub mod data;
pub mod events;
pub mod fidelity;
pub mod ftrace;
pub mod judge;
pub mod junit;
pub mod kcidb;
pub mod log;
pub mod progress;
pub mod report;
pub mod rootcause;
pub mod rules;
pub mod runner;
pub mod stats;
pub mod svg;
pub mod sysrq;
pub mod timeline;

use std::path::{Path, PathBuf};

/// The repository top: $EPT_TOP, else the first parent of the current
/// directory or of the executable that has qemu/run-vm.sh.
pub fn find_top() -> Option<PathBuf> {
    if let Ok(t) = std::env::var("EPT_TOP") {
        return Some(PathBuf::from(t));
    }
    let mut starts = vec![];
    if let Ok(c) = std::env::current_dir() {
        starts.push(c);
    }
    if let Ok(e) = std::env::current_exe() {
        starts.push(e);
    }
    for s in starts {
        for d in s.ancestors() {
            if d.join("qemu/run-vm.sh").exists() {
                return Some(d.to_path_buf());
            }
        }
    }
    None
}

/// Write report.json, report.md, the SVG plots, junit.xml and kcidb.json
/// into `dir`.
pub fn write_outputs(rep: &report::Report, dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(rep).map_err(|e| e.to_string())?;
    let w = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    w("report.json", &(json + "\n"))?;
    let mut names = Vec::new();
    for (name, text) in svg::plots(rep) {
        w(&name, &text)?;
        names.push(name);
    }
    let mut trace_files = Vec::new();
    for (name, text) in timeline::outputs(rep) {
        w(&name, &text)?;
        if name.ends_with(".svg") {
            names.push(name.clone());
        }
        trace_files.push(name);
    }
    w("report.md", &report::render_md(rep, &names))?;
    w("junit.xml", &junit::render(rep, dir))?;
    let kcidb = kcidb::render(rep, &kcidb::Context::from_env(rep, dir));
    w(
        "kcidb.json",
        &(serde_json::to_string_pretty(&kcidb).map_err(|e| e.to_string())? + "\n"),
    )?;
    let mut all = vec!["report.json".to_string(), "report.md".to_string()];
    all.extend(names);
    all.extend(trace_files.into_iter().filter(|n| !n.ends_with(".svg")));
    all.extend(["junit.xml".to_string(), "kcidb.json".to_string()]);
    Ok(all)
}
