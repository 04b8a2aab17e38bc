#!/usr/bin/env bash
# Dry run of the CI pipelines (.github/workflows/epoll-torture.yml and
# .gitlab-ci.yml) on this machine: runs exactly the commands their jobs
# run, on a tiny matrix of one arch in SHARDS shards, then the merge job's
# commands; then one unsharded run of the same cells, and checks that the
# merged report equals it (verdict, expectation and meets per cell;
# timestamps and timings ignored). Ends with qemu/validate-ci.sh on the
# merged report (junit.xml, kcidb.json, both pipeline files).
#
#   qemu/ci-dryrun.sh
#
# Knobs: ARCH (x86_64), VARIANTS ("spinlock rwlock"), SCENARIOS (smoke),
#        SHARDS (2), BASE; EPT_VM_LOCK=FILE: hold `flock FILE` around every
#        command that boots VMs (one VM at a time on a shared machine).
# The commands are kept here as text and must appear verbatim in both
# pipeline files (checked first), so the two cannot drift apart.
# Writes what the jobs write: out/shards/ (emptied first), out/logs/,
# out/report/; the unsharded run goes to out/ci-dryrun/unsharded/.
# Exit 0 when every check passed; prints "N passed, N failed".
set -uo pipefail
EPT_TAG=ci-dryrun
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
t_start=$(date +%s)

# The pipelines' variables (their job environment).
export ARCH=${ARCH:-x86_64}
export VARIANTS=${VARIANTS:-spinlock rwlock}
export SCENARIOS=${SCENARIOS-smoke}
export SHARDS=${SHARDS:-2}
export BASE=${BASE:-7}
export EPT_RUN_ID=${EPT_RUN_ID:-dryrun-$t_start}

# --- the job commands, verbatim ---
PREPARE='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make git zstd >/dev/null'
SHARD_CMDS=(
	"$PREPARE"
	'make host-tool CARGO=cargo'
	'mkdir -p "out/shards/$ARCH-$SHARD"'
	'selftests/host/target/release/ept run --archs "$ARCH" --variants "$VARIANTS" ${SCENARIOS:+--scenarios "$SCENARIOS"} --shard "$SHARD/$SHARDS" --out "out/shards/$ARCH-$SHARD/report" --logs "out/shards/$ARCH-$SHARD/logs" --json-progress > "out/shards/$ARCH-$SHARD/progress.jsonl"'
)
MERGE_CMDS=(
	'cargo build --release --locked --manifest-path selftests/host/Cargo.toml'
	'mkdir -p out/logs && cp out/shards/*/logs/*.log out/logs/ 2>/dev/null || true'
	'selftests/host/target/release/ept merge --out out/report out/shards/*/report/report.json'
)

pass=0 fail=0
result() { # name rc [detail]
	if [ "$2" = 0 ]; then pass=$((pass + 1)); printf '[ci-dryrun] ok   %-46s %s\n' "$1" "${3:-}"
	else fail=$((fail + 1)); printf '[ci-dryrun] FAIL %-46s %s\n' "$1" "${3:-}"; fi
}

# 1. The pipelines still run these commands.
for f in .github/workflows/epoll-torture.yml .gitlab-ci.yml; do
	missing=0
	for c in "${SHARD_CMDS[@]}" "${MERGE_CMDS[@]}"; do
		grep -qF -- "$c" "$f" || { missing=1; echo "    not in $f: $c"; }
	done
	result "$f runs these commands" $missing
done

# job NAME CMD: one job command, as CI runs it (bash -eo pipefail), under
# the VM lock when it boots VMs. Sets $rc.
job() {
	local name=$1 cmd=$2 t0
	t0=$(date +%s)
	if [ -n "${EPT_VM_LOCK:-}" ] && [[ "$cmd" == *" run "* ]]; then
		flock "$EPT_VM_LOCK" bash -eo pipefail -c "$cmd"
	else
		bash -eo pipefail -c "$cmd"
	fi
	rc=$?
	printf '[ci-dryrun] %s: exit %s in %ss: %.90s\n' "$name" "$rc" $(( $(date +%s) - t0 )) "$cmd"
}

