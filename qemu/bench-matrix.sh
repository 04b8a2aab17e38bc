#!/usr/bin/env bash
# Matrix benchmark: wall time of the default `make run` matrix, warm (this
# machine's cache as it is) or cold (COLD=1: an empty build cache; the
# downloaded source .debs are reused, host packages are not reinstalled).
# Writes qemu/bench-matrix-warm.md or qemu/bench-matrix-cold.md with the run's own output and
# verdict table appended.
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
out=$(mktemp)
say "$mode matrix: make run (default ARCHS, VARIANTS, SCENARIOS)"
t0=$(date +%s)
make run 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - t0 ))
res="$EPT_TOP/qemu/bench-matrix-$mode.md"
{
	echo "# Matrix benchmark ($mode)"
	echo
	echo "Made by \`qemu/bench-matrix.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, TCG."
	echo "Wall time of \`make run\` ($mode): **${secs} s** (exit status $rc: 0 = every cell met its expectation)."
	[ "$mode" = cold ] && echo "\`ept run\` boots a cell's VMs while the next kernels build, so in a cold run the first cells' timings and throughput share the host with a kernel build."
	echo
	echo '```text'
	grep -E '^\[[0-9]+/[0-9]+\]|^ept:|passed|failed|MISMATCH' "$out" | tail -n 80
	echo '```'
	echo
	[ -f out/report/report.md ] && sed -n '1,80p' out/report/report.md
} >"$res"
say "wrote $res (${secs} s, exit $rc)"
rm -f "$out"
[ -n "${cold:-}" ] && rm -rf "$cold"
exit $rc
