#!/usr/bin/env bash
# Matrix benchmark: wall time of the default `make run` matrix, warm (this
# machine's cache as it is) or cold (COLD=1: an empty build cache; the
# downloaded source .debs are reused, host packages are not reinstalled),
# with the time per scenario and the verdict counts. One results file,
# qemu/bench-matrix-results.md: a history table (one row per benchmark,
# before and after a change) and, per mode, the latest run's details.
#
#   qemu/bench-matrix.sh          # warm; COLD=1 cold (KEEP=1 keeps its cache); make run's knobs apply
set -uo pipefail
EPT_TAG=bench-matrix
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
mode=warm
if [ "${COLD:-0}" = 1 ]; then
	mode=cold
	cold=$(mktemp -d "${TMPDIR:-/tmp}/ept-cold.XXXXXX")
	mkdir -p "$cold/debs"; cp -l "$EPT_CACHE"/debs/*.deb "$cold/debs/" 2>/dev/null || true
	export EPT_CACHE=$cold
fi
mkdir -p "$EPT_CACHE/locks"
export EPT_VM_LOCK=${EPT_VM_LOCK:-$EPT_CACHE/locks/vm.lock}
out=$(mktemp)
say "$mode matrix: make run (ARCHS=${ARCHS:-default} VARIANTS=${VARIANTS:-default} SCENARIOS=${SCENARIOS:-default})"
l0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s)
make run 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - t0 ))
res="$EPT_TOP/qemu/bench-matrix-results.md"
rep=out/report/report.json
boots=$(grep -c '^ept: boot ' "$out")
requeued=$(grep -c 're-queued in boot' "$out")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo +)
summary=$(python3 - "$rep" <<'PY'
import json, sys
from collections import Counter
runs = json.load(open(sys.argv[1]))["runs"]
v = Counter(r["verdict"] for r in runs)
print("%d|%d|%s" % (len(runs), sum(r["meets"] for r in runs),
      " ".join("%s %d" % kv for kv in sorted(v.items(), key=lambda kv: -kv[1]))))
PY
)
detail=$(python3 - "$rep" <<'PY'
import json, sys
from collections import defaultdict
runs = json.load(open(sys.argv[1]))["runs"]
by = defaultdict(list)
for r in runs:
    by[r["scenario"]].append(r)
print("| scenario | runs | run s (sum) | run s (min / median / max) | verdicts |")
print("|---|---|---|---|---|")
for s, rs in sorted(by.items()):
    t = sorted(r["elapsed_s"] for r in rs)
    vs = defaultdict(int)
    for r in rs:
        vs[r["verdict"]] += 1
    print("| %s | %d | %.0f | %.0f / %.0f / %.0f | %s |" % (s, len(rs), sum(t), t[0], t[(len(t) - 1) // 2], t[-1],
          " ".join("%s %d" % kv for kv in sorted(vs.items(), key=lambda kv: -kv[1]))))
PY
)
IFS='|' read -r nruns nmeet verdicts <<<"$summary"
row="| $(date -u +%Y-%m-%d) | $mode | $commit | $secs | $nruns | $boots | $requeued | $nmeet | $verdicts | $l0 | $rc |"

# The history rows of the file so far, then this one.
hist=$(mktemp)
[ -f "$res" ] && sed -n '/^## History/,/^## /p' "$res" | grep -E '^\| [0-9]{4}-' >"$hist"
echo "$row" >>"$hist"
# The other mode's latest details stay.
other=$([ $mode = warm ] && echo cold || echo warm)
keep=$(mktemp)
[ -f "$res" ] && awk -v h="## Latest $other run" '/^## / { on = ($0 == h) } on' "$res" >"$keep"
{
	echo "# Matrix benchmark"
	echo
	echo "Made by \`qemu/bench-matrix.sh\` (warm: this machine's cache; \`COLD=1\`: an empty build cache,"
	echo "downloaded .debs reused), $(nproc) cores, TCG, the default \`make run\` matrix unless the row says."
	echo "A cold run boots a cell while the next kernels build, so its first cells share the host with a build."
	echo
	echo "## History"
	echo
	echo "| date | mode | commit | wall s | runs | boots | re-queued | meet | verdicts | load1 at start | exit |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$hist"
	echo
	echo "The 2026-11-27 rows are from before a cell's scenarios shared one boot: one boot per"
	echo "(arch, variant, scenario), 2 arches x 3 variants (spinlock, rwlock, lockless) x 6 scenarios"
	echo "(smoke, inversion, stall, throughput, epoll-selftests, cfs-stall), every run to its full duration"
	echo "and each cfs-stall a 60 s run on a base where its mechanism is absent. Since 2026-12-01 the"
	echo "default matrix is 2 arches x 3 variants (spinlock, spinlock-2025, rwlock) x 7 scenarios (wakeup"
	echo "added), one boot per cell, every run ending when its verdict is settled (README: the budgets)."
	echo "The 2026-12-02 cold rows: a491689 built one arch after the other at the VMs' priority; c629b13"
	echo "trimmed the kernel configs (qemu/bench-config-results.md); 6218f35 built both arches at once"
	echo "(nice 10 and 19); 051ea31 and later: the first arch at nice 19, the others at SCHED_IDLE,"
	echo "riscv64 first (README: how builds are cached)."
	echo
	if [ $mode = warm ]; then
		echo "## Latest warm run"
		echo
		echo "$(date -u +%Y-%m-%d), commit $commit: **${secs} s**, $boots boots, exit $rc. Time per scenario (run begin to run end):"
		echo
		echo "$detail"
		echo
		cat "$keep"
	else
		cat "$keep"
		echo "## Latest cold run"
		echo
		echo "$(date -u +%Y-%m-%d), commit $commit: **${secs} s**, $boots boots, exit $rc. Time per scenario (run begin to run end):"
		echo
		echo "$detail"
		echo
	fi
	echo "## Latest verdicts ($mode)"
	echo
	sed -n '/^## Verdicts/,/^## /p' out/report/report.md | sed '1d;$d'
} >"$res.tmp"
mv "$res.tmp" "$res"
rm -f "$hist" "$keep"
say "wrote $res (${secs} s, exit $rc)"
rm -f "$out"
if [ -n "${cold:-}" ]; then
	# KEEP=1: keep the cold run's cache (EPT_CACHE=it reuses its kernels).
	if [ "${KEEP:-0}" = 1 ]; then say "kept the cold cache: $cold"; else rm -rf "$cold"; fi
fi
exit $rc
