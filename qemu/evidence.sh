#!/usr/bin/env bash
# Repeat evidence for the module (issue #4): REPEATS runs of `inversion`
# and `stall` per (arch, variant), all runs of a cell in one boot (the
# stall runs rmmod after each hang, which breaks the cycle), then a tally
# per cell from the console logs: KTAP verdicts, the latency maximum per
# run, kernel stall reports. Writes qemu/evidence-results.md; the rows of
# cells not measured this time are kept from the file's previous table
# (so VARIANTS=lockless adds its rows to the others).
#
#   qemu/evidence.sh            # ARCHS, VARIANTS, REPEATS (20), DURATION (15),
#                               # LINGER (12), SCENARIOS (inversion stall)
#
# Runs one VM at a time: the latency verdicts need the host's cores.
set -uo pipefail
EPT_TAG=evidence
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
ARCHS=${ARCHS:-x86_64 riscv64}
VARIANTS=${VARIANTS:-rwlock spinlock lockless}
SCENARIOS=${SCENARIOS:-inversion stall}
REPEATS=${REPEATS:-20}
DURATION=${DURATION:-15}
# After a hang verdict: long enough for the RCU stall detector (10 s
# after the probe's grace period starts) to report.
LINGER=${LINGER:-12}
outdir=out/evidence
mkdir -p "$outdir"
res=qemu/evidence-results.md
rows=$(mktemp)
# Previous rows: "| a | b | ... |" table lines back to "a|b|...".
[ -f "$res" ] && grep -E '^\| (x86_64|riscv64) \|' "$res" | sed 's/^| //; s/ |$//; s/ | /|/g' >"$rows"
t_all=$(date +%s)

# tally LOG SCENARIO: one table row's data columns.
tally() {
	local log=$1 sc=$2
	local runs notok hang errs rcu hung lat
	runs=$(grep -c 'ept-run: result after' "$log")
	notok=$(grep -c 'ept-run: result after .*: not ok' "$log")
	hang=$(grep -c 'ept-run: result after .*: not ok .*hang' "$log")
	errs=$(grep -c 'ept-run: no result after' "$log")
	rcu=$(grep -cE 'rcu: INFO: rcu_(preempt|sched) (self-)?detected stall|rcu_preempt detected stalls' "$log")
	hung=$(grep -c 'INFO: task .* blocked for more than' "$log")
	# Latency maximum per run (ms), from the final metrics lines.
	lat=$(grep -o "# metrics scenario=$sc hang=0 .*" "$log" | grep -o 'lat_max_us=[0-9]*' |
		cut -d= -f2 | sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.0f / %.0f / %.0f", a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000; else printf "-"}')
	echo "$runs|$notok|$hang|$errs|$rcu|$hung|$lat"
}

for arch in $ARCHS; do
	for variant in $VARIANTS; do
		for sc in $SCENARIOS; do
			steps=$(mktemp)
			cat >"$steps" <<-EOF
				#!/bin/sh
				REPEATS=$REPEATS LINGER=$LINGER EPT_PARAMS="duration_s=$DURATION"
				. /ept/scenarios/$sc.sh
			EOF
			log="$outdir/$arch-$variant-$sc.log"
			deadline=$((REPEATS * (DURATION + LINGER + 40) + 180))
			say "$arch/$variant $sc: $REPEATS runs of ${DURATION} s in one boot (deadline ${deadline}s)"
			t0=$(date +%s)
			bash qemu/run-vm.sh "$arch" "$variant" --steps "$steps" --deadline "$deadline" --log "$log" >"$log.host" 2>&1
			rc=$?
			secs=$(( $(date +%s) - t0 ))
			rm -f "$steps"
			row=$(tally "$log" "$sc")
			say "$arch/$variant $sc: vm rc=$rc in ${secs}s; runs|not_ok|hang|no_result|rcu_stall|hung_task|lat_ms = $row"
			grep -v "^$arch|$variant|$sc|" "$rows" >"$rows.tmp"
			echo "$arch|$variant|$sc|$row|$rc|$secs|$REPEATS x $DURATION s|$(date -u +%Y-%m-%d)" >>"$rows.tmp"
			sort -o "$rows" "$rows.tmp"; rm -f "$rows.tmp"
		done
	done
done
secs=$(( $(date +%s) - t_all ))

{
	echo "# Module evidence: repeated inversion and stall runs"
	echo
	echo "Made by \`qemu/evidence.sh\` (defaults: REPEATS=20 DURATION=15 LINGER=12; each row says its"
	echo "repeats x duration and date), $(nproc) cores, TCG, one 2-vCPU VM at a time, all runs of a cell"
	echo "in one boot. The last invocation took ${secs} s."
	echo "Kernel: $(. "$(qemu/build-kernel.sh x86_64 spinlock 2>/dev/null)/build-info.env"; echo "$BASE_PKG $BASE_DEB_VERSION"), variants as in \`qemu/variants/\`."
	echo "Module defaults otherwise (inversion: hog burst 100 ms every 250 ms, threshold 50 %;"
	echo "stall: hang = no consumer progress for 5 s). Logs: \`out/evidence/\`."
	echo
	echo "- **not ok**: runs whose KTAP result is \`not ok\` (inversion: the latency signature; stall: a hang)."
	echo "- **hang**: of those, hangs declared by the module's watchdog."
	echo "- **no result**: runs that gave no KTAP result in time (harness timeout)."
	echo "- **RCU stall / hung task**: kernel reports in the cell's console log (all runs)."
	echo "- **max latency**: per-run maximum of the consumer's vfs_poll() latency over completed runs: min / median / max (ms)."
	echo "- The stall scenario never gets a hung-task report: its blocked threads wait in TASK_RTLOCK_WAIT and"
	echo "  khungtaskd's own timer dies with the ktimers threads; \`SCENARIOS=hung-task\` makes one (README)."
	echo
	echo "| arch | variant | scenario | runs | not ok | hang | no result | RCU stall reports | hung-task reports | max latency ms (min / median / max) | VM exit | VM s | repeats x duration | date |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	while IFS='|' read -r a v s r n h e rc ht lat vrc vs rd d; do
		echo "| $a | $v | $s | $r | $n | $h | $e | $rc | $ht | $lat | $vrc | $vs | $rd | $d |"
	done <"$rows"
} >"$res"
rm -f "$rows"
say "wrote $res (${secs} s)"
cat "$res"
