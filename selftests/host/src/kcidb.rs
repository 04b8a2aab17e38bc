//! `out/report/kcidb.json`: the report as KernelCI KCIDB I/O data (schema
//! v5, the newest minor the `kcidb-io` package validates: 5.3).
//!
//! - one checkout per (base, variant): the Debian kernel source package
//!   (or a user tree) plus the variant's patch series, with
//!   `patchset_files` and `patchset_hash` (sha256 over the newline-ended
//!   sha256 hex digests of the patches, in order, as KCIDB defines it; ""
//!   for no patches);
//! - one build per (arch, variant, base) kernel, with `config_name` (the
//!   config fragments merged onto tinyconfig) and `compiler` (the
//!   toolchain of the build info);
//! - one test per run, path `epoll_torture.<scenario>`, the status mapped
//!   from the verdict (`status`), the main measurement as `number`, the
//!   evidence and the end of the console log as `log_excerpt` (at most
//!   16384 characters, the schema's limit), our verdict and expectation in
//!   `misc`.
//!
//! Checkout and build ids are content-addressed (the same kernel from two
//! pipelines is one build); test ids carry the pipeline's run id
//! (`EPT_RUN_ID`, else `local-<report time>`). Patch URLs are
//! `$EPT_SOURCE_URL/qemu/variants/...` (e.g. the raw-file URL of the
//! tested commit), else `file://<repository top>/qemu/variants/...`.

use crate::data::Verdict;
use crate::report::{Report, Run};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const ORIGIN: &str = "epoll_torture";
pub const SCHEMA_MAJOR: u64 = 5;
pub const SCHEMA_MINOR: u64 = 3;
/// KCIDB's maxLength of every `log_excerpt`.
pub const LOG_EXCERPT_MAX: usize = 16384;

/// KCIDB test status of a verdict. KCIDB: FAIL = "the test completed and
/// reported the tested code as faulty", ERROR = "the test didn't complete
/// due to a failure in its code, and the status of the tested code is
/// unknown", SKIP = "the test did not run or complete, because it was not
/// applicable". A CRASH is the tested kernel's own Oops/BUG/panic/WARNING/
/// lockdep report (the judge never gives CRASH for a harness failure), so
/// it says the code is faulty: FAIL. Our ERROR is exactly "could not
/// measure, never blamed on the kernel": ERROR.
pub fn status(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail
        | Verdict::Inversion
        | Verdict::FalseNegative
        | Verdict::LostWakeup
        | Verdict::Stall
        | Verdict::Hang
        | Verdict::Crash => "FAIL",
        Verdict::Error => "ERROR",
        Verdict::Unavailable | Verdict::NotApplicable => "SKIP",
    }
}

/// Where to find the patches and how to name this pipeline's tests.
#[derive(Debug, Clone)]
pub struct Context {
    /// The repository top (qemu/variants/ under it).
    pub top: Option<PathBuf>,
    /// Prefix of the patch URLs, without the trailing slash.
    pub url_base: String,
    /// Unique per pipeline run: the tests' ids start with it.
    pub run_id: String,
    /// The report directory (to find the console logs of a merged report).
    pub out_dir: PathBuf,
}

impl Context {
    /// From the environment: EPT_RUN_ID, EPT_SOURCE_URL, the repository top.
    pub fn from_env(rep: &Report, out_dir: &Path) -> Context {
        let env = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
        let top = crate::find_top();
        let url_base = env("EPT_SOURCE_URL")
            .map(|u| u.trim_end_matches('/').to_string())
            .or_else(|| {
                top.as_ref()
                    .and_then(|t| t.canonicalize().ok())
                    .map(|t| format!("file://{}", t.display()))
            })
            .unwrap_or_else(|| "file://.".into());
        Context {
            top,
            url_base,
            run_id: env("EPT_RUN_ID").unwrap_or_else(|| format!("local-{}", rep.generated_unix)),
            out_dir: out_dir.to_path_buf(),
        }
    }
}

// --- SHA-256 (FIPS 180-4), for patchset_hash ---

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The SHA-256 digest of `data` as 64 lowercase hex digits.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// KCIDB's patchset hash of patch contents in application order: the
/// sha256 of the newline-terminated sha256 hex digests; "" for none.
pub fn patchset_hash(patches: &[Vec<u8>]) -> String {
    if patches.is_empty() {
        return String::new();
    }
    let list: String = patches
        .iter()
        .map(|p| format!("{}\n", sha256_hex(p)))
        .collect();
    sha256_hex(list.as_bytes())
}