# 2. The shard jobs, one after the other.
rm -rf out/shards
for SHARD in $(seq 1 "$SHARDS"); do
	export SHARD
	ok=0
	for c in "${SHARD_CMDS[@]}"; do
		job "shard $ARCH $SHARD/$SHARDS" "$c"
		# `ept run` exits 1 (mismatch) or 3 (ERROR) and CI marks the job
		# failed; the merge runs all the same (when: always / !cancelled()).
		if [[ "$c" == *" run "* ]]; then [ $rc -le 1 ] || ok=1
		elif [ $rc != 0 ]; then ok=1; break; fi
	done
	result "shard job $ARCH $SHARD/$SHARDS" $ok
done

# 3. The merge job.
ok=0
for c in "${MERGE_CMDS[@]}"; do
	job merge "$c"
	if [[ "$c" == *" merge "* ]]; then merge_rc=$rc; [ $rc -le 1 ] || ok=1
	elif [ $rc != 0 ]; then ok=1; fi
done
result "merge job" $ok "(ept merge exit ${merge_rc:-?})"

# 4. The same cells unsharded.
ref=out/ci-dryrun/unsharded
rm -rf "$ref"
job unsharded "selftests/host/target/release/ept run --archs \"\$ARCH\" --variants \"\$VARIANTS\" \${SCENARIOS:+--scenarios \"\$SCENARIOS\"} --out $ref/report --logs $ref/logs"
result "unsharded run" $(( rc > 1 )) "(exit $rc)"

# 5. Merged == unsharded, every shard's progress is well-formed JSON lines.
out=$(python3 - out/report/report.json "$ref/report/report.json" "$SHARDS" out/shards/*/progress.jsonl <<'PY'
import json, sys
merged, single, shards = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
def cells(rep):
    return {r["cell"]: (r["verdict"], r["expected"], r["meets"]) for r in rep["runs"]}
m, s = cells(merged), cells(single)
assert len(merged["runs"]) == len(m), "a cell appears twice in the merged report"
assert m, "no runs"
if m != s:
    for c in sorted(set(m) | set(s)):
        print("  %-40s merged %-40s unsharded %s" % (c, m.get(c), s.get(c)))
    sys.exit("the merged report differs from the unsharded run")
want_shards = ["%d/%d" % (i, shards) for i in range(1, shards + 1)]
assert merged["shards"] == want_shards, merged["shards"]
verdicts = 0
for p in sys.argv[4:]:
    events = [json.loads(l) for l in open(p) if l.strip()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end", (p, kinds)
    assert all(e["v"] == 1 and "time" in e for e in events), p
    for e in events:
        if e["event"] == "verdict":
            verdicts += 1
            assert m[e["cell"]][0] == e["verdict"], (p, e)
    assert kinds.count("boot_start") == kinds.count("boot_end"), p
assert verdicts == len(m), (verdicts, len(m))
for c, (v, exp, meets) in sorted(m.items()):
    print("  %-40s %-10s expected %-18s %s" % (c, v, "/".join(exp), "meets" if meets else "MISMATCH"))
print("merged report (shards %s) == unsharded run: %d cells; %d verdict events" % (
    ", ".join(merged["shards"]), len(m), verdicts))
PY
)
rc=$?
echo "$out" | sed '$d'
result "merged == unsharded" $rc "$(echo "$out" | tail -n1)"

# 6. What the merge job publishes.
for f in report.md junit.xml kcidb.json; do
	[ -s "out/report/$f" ]; result "published out/report/$f" $?
done
ls out/report/*.svg >/dev/null 2>&1 && svg="$(ls out/report/*.svg | wc -l) SVG" || svg="no SVG (smoke has no plots)"
printf '[ci-dryrun] %s\n' "$svg"
bash qemu/validate-ci.sh out/report | sed 's/^/    /'
result "qemu/validate-ci.sh out/report" "${PIPESTATUS[0]}"

printf '[ci-dryrun] done in %ss\n' $(( $(date +%s) - t_start ))
echo "$pass passed, $fail failed"
[ $fail = 0 ]
