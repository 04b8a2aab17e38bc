#!/usr/bin/env bash
# make check: everything CI runs. Host tests and lints first (cheap), then
# the boots, as `ept run` invocations of the check sets of
# selftests/host/scenarios.json (`ept defaults sets`):
#
#   check        x86_64, every variant: smoke, the module's KUnit suite,
#                inversion, wake-up, the kernel's epoll selftests, stall
#   check-cross  riscv64, spinlock and rwlock: smoke, inversion, selftests, stall
#   check-6.12   the 6.12 LTS base (no CFS throttle deferral): selftests, cfs-stall
#   check-debug  the debug overlay (lockdep, DEBUG_LIST, ...): rwlock and
#                lockless, the selftests under load (criterion: no splat)
#
# `make check` runs the first two (CI's time limit); `make check-full`
# (CHECK_SETS="check check-cross check-6.12 check-debug") all four.
# The sets run one after another, each with `ept run --build-first`: no
# boot shares the host with a kernel build, because the kernel's own
# selftests time windows of 1 s (epoll60) and 30 s (the harness) that a
# build on the same 2 cores breaks on every variant. A cell's runs share
# one boot (`ept run`); boots take the VM lock EPT_VM_LOCK.
# Every boot log is then judged by `ept judge --json` (selftests against
# the spinlock log of the same arch and base), and each run must meet its
# expected verdict; runs the kernel's features rule out count as met
# (NOT_APPLICABLE). Ends with "N passed, N failed" and the wall time.
#
# Knobs: ARCHS, VARIANTS (the `check` set; ARCHS also drops check-cross),
#        CHECK_SELFTESTS=0 (no epoll-selftests), CHECK_CROSS=0, CHECK_612=0,
#        CHECK_DEBUG=0, CHECK_SETS="check ..." (default: check check-cross).
set -uo pipefail
EPT_TAG=check
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
logs="$EPT_TOP/out/check"
rm -rf "$logs"
mkdir -p "$logs" "$EPT_CACHE/locks"
export EPT_VM_LOCK=${EPT_VM_LOCK:-$EPT_CACHE/locks/vm.lock}
pass=0 fail=0 failed=()
t_start=$(date +%s)

result() { # name rc [detail]
	if [ "$2" = 0 ]; then pass=$((pass + 1)); printf '[check] ok   %-48s %s\n' "$1" "${3:-}"
	else fail=$((fail + 1)); failed+=("$1"); printf '[check] FAIL %-48s %s\n' "$1" "${3:-}"; fi
}
run() { # name cmd...: run quietly, keep its output in a log
	local name=$1; shift
	local log="$logs/$(echo "$name" | tr ' /:' '___').out" t0=$(date +%s)
	if "$@" >"$log" 2>&1; then result "$name" 0 "($(( $(date +%s) - t0 ))s)"
	else result "$name" 1 "(see $log)"; tail -n 25 "$log" | sed 's/^/    /'; fi
}

# --- host side ---
# The release build first: the tests then reuse its compiled dependencies.
run "host tool: build" cargo build -q --release --manifest-path selftests/host/Cargo.toml
run "host tool: cargo test" cargo test -q --release --manifest-path selftests/host/Cargo.toml
run "host tool: rustfmt" cargo fmt --check --manifest-path selftests/host/Cargo.toml
run "host tool: clippy" cargo clippy -q --all-targets --manifest-path selftests/host/Cargo.toml -- -D warnings
run "guest programs: rustfmt" cargo fmt --check --manifest-path selftests/guest/Cargo.toml
run "guest programs: clippy" cargo clippy -q --all-targets --manifest-path selftests/guest/Cargo.toml -- -D warnings
run "guest programs: cargo test" cargo test -q --manifest-path selftests/guest/Cargo.toml
run "shell scripts: bash -n" bash -c 'for f in qemu/*.sh; do bash -n "$f" || exit 1; done; for f in selftests/scenarios/*.sh; do sh -n "$f" || exit 1; done'
EPT="$EPT_TOP/selftests/host/target/release/ept"
t_host=$(date +%s)

# --- the sets ---
sets=${CHECK_SETS:-check check-cross}
[ "${CHECK_CROSS:-1}" = 1 ] && [ -z "${ARCHS:-}" ] || sets=${sets/check-cross/}
[ "${CHECK_612:-1}" = 1 ] || sets=${sets/check-6.12/}
[ "${CHECK_DEBUG:-1}" = 1 ] || sets=${sets/check-debug/}
list_of() { # set key
	local l
	l=$("$EPT" defaults "$1" "$2") || exit 1
	if [ "$2" = scenarios ] && [ "${CHECK_SELFTESTS:-1}" != 1 ]; then
		l=$(echo " $l " | sed 's/ epoll-selftests / /; s/^ *//; s/ *$//')
	fi
	echo "$l"
}
for s in $sets; do
	archs=$(list_of "$s" archs) variants=$(list_of "$s" variants) scen=$(list_of "$s" scenarios)
	if [ "$s" = check ]; then archs=${ARCHS:-$archs} variants=${VARIANTS:-$variants}; fi
	[ -n "$scen" ] || continue
	say "$s: $(list_of "$s" env) archs: $archs; variants: $variants; scenarios: $scen"
	(
		for e in $(list_of "$s" env); do export "$e"; done
		t0=$(date +%s)
		"$EPT" run --build-first --archs "$archs" --variants "$variants" --scenarios "$scen" \
			--out "$logs/$s" --logs "$logs/$s/logs" >"$logs/$s.out" 2>&1
		say "$s: ept run done in $(( $(date +%s) - t0 ))s"
	)