/// `VARIANT_PATCHES` ("name:sha256prefix name:..."; older logs: PATCHES)
/// as (file name, digest prefix).
pub fn variant_patches(build: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let s = build
        .get("VARIANT_PATCHES")
        .or_else(|| build.get("PATCHES"))
        .cloned()
        .unwrap_or_default();
    s.split_whitespace()
        .filter_map(|x| {
            let (n, h) = x.rsplit_once(':')?;
            Some((n.to_string(), h.to_string()))
        })
        .collect()
}

/// A patch of a variant's series in the repository whose digest starts
/// with `prefix`: (path relative to the top, contents).
fn find_patch(
    top: &Path,
    variant: &str,
    series: Option<&str>,
    name: &str,
    prefix: &str,
) -> Option<(String, Vec<u8>)> {
    let mut cands = Vec::new();
    if let Some(s) = series {
        cands.push(format!("qemu/variants/{variant}/{s}/{name}"));
    }
    cands.push(format!("qemu/variants/{variant}/{name}"));
    // Other series directories (a base series not recorded).
    if let Ok(rd) = std::fs::read_dir(top.join(format!("qemu/variants/{variant}"))) {
        let mut dirs: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        dirs.sort();
        for d in dirs {
            cands.push(format!("qemu/variants/{variant}/{d}/{name}"));
        }
    }
    cands.into_iter().find_map(|rel| {
        let b = std::fs::read(top.join(&rel)).ok()?;
        sha256_hex(&b).starts_with(prefix).then_some((rel, b))
    })
}

fn base_variant(v: &str) -> &str {
    v.split('@').next().unwrap_or(v)
}

/// Characters a KCIDB path component may have.
fn path_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The main measurement of a run: events/ms at the largest producer count
/// (throughput), else the latency maximum in µs (inversion, stall, soak,
/// hung-task).
pub fn number(r: &Run) -> Option<Value> {
    if let Some(p) = r
        .metrics
        .throughput
        .iter()
        .filter(|p| p.events_per_ms.is_finite())
        .max_by(|a, b| a.threads.total_cmp(&b.threads))
    {
        return Some(json!({"value": p.events_per_ms, "unit": "events/ms"}));
    }
    let v = *r.metrics.values.get("lat_max_us")?;
    v.is_finite().then(|| json!({"value": v, "unit": "us"}))
}

/// The test's log excerpt: the evidence, then the end of the console log,
/// within KCIDB's limit.
pub fn excerpt(r: &Run, out_dir: &Path) -> String {
    let ev = crate::junit::evidence_text(r);
    let ev = crate::junit::tail_chars(&ev, LOG_EXCERPT_MAX / 4).to_string();
    let room = LOG_EXCERPT_MAX - ev.chars().count() - 1;
    let log = crate::junit::log_excerpt(r, out_dir, crate::junit::LOG_LINES, room);
    let s = format!("{ev}\n{log}").replace('\0', "");
    crate::junit::tail_chars(&s, LOG_EXCERPT_MAX).to_string()
}

fn finite(m: &BTreeMap<String, f64>) -> Map<String, Value> {
    m.iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect()
}

