//! `ept run`'s boots, through the built binary in a scratch repository top
//! whose qemu/mkimage.sh and qemu/run-vm.sh are stand-ins (no VM): a
//! cell's shareable runs share one boot in the data's order, a run whose
//! kernel lacks what it needs is NOT_APPLICABLE without a boot (`--force`
//! runs it), and the runs a hung run kept from starting are re-queued in a
//! new boot. The stand-in run-vm.sh writes a console log the way the real
//! one does (header, run markers, host notes); in the first boot of a cell
//! the stall run hangs (flat heartbeats, then the run deadline).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ept-boots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("qemu")).unwrap();
    std::fs::create_dir_all(d.join("img")).unwrap();
    d
}

const MKIMAGE: &str = r##"#!/bin/bash
# stand-in: an image path beside build-info.env with a 7.x kernel's FEATURES
d="$EPT_TOP/img/$1-$2"; mkdir -p "$d"
echo 'FEATURES="module kunit preempt_rt cfs_throttle_deferred ep_seqcount ep_lock=spinlock_t"' >"$d/build-info.env"
echo "$d/initramfs.cpio.gz"
"##;

/// A console log per plan: each run passes, except `stall` in a boot of
/// more than one run, which hangs (the host's run deadline ends the boot).
const RUN_VM: &str = r##"#!/bin/bash
while [ $# -gt 0 ]; do case $1 in --plan) plan=$2; shift;; --log) log=$2; shift;; esac; shift; done
cp "$plan" "$EPT_TOP/plans.$(basename "$plan")"
mapfile -t runs < <(sed -nE 's/^# ept-run-deadline scenario=([^ ]+) repeat=([0-9]+).*/\1 \2/p' "$plan")
t=1
ts() { t=$((t + 1)); printf '[+%04d.000]' $t; }
{
	echo "# epoll-torture console log"
	echo "# ARCH=$1"
	echo "# VARIANT=$2"
	echo "# BASE_KERNELVERSION=7.3.4"
	echo "# deadline=900 idle=0 plan=$(basename "$plan")"
	echo "# host: load start loadavg=0.10,0.10,0.10 ncpu=2"
	echo "$(ts) EPT: guest up release=7.3.4 version=#1 SMP PREEMPT_RT cpus=2"
	echo "$(ts) EPT: plan begin"
	echo "$(ts) EPT: plan runs=$(for r in "${runs[@]}"; do set -- $r; printf '%s:%s,' $1 $2; done)"
} >"$log"
for r in "${runs[@]}"; do
	set -- $r
	echo "$(ts) EPT: run begin scenario=$1 repeat=$2" >>"$log"
	if [ "$1" = stall ] && [ ${#runs[@]} -gt 1 ]; then
		{
			echo "$(ts) [   10.000000] epoll_torture: KTAP version 1"
			echo "$(ts) [   10.000001] epoll_torture: 1..1"
			for i in 1 2 3 4 5 6 7 8; do
				echo "$(ts) [   1$i.000000] epoll_torture: # heartbeat scenario=stall t_ms=${i}000 progress=5"
			done
			t=$((t + 300))
			echo "# host: run deadline 240s of scenario=stall repeat=$2 reached after ${t}s: asking for SysRq-w and SysRq-t"
			echo "# host: load end loadavg=1.00,0.50,0.20 wall_s=$t.0 qemu_cpu_s=$t.0 vcpu_wait_s=1.0"
			echo "# host: HANG: killing QEMU after ${t}s"
		} >>"$log"
		exit 124
	fi
	if [ "$1" = stall ]; then
		{
			echo "$(ts) [   10.000000] epoll_torture: KTAP version 1"
			echo "$(ts) [   10.000001] epoll_torture: 1..1"
			echo "$(ts) [   12.000000] epoll_torture: # heartbeat scenario=stall t_ms=2000 progress=50"
			echo "$(ts) [   14.000000] epoll_torture: ok 1 stall"
		} >>"$log"
	fi
	echo "$(ts) EPT: run end scenario=$1 repeat=$2 rc=0" >>"$log"
done
{
	echo "$(ts) EPT: plan end rc=0"
	echo "# host: load end loadavg=1.00,0.50,0.20 wall_s=$t.0 qemu_cpu_s=$t.0 vcpu_wait_s=1.0"
	echo "# host: QEMU exited after ${t}s"
} >>"$log"
"##;

fn top() -> PathBuf {
    let d = scratch();
    for (name, text) in [("mkimage.sh", MKIMAGE), ("run-vm.sh", RUN_VM)] {
        std::fs::write(d.join("qemu").join(name), text).unwrap();
    }
    d
}

fn ept(top: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ept"))
        .args(args)
        .env("EPT_TOP", top)
        .env_remove("ISOLATE")
        .env_remove("FORCE")
        .current_dir(top)
        .output()
        .unwrap()
}

fn verdicts(top: &Path) -> Vec<(String, String, String)> {
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(top.join("out/report/report.json")).unwrap())
            .unwrap();
    rep["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["cell"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
                r["boot"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[test]
fn shared_boot_not_applicable_and_requeue() {
    let top = top();
    let o = ept(
        &top,
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "rwlock",
            "--scenarios",
            "stall smoke cfs-stall throughput",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    // cfs-stall cannot apply to a kernel that defers CFS throttling.
    let v = verdicts(&top);
    let find = |cell: &str| {
        v.iter()
            .find(|x| x.0 == cell)
            .unwrap_or_else(|| panic!("{cell}: {v:?}\n{out}\n{err}"))
            .clone()
    };
    let na = find("x86_64-rwlock-cfs-stall-r1");
    assert_eq!(
        (na.1.as_str(), na.2.as_str()),
        ("NOT_APPLICABLE", "-"),
        "{out}"
    );
    assert!(
        out.contains("needs a kernel without cfs_throttle_deferred"),
        "{out}"
    );
    // One boot for the rest, in the data's order (stall last).
    let plan = std::fs::read_to_string(top.join("plans.x86_64-rwlock-r1.sh")).unwrap();
    assert!(
        plan.contains("EPT: plan runs=smoke:1,throughput:1,stall:1"),
        "{plan}"
    );
    assert_eq!(find("x86_64-rwlock-smoke-r1").2, "x86_64-rwlock-r1");
    // The stall hangs its boot: the host's deadline says HANG.
    let st = find("x86_64-rwlock-stall-r1");
    assert_eq!(
        (st.1.as_str(), st.2.as_str()),
        ("HANG", "x86_64-rwlock-r1"),
        "{out}\n{err}"
    );
    assert_eq!(v.len(), 4, "{v:?}");
    // --force runs cfs-stall; with stall hanging first, cfs-stall (after it
    // in the order) never starts and is re-queued in a boot of its own.
    let o = ept(
        &top,
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "rwlock",
            "--scenarios",
            "stall cfs-stall",
            "--force",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("ept: boot x86_64-rwlock-r1: 1 run(s) never started after x86_64-rwlock-stall-r1 (HANG) ended the boot: re-queued in boot x86_64-rwlock-r1-b2 (cfs-stall r1)"),
        "{err}"
    );
    let v = verdicts(&top);
    assert_eq!(
        v,
        [
            (
                "x86_64-rwlock-stall-r1".into(),
                "HANG".into(),
                "x86_64-rwlock-r1".into()
            ),
            (
                "x86_64-rwlock-cfs-stall-r1".into(),
                "PASS".into(),
                "x86_64-rwlock-r1-b2".into()
            ),
        ]
    );
    // --isolate: a boot per run, named after it.
    let o = ept(
        &top,
        &[
            "run",
            "--archs",
            "x86_64",
            "--variants",
            "rwlock",
            "--scenarios",
            "smoke cfs-stall",
            "--isolate",
            "--force",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = verdicts(&top);
    assert_eq!(
        v.iter().map(|x| x.2.as_str()).collect::<Vec<_>>(),
        ["x86_64-rwlock-smoke-r1", "x86_64-rwlock-cfs-stall-r1"]
    );
    std::fs::remove_dir_all(&top).unwrap();
}