done

# The module's own lints, once a kernel is there to build against.
(
	cell=$(bash qemu/build-kernel.sh x86_64 spinlock 2>/dev/null) || exit 0
	mod_log="$logs/module-clippy.out"
	if CLIPPY=1 bash qemu/build-module.sh x86_64 spinlock >"$mod_log" 2>&1 && ! grep -q '^warning' "$mod_log"; then
		echo "ok"
	else echo "FAIL"; fi >"$logs/module-clippy.rc"
	wt=$(. "$cell/build-info.env"; echo "$WORK_TREE")
	rustfmt --check --edition 2021 --config-path "$wt/.rustfmt.toml" rust/*.rs rust/*/*.rs >"$logs/module-rustfmt.out" 2>&1
	echo $? >"$logs/module-rustfmt.rc"
) &
lint_pid=$!

wait "$lint_pid"
t_boots=$(date +%s)
if [ "$(cat "$logs/module-clippy.rc" 2>/dev/null)" = ok ]; then result "module: clippy + no warnings" 0
else result "module: clippy + no warnings" 1 "(see $logs/module-clippy.out)"; grep -A5 -m3 -E '^(warning|error)' "$logs/module-clippy.out" | sed 's/^/    /'; fi
result "module: rustfmt" "$(cat "$logs/module-rustfmt.rc" 2>/dev/null || echo 1)" "$(head -c 300 "$logs/module-rustfmt.out" 2>/dev/null)"

# --- fidelity: each variant's fs/eventpoll.c against the upstream code it stands for ---
for ref in qemu/variants/*/fidelity.ref qemu/variants/*/*/fidelity.ref; do
	v=${ref#qemu/variants/}; v=${v%%/*}
	case $ref in qemu/variants/*/*/fidelity.ref) b=${ref%/fidelity.ref}; b=${b##*/}; run "fidelity: $v on $b" env BASE="$b" bash qemu/fidelity.sh "$v" ;;
	*) run "fidelity: $v" bash qemu/fidelity.sh "$v" ;; esac
done
run "CI outputs + pipelines: validate-ci.sh" bash qemu/validate-ci.sh

# --- the verdicts: every boot log judged by `ept judge --json` ---
# show RUNS.json: one result line per run; exit = runs that do not meet.
show() {
	python3 -c '
import json, sys
bad = 0
for r in json.load(open(sys.argv[1])):
    ok = r["meets"]
    bad += not ok
    exp = "/".join(r["expected"])
    print("%s|%s|%s%s|%s" % ("ok" if ok else "FAIL", r["cell"], r["verdict"],
          "" if ok else " (expected %s)" % exp, r["reason"][:120].replace("|", "/")))
sys.exit(min(bad, 100))
' "$1"
}
line() { # ok|FAIL cell verdict reason
	[ "$1" = ok ] && result "$2" 0 "$3 - $4" || result "$2" 1 "$3 - $4"
}
for s in $sets; do
	[ -f "$logs/$s/report.json" ] || { result "$s: ept run" 1 "(no report; see $logs/$s.out)"; tail -n 15 "$logs/$s.out" | sed 's/^/    /'; continue; }
	# Runs without a boot (NOT_APPLICABLE, UNAVAILABLE, a failed build).
	python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    if not r.get("log"):
        print("%s|%s|%s|%s" % ("ok" if r["meets"] else "FAIL", r["cell"], r["verdict"], r["reason"][:120].replace("|", "/")))
' "$logs/$s/report.json" >"$logs/$s.noboot"
	while IFS='|' read -r ok cell v why; do line "$ok" "$s $cell" "$v" "$why"; done <"$logs/$s.noboot"
	for log in "$logs/$s"/logs/*.log; do
		[ -f "$log" ] || continue
		case $log in */build-*) continue ;; esac
		b=$(basename "$log" .log) arch=${b%%-*} base=""
		# The unmodified kernel's selftests of the same arch and base.
		case $s in
		check-debug) base="$logs/check/logs/$arch-spinlock-r1.log" ;;
		*) base="$logs/$s/logs/$arch-spinlock-r1.log" ;;
		esac
		if [[ $b =~ ^$arch-spinlock-(r[0-9]|[a-z]) ]] || [ ! -f "$base" ]; then base=""; fi
		"$EPT" judge --json ${base:+--baseline "$base"} "$log" >"$log.json" 2>"$log.judge.err"
		[ -s "$log.json" ] || { result "$s $b" 1 "(ept judge: $(tail -n1 "$log.judge.err"))"; continue; }
		show "$log.json" >"$log.lines"
		while IFS='|' read -r ok cell v why; do line "$ok" "$s $cell" "$v" "$why"; done <"$log.lines"
	done
done
t_end=$(date +%s)

printf '[check] done in %ss (host tests %ss, builds and boots %ss, judging %ss)\n' \
	$((t_end - t_start)) $((t_host - t_start)) $((t_boots - t_host)) $((t_end - t_boots))
for s in $sets; do grep -E '^ept: (.*build (done|FAILED)|boot .*re-queued)' "$logs/$s.out" 2>/dev/null | sed "s/^/[check] $s: /"; done
[ $fail = 0 ] || printf '[check] failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