/// The KCIDB v5 document of a report.
pub fn render(rep: &Report, ctx: &Context) -> Value {
    // Runs without build info (an ERROR before the boot) take it from a
    // run of the same kernel.
    let mut known: BTreeMap<(String, String), &BTreeMap<String, String>> = BTreeMap::new();
    for r in &rep.runs {
        if r.build.contains_key("BASE_KERNELVERSION") {
            known
                .entry((r.arch.clone(), r.variant.clone()))
                .or_insert(&r.build);
        }
    }
    let empty = BTreeMap::new();
    let mut checkouts: BTreeMap<String, Value> = BTreeMap::new();
    let mut builds: BTreeMap<String, Value> = BTreeMap::new();
    let mut tests = Vec::new();
    let names = crate::junit::case_names(&rep.runs);
    for (r, name) in rep.runs.iter().zip(&names) {
        let b = if r.build.contains_key("BASE_KERNELVERSION") {
            &r.build
        } else {
            known
                .get(&(r.arch.clone(), r.variant.clone()))
                .copied()
                .unwrap_or(&empty)
        };
        let g = |k: &str| b.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        let variant = base_variant(&r.variant).to_string();
        let kver = g("BASE_KERNELVERSION");
        let series: Option<String> =
            (!kver.is_empty()).then(|| kver.split('.').take(2).collect::<Vec<_>>().join("."));
        let base = if g("BASE_PKG").is_empty() {
            "unknown".to_string()
        } else {
            format!("{} {}", g("BASE_PKG"), g("BASE_DEB_VERSION"))
        };

        // The checkout: base + the variant's patches.
        let listed = variant_patches(b);
        let mut files = Vec::new();
        let mut contents = Vec::new();
        for (name, prefix) in &listed {
            if let Some((rel, data)) = ctx
                .top
                .as_deref()
                .and_then(|t| find_patch(t, &variant, series.as_deref(), name, prefix))
            {
                files.push(json!({"name": name, "url": format!("{}/{rel}", ctx.url_base)}));
                contents.push(data);
            }
        }
        let all_found = contents.len() == listed.len();
        let hash = patchset_hash(&contents);
        let short = if listed.is_empty() {
            "nopatches".to_string()
        } else if all_found {
            hash[..16].to_string()
        } else {
            // Not in this tree: the digest prefixes name the series.
            listed
                .iter()
                .map(|(_, h)| h.as_str())
                .collect::<Vec<_>>()
                .join("-")
        };
        let checkout_id = format!("{ORIGIN}:{base}/{variant}/{short}").replace(' ', "_");
        checkouts.entry(checkout_id.clone()).or_insert_with(|| {
            let mut c = json!({
                "id": checkout_id,
                "origin": ORIGIN,
                "tree_name": if g("BASE_PKG").is_empty() { "unknown".to_string() } else { g("BASE_PKG") },
                "comment": format!(
                    "{base} (kernel {}) + epoll-torture variant {variant}",
                    if kver.is_empty() { "?" } else { &kver }
                ),
                "patchset_files": files,
                "valid": !b.is_empty(),
                "misc": {
                    "base_pkg": g("BASE_PKG"),
                    "base_deb_version": g("BASE_DEB_VERSION"),
                    "base_kernelversion": kver,
                    "variant": variant,
                    "variant_patches": g("VARIANT_PATCHES"),
                },
            });
            if all_found {
                c["patchset_hash"] = json!(hash);
            }
            c
        });

        // The build: one kernel per (arch, base, variant, debug).
        let key = g("KEY");
        let build_id = format!(
            "{ORIGIN}:{}/{}/{}",
            r.arch,
            checkout_id.trim_start_matches(&format!("{ORIGIN}:")),
            if key.is_empty() { "unbuilt" } else { &key }
        );
        builds.entry(build_id.clone()).or_insert_with(|| {
            let debug = g("DEBUG") == "1";
            let tool: BTreeMap<&str, &str> = b
                .get("TOOLCHAIN")
                .map(|t| {
                    t.split_whitespace()
                        .filter_map(|x| x.split_once('='))
                        .collect()
                })
                .unwrap_or_default();
            let compiler = match (tool.get("clang"), tool.get("rustc")) {
                (Some(c), Some(rs)) => format!(
                    "clang {c}, rustc {rs}{}",
                    tool.get("bindgen")
                        .map(|x| format!(", bindgen {x}"))
                        .unwrap_or_default()
                ),
                _ => g("TOOLCHAIN"),
            };
            let mut o = json!({
                "id": build_id,
                "checkout_id": checkout_id,
                "origin": ORIGIN,
                "architecture": path_part(&r.arch).to_lowercase().replace('-', "_"),
                "config_name": format!(
                    "tinyconfig+common.config+{}.config{}",
                    r.arch,
                    if debug { "+debug.config" } else { "" }
                ),
                "command": format!(
                    "{}{}bash qemu/build-kernel.sh {} {variant}",
                    series.as_ref().map(|s| format!("BASE={s} ")).unwrap_or_default(),
                    if debug { "DEBUG=1 " } else { "" },
                    r.arch
                ),
                "misc": {
                    "kernel_release": g("KERNEL_RELEASE"),
                    "lock_type": g("LOCK_TYPE"),
                    "toolchain": g("TOOLCHAIN"),
                    "cache_key": key,
                },
            });
            if !compiler.is_empty() {
                o["compiler"] = json!(compiler);
            }
            let st = if !b.is_empty() {
                Some("PASS")
            } else if r.verdict == Verdict::Unavailable {
                Some("SKIP")
            } else if r.reason.starts_with("image build failed") {
                Some("ERROR")
            } else {
                None
            };
            if let Some(st) = st {
                o["status"] = json!(st);
            }
            o["comment"] = json!(format!(
                "{} {variant} kernel {} on {base}{}",
                r.arch,
                g("KERNEL_RELEASE"),
                if g("LOCK_TYPE").is_empty() {
                    String::new()
                } else {
                    format!(", ep->lock is {}", g("LOCK_TYPE"))
                }
            ));
            o
        });

        // The test.
        let mut t = json!({
            "id": format!("{ORIGIN}:{}/{name}", ctx.run_id),
            "build_id": build_id,
            "origin": ORIGIN,
            "path": format!("{ORIGIN}.{}", path_part(&r.scenario)),
            "status": status(r.verdict),
            "comment": format!("{}: {}", r.verdict, r.reason),
            "log_excerpt": excerpt(r, &ctx.out_dir),
            "misc": {
                "cell": r.cell,
                "arch": r.arch,
                "variant": r.variant,
                "scenario": r.scenario,
                "repeat": r.repeat,
                "verdict": r.verdict,
                "expected": r.expected,
                "meets": r.meets,
                "reason": r.reason,
                "vm_rc": r.vm_rc,
                "log": r.log,
                "metrics": finite(&r.metrics.values),
            },
        });
        if r.elapsed_s > 0.0 && r.elapsed_s.is_finite() {
            t["duration"] = json!(r.elapsed_s);
        }
        if let Some(n) = number(r) {
            t["number"] = n;
        }
        // No nulls in KCIDB data, misc included.
        if let Some(m) = t["misc"].as_object_mut() {
            m.retain(|_, v| !v.is_null());
        }
        tests.push(t);
    }
    json!({
        "version": {"major": SCHEMA_MAJOR, "minor": SCHEMA_MINOR},
        "checkouts": checkouts.into_values().collect::<Vec<_>>(),
        "builds": builds.into_values().collect::<Vec<_>>(),
        "tests": tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            sha256_hex(&million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn patchset_hash_is_kcidbs() {
        // `sha256sum a b | cut -c-64 | sha256sum | cut -c-64` for the files
        // "abc" and "" equals sha256("<sha(abc)>\n<sha()>\n").
        let want = sha256_hex(format!("{}\n{}\n", sha256_hex(b"abc"), sha256_hex(b"")).as_bytes());
        assert_eq!(patchset_hash(&[b"abc".to_vec(), vec![]]), want);
        assert_eq!(patchset_hash(&[]), "");
    }

    #[test]
    fn status_table() {
        let got: Vec<(&str, &str)> = Verdict::ALL
            .iter()
            .map(|v| (v.name(), status(*v)))
            .collect();
        assert_eq!(
            got,
            [
                ("PASS", "PASS"),
                ("FAIL", "FAIL"),
                ("ERROR", "ERROR"),
                ("INVERSION", "FAIL"),
                ("FALSE_NEGATIVE", "FAIL"),
                ("LOST_WAKEUP", "FAIL"),
                ("STALL", "FAIL"),
                ("HANG", "FAIL"),
                ("CRASH", "FAIL"),
                ("NOT_APPLICABLE", "SKIP"),
                ("UNAVAILABLE", "SKIP"),
            ]
        );
    }

    fn run(variant: &str, verdict: Verdict, build: &[(&str, &str)]) -> Run {
        Run {
            cell: format!("x86_64-{variant}-inversion-r1"),
            arch: "x86_64".into(),
            variant: variant.into(),
            scenario: "inversion".into(),
            repeat: 1,
            verdict,
            expected: vec![verdict],
            meets: true,
            reason: "why".into(),
            findings: vec![],
            waits: vec![],
            notes: vec![],
            metrics: Default::default(),
            build: build
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: None,
            elapsed_s: 3.5,
            vm_rc: Some(0),
            boot: None,
        }
    }

    #[test]
    fn document_links_patches_builds_and_tests() {
        let top = std::env::temp_dir().join(format!("ept-kcidb-{}", std::process::id()));
        std::fs::create_dir_all(top.join("qemu/variants/rwlock/6.12")).unwrap();
        std::fs::write(top.join("qemu/variants/rwlock/0001-x.patch"), "abc").unwrap();
        std::fs::write(top.join("qemu/variants/rwlock/6.12/0001-x.patch"), "old").unwrap();
        std::fs::write(
            top.join("console.log"),
            format!("{}\n", "y".repeat(199)).repeat(2_000),
        )
        .unwrap();
        let digest = sha256_hex(b"abc");
        let patches = format!("0001-x.patch:{} ", &digest[..12]);
        let info = [
            ("BASE_PKG", "linux-source-7.3"),
            ("BASE_DEB_VERSION", "7.3.4-1~bpo13+1"),
            ("BASE_KERNELVERSION", "7.3.4"),
            ("KERNEL_RELEASE", "7.3.4"),
            ("VARIANT_PATCHES", patches.as_str()),
            ("LOCK_TYPE", "rwlock_t"),
            ("TOOLCHAIN", "rustc=1.95.0 bindgen=0.73.2 clang=19.1.7"),
            ("KEY", "0123456789abcdef"),
            ("DEBUG", "0"),
        ];
        let mut inv = run("rwlock", Verdict::Inversion, &info);
        inv.metrics.values.insert("lat_max_us".into(), 76516.0);
        inv.log = Some(top.join("console.log").display().to_string());
        let mut err = run("rwlock", Verdict::Error, &[]);
        err.scenario = "smoke".into();
        err.cell = "x86_64-rwlock-smoke-r1".into();
        let mut un = run("lockless", Verdict::Unavailable, &[]);
        un.reason = "variant unavailable for this base".into();
        let rep = Report::new(vec![inv, err, un], None);
        let ctx = Context {
            top: Some(top.clone()),
            url_base: "https://example.invalid/raw/abc".into(),
            run_id: "ci-7".into(),
            out_dir: top.join("report"),
        };
        let d = render(&rep, &ctx);
        assert_eq!(d["version"], json!({"major": 5, "minor": 3}));
        let co = d["checkouts"].as_array().unwrap();
        let rw = co
            .iter()
            .find(|c| c["misc"]["variant"] == "rwlock")
            .unwrap();
        assert_eq!(
            rw["patchset_hash"],
            json!(patchset_hash(&[b"abc".to_vec()]))
        );
        assert_eq!(
            rw["patchset_files"],
            json!([{"name": "0001-x.patch",
                    "url": "https://example.invalid/raw/abc/qemu/variants/rwlock/0001-x.patch"}])
        );
        assert!(rw["id"].as_str().unwrap().starts_with("epoll_torture:"));
        let builds = d["builds"].as_array().unwrap();
        // The ERROR run without build info shares the kernel of its pair.
        assert_eq!(builds.len(), 2, "{builds:?}");
        let t = d["tests"].as_array().unwrap();
        assert_eq!(t[0]["build_id"], t[1]["build_id"]);
        let b = builds.iter().find(|b| b["id"] == t[0]["build_id"]).unwrap();
        assert_eq!(b["compiler"], "clang 19.1.7, rustc 1.95.0, bindgen 0.73.2");
        assert_eq!(b["config_name"], "tinyconfig+common.config+x86_64.config");
        assert_eq!(b["status"], "PASS");
        assert_eq!(b["checkout_id"], rw["id"]);
        let lb = builds.iter().find(|b| b["id"] == t[2]["build_id"]).unwrap();
        assert_eq!(lb["status"], "SKIP");
        assert_eq!(
            (
                t[0]["status"].as_str(),
                t[1]["status"].as_str(),
                t[2]["status"].as_str()
            ),
            (Some("FAIL"), Some("ERROR"), Some("SKIP"))
        );
        assert_eq!(t[0]["id"], "epoll_torture:ci-7/x86_64.rwlock.inversion.r1");
        assert_eq!(t[0]["path"], "epoll_torture.inversion");
        assert_eq!(t[0]["number"], json!({"value": 76516.0, "unit": "us"}));
        assert_eq!(t[0]["duration"], 3.5);
        assert_eq!(t[0]["misc"]["meets"], true);
        let ex = t[0]["log_excerpt"].as_str().unwrap();
        // 200 lines of 200 characters: cut to KCIDB's limit, keeping the end.
        let n = ex.chars().count();
        assert!(n <= LOG_EXCERPT_MAX && n > LOG_EXCERPT_MAX - 400, "{n}");
        assert!(ex.starts_with("why\n") && ex.ends_with(&"y".repeat(199)));
        assert!(t[1].get("number").is_none());
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn patch_list() {
        let b: BTreeMap<String, String> = [(
            "VARIANT_PATCHES".to_string(),
            "0001-a.patch:95031cd3c6a0 0002-b:c.patch:4c5f92b77925 ".to_string(),
        )]
        .into();
        assert_eq!(
            variant_patches(&b),
            [
                ("0001-a.patch".to_string(), "95031cd3c6a0".to_string()),
                ("0002-b:c.patch".to_string(), "4c5f92b77925".to_string())
            ]
        );
    }
}
