#!/usr/bin/env bash
# Repeat evidence: REPEATS runs of each evidence scenario
# (`ept defaults evidence scenarios`: inversion, stall) per (arch, variant),
# PACK repeat indices per boot (a cell's inversion runs, then its stall
# runs: each stall run rmmods after its hang, which breaks the cycle), all
# judged by `ept judge --json`, then a tally per (arch, variant, scenario):
# verdicts, kernel stall reports, latency maxima, host starvation. Writes
# qemu/evidence-results.md; the rows of cells not measured this time are
# kept from the file's previous table (so VARIANTS=lockless adds its rows).
#
#   qemu/evidence.sh      # ARCHS, VARIANTS, SCENARIOS (from `ept defaults
#                         # evidence ...`), REPEATS (20), LINGER (15 s), PACK (10; 1 with TRACE=1),
#                         # DURATION (empty: the module's defaults, i.e. its
#                         # verdict budget; a number sets duration_s)
#
# SCENARIOS=wakeup gives the wake-up evidence (issue 13): time to the first
# detection and the pattern that made it. TRACE=1 runs with tracing on and
# counts the runs whose trace window gave a root-cause line; its rows are
# kept apart from the untraced ones (host load column "idle, TRACE=1").
#
# LOAD="stress-ng --cpu 2" (any command) runs that command for the whole
# evidence run, to measure under a competing host load; the file says which.
# One VM at a time (EPT_VM_LOCK): the latency verdicts need the host's cores.
set -uo pipefail
EPT_TAG=evidence
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
EPT="$EPT_TOP/selftests/host/target/release/ept"
cargo build -q --release --manifest-path selftests/host/Cargo.toml || die "cannot build the host tool"
ARCHS=${ARCHS:-$("$EPT" defaults evidence archs)}
VARIANTS=${VARIANTS:-$("$EPT" defaults evidence variants)}
SCENARIOS=${SCENARIOS:-$("$EPT" defaults evidence scenarios)}
REPEATS=${REPEATS:-20}
DURATION=${DURATION:-}
# After a hang verdict: long enough for the RCU stall detector (10 s
# after the probe's grace period starts) to report.
LINGER=${LINGER:-15}
# TRACE=1: one repeat index per boot. A traced stall right after the
# previous one's 26,000-line window dump froze guest user space (docs/trace.md).
if [ "${TRACE:-0}" = 1 ]; then PACK=${PACK:-1}; else PACK=${PACK:-10}; fi
LOAD=${LOAD:-}
mkdir -p "$EPT_CACHE/locks"
export EPT_VM_LOCK=${EPT_VM_LOCK:-$EPT_CACHE/locks/vm.lock}
out=out/evidence
rm -rf "$out"; mkdir -p "$out"
res=qemu/evidence-results.md
rows=$(mktemp)
# Previous rows: "| a | b | ... |" table lines back to "a|b|...".
# (rows of an older layout, another column count, are dropped)
[ -f "$res" ] && grep -E '^\| [a-z0-9_]+ \|' "$res" | grep -v '^| arch |' | sed 's/^| //; s/ |$//; s/ | /|/g' |
	awk -F'|' 'NF == 19' >"$rows"
t_all=$(date +%s)

load_pid=""
if [ -n "$LOAD" ]; then
	say "competing host load for the whole run: $LOAD"
	setsid bash -c "exec $LOAD" >/dev/null 2>&1 &
	load_pid=$!
fi

say "$REPEATS runs of $SCENARIOS per arch x variant ($ARCHS; $VARIANTS), $PACK repeats per boot"
"$EPT" run --archs "$ARCHS" --variants "$VARIANTS" --scenarios "$SCENARIOS" \
	--repeat "$REPEATS" --pack "$PACK" ${DURATION:+--params "duration_s=$DURATION"} --env "LINGER=$LINGER" \
	--out "$out" --logs "$out/logs" >"$out/run.out" 2>&1
rc=$?
[ -n "$load_pid" ] && kill -- -"$load_pid" 2>/dev/null
secs=$(( $(date +%s) - t_all ))
say "ept run exit $rc in ${secs}s ($out/run.out)"

# Every boot log, judged once: one JSON list of runs.
for log in "$out"/logs/*.log; do
	case $log in */build-*) continue ;; esac
	"$EPT" judge --json "$log" || true
