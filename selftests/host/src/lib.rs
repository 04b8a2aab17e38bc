//! epoll-torture host side: judge console logs of the test VMs, run the
//! matrix, render and compare reports. The binary is `ept` (src/main.rs).

pub mod compare;
pub mod data;
pub mod fidelity;
pub mod judge;
pub mod log;
pub mod report;
pub mod runner;
pub mod stats;
pub mod svg;
pub mod sysrq;

use std::path::Path;

/// Write report.json, report.md and the SVG plots into `dir`.
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
    w("report.md", &report::render_md(rep, &names))?;
    let mut all = vec!["report.json".to_string(), "report.md".to_string()];
    all.extend(names);
    Ok(all)
}