done | python3 -c '
import json, sys
# `ept judge --json` prints one JSON array per log; read them all.
text, runs, dec, i = sys.stdin.read(), [], json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    v, i = dec.raw_decode(text, i)
    runs.extend(v)
json.dump(runs, open(sys.argv[1], "w"))
' "$out/runs.json"

# tally: one row per (arch, variant, scenario) measured now.
label=${LOAD:-idle}
[ "${TRACE:-0}" = 1 ] && label="$label, TRACE=1"
python3 - "$out/runs.json" "$REPEATS x ${DURATION:-budget}" "$(date -u +%Y-%m-%d)" "$label" >"$rows.new" <<'PY'
import json, sys
from collections import defaultdict
runs, what, day, load = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
TRACED = "TRACE=1" in load
BUGS = {"INVERSION", "STALL", "HANG", "FALSE_NEGATIVE", "LOST_WAKEUP", "CRASH"}
cells = defaultdict(list)
for r in runs:
    cells[(r["arch"], r["variant"], r["scenario"])].append(r)
def count(rs, label):
    return sum(f["count"] for r in rs for f in r["findings"] if label in f["what"])
def final(r):
    """The module's last # metrics line of the run (its totals)."""
    ls = [l for l in r["metrics"].get("lines", []) if "bursts" in l or "duration_ms" in l]
    return ls[-1] if ls else {}
def spread(xs, fmt="%.1f"):
    xs = sorted(xs)
    return ("%s / %s / %s" % (fmt % xs[0], fmt % xs[(len(xs) - 1) // 2], fmt % xs[-1])) if xs else "-"
def num(d, k):
    try:
        return float(d.get(k, 0))
    except ValueError:
        return 0.0
def first_detection(r):
    """ept-wakeup: (pattern, s from the run's start) of its first detection:
    the patterns run one after another, each # metrics line says how long it
    ran and, when it detected, first_ms after its own start."""
    t = 0.0
    for l in r["metrics"].get("lines", []):
        if "pattern" not in l:
            continue
        if "first_ms" in l:
            return l["pattern"], (t + num(l, "first_ms")) / 1000
        t += num(l, "elapsed_ms")
    return None, t / 1000
for (a, v, s), rs in sorted(cells.items()):
    verdicts = defaultdict(int)
    for r in rs:
        verdicts[r["verdict"]] += 1
    vtxt = " ".join("%s %d" % kv for kv in sorted(verdicts.items(), key=lambda kv: -kv[1]))
    wake = [first_detection(r) for r in rs] if s == "wakeup" else []
    pats = defaultdict(int)
    for p, _ in wake:
        if p:
            pats[p] += 1
    if pats:
        vtxt += " (first by %s)" % ", ".join("%s %d" % kv for kv in sorted(pats.items(), key=lambda kv: -kv[1]))
    if TRACED:
        # runs whose dumped trace window gave the judge a root-cause line
        rc = sum(any(n.startswith("root cause") for n in r["notes"]) for r in rs)
        vtxt += " (root cause %d/%d)" % (rc, len(rs))
    meets = sum(r["meets"] for r in rs)
    # Runs where the bug is expected count detections; the others false verdicts.
    bug_expected = any(set(r["expected"]) & BUGS for r in rs)
    found = sum(r["verdict"] in BUGS for r in rs)
    det = ("detected %d/%d" if bug_expected else "false %d/%d") % (found, len(rs))
    lat = sorted(r["metrics"]["values"]["lat_max_us"] / 1000 for r in rs
                 if "lat_max_us" in r["metrics"]["values"] and r["verdict"] != "HANG")
    ltxt = spread(lat, "%.0f")
    fin = [final(r) for r in rs]
    sig = int(sum(num(f, "signature") for f in fin))
    rej = int(sum(num(f, "rejected") for f in fin))
    bursts = sum(num(f, "bursts") for f in fin)
    caught = sum(num(f, "caught") for f in fin)
    ctxt = "%.2f (%d/%d)" % (caught / bursts, caught, bursts) if bursts else "-"
    # Time to the verdict: the module's own run time (to the hang for a hang).
    tv = [num(f, "duration_ms") / 1000 for f in fin if "duration_ms" in f]
    tv += [num(f, "t_ms") / 1000 for f in fin if f.get("hang") == "1" and "duration_ms" not in f]
    tv += [t for _, t in wake]
    starved = sum(r["metrics"]["values"].get("vcpu_starved_pct", 0) > 20 for r in rs)
    secs = sum(r["elapsed_s"] for r in rs)
    print("|".join(map(str, [a, v, s, len(rs), vtxt, meets, det, sig, rej, ctxt, spread(tv),
                             count(rs, "RCU stall"), count(rs, "hung task"), ltxt, starved,
                             "%.0f" % secs, what, load, day])))
PY
# Replace the rows measured now, keep the others.
# (a row's key: arch, variant, scenario and host load)
while IFS='|' read -r a v sc rest; do
	l=$(echo "$rest" | awk -F'|' '{print $(NF-1)}')
	awk -F'|' -v k="$a|$v|$sc" -v l="$l" '!(($1"|"$2"|"$3) == k && $(NF-1) == l)' "$rows" >"$rows.tmp"; mv "$rows.tmp" "$rows"
done <"$rows.new"
cat "$rows.new" >>"$rows"; sort -o "$rows" "$rows"

{
	echo "# Evidence: repeated inversion, stall and wake-up runs"
	echo
	echo "Made by \`qemu/evidence.sh\` (defaults: REPEATS=20 LINGER=15 PACK=10, the module's verdict budget; each row says its"
	echo "repeats x duration, host load and date), $(nproc) cores, TCG, one 2-vCPU VM at a time, $PACK"
	echo "repeats per boot. The last invocation took ${secs} s (\`ept run\` exit $rc)."
	echo "Kernel: $(. "$(qemu/build-kernel.sh x86_64 spinlock 2>/dev/null)/build-info.env"; echo "$BASE_PKG $BASE_DEB_VERSION"), variants as in \`qemu/variants/\`."
	echo "Every run is judged by \`ept judge --json\` (the same judge as \`make run\`). Logs: \`out/evidence/\`."
	echo
	echo "- **verdicts**: the judge's verdict per run (inversion: the module's burst-correlated signature;"
	echo "  stall: the module's watchdog hang, a kernel stall report, or the host deadline)."
	echo "- **meet**: runs whose verdict meets the scenario's expectation for the variant."
	echo "- **RCU stall / hung task**: kernel reports in the runs (each record counted once)."
	echo "- **max latency**: per-run maximum of the consumer's vfs_poll() latency (metric only), runs"
	echo "  that did not hang: min / median / max (ms); wakeup: the largest write-to-read latency of the"
	echo "  sources in a run (\`lat_max_us\` of the \`# metrics\` lines)."
	echo "- **found**: runs with a bug verdict: \"detected n/N\" where the variant has the bug, \"false n/N\" where it must not."
	echo "- **signature / rejected**: consumer calls the module counted as the inversion signature (both ends on"
	echo "  one hog burst), and long calls it rejected as noise (summed over the runs)."
	echo "- **catch rate**: full hog bursts that had caught a consumer blocked behind a reader, over all bursts."
	echo "- **time to verdict**: the module's run time (s; to the hang for a hang): min / median / max;"
	echo "  wakeup: from the start of \`ept-wakeup\` to its first detection (the whole run without one)."
	echo "  A wakeup row's verdicts say which pattern detected first (\`first by fn 20\`)."
	echo "- **TRACE=1** in the host-load column: tracing on (docs/trace.md); the verdicts say how many runs'"
	echo "  dumped trace window gave the judge a root-cause line."
	echo "- **starved**: runs whose vCPUs waited over 20 % of the boot for a host CPU (\`vcpu_starved_pct\`)."
	echo "- **host load**: \`idle\`, or the command that loaded the host for the whole run (LOAD=...)."
	echo
	echo "| arch | variant | scenario | runs | verdicts | meet | found | signature | rejected | catch rate | time to verdict s | RCU stall reports | hung-task reports | max latency ms (min / median / max) | starved | run s | repeats x duration | host load | date |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	while IFS= read -r r; do echo "| ${r//|/ | } |"; done <"$rows"
} >"$res"
rm -f "$rows" "$rows.new"
say "wrote $res (${secs} s)"
cat "$res"
