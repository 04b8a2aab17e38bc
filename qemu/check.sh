#!/usr/bin/env bash
# make check: everything CI runs. Host tests and lints first (cheap), then
# for each arch and variant: build the kernel (cached), build the module
# with clippy, boot it with the module loaded and unloaded, run the
# kernel's epoll selftests; then the rwlock debug-overlay boot and the 6.12
# LTS base. Every console log is judged by the host tool (`ept judge`):
# any kernel splat fails the check. Ends with "N passed, N failed".
#
# Knobs: ARCHS, VARIANTS, CHECK_SELFTESTS=0 (skip the selftest boots),
#        CHECK_612=0 (skip the 6.12 base), CHECK_DEBUG=0.
set -uo pipefail
EPT_TAG=check
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
ARCHS=${ARCHS:-x86_64 riscv64}
VARIANTS=${VARIANTS:-spinlock rwlock lockless}
logs="$EPT_TOP/out/check"
mkdir -p "$logs"
pass=0 fail=0 failed=()
t_start=$(date +%s)

result() { # name rc [detail]
	if [ "$2" = 0 ]; then pass=$((pass + 1)); printf '[check] ok   %-44s %s\n' "$1" "${3:-}"
	else fail=$((fail + 1)); failed+=("$1"); printf '[check] FAIL %-44s %s\n' "$1" "${3:-}"; fi
}
run() { # name cmd...: run quietly, keep its output in a log
	local name=$1; shift
	local log="$logs/$(echo "$name" | tr ' /' '__').out" t0=$(date +%s)
	if "$@" >"$log" 2>&1; then result "$name" 0 "($(( $(date +%s) - t0 ))s)"
	else result "$name" 1 "(see $log)"; tail -n 25 "$log" | sed 's/^/    /'; fi
}

# --- host side ---
run "host tool: cargo test" cargo test -q --manifest-path selftests/host/Cargo.toml
run "host tool: rustfmt" cargo fmt --check --manifest-path selftests/host/Cargo.toml
run "host tool: clippy" cargo clippy -q --all-targets --manifest-path selftests/host/Cargo.toml -- -D warnings
run "guest programs: rustfmt" cargo fmt --check --manifest-path selftests/guest/Cargo.toml
run "guest programs: clippy" cargo clippy -q --all-targets --manifest-path selftests/guest/Cargo.toml -- -D warnings
run "host tool: build" cargo build -q --release --manifest-path selftests/host/Cargo.toml
EPT="$EPT_TOP/selftests/host/target/release/ept"

judge() { # name log [baseline]: the verdict must be what expectations.json expects
	local out
	if out=$("$EPT" judge ${3:+--baseline "$3"} "$2" 2>&1); then result "$1" 0 "$(echo "$out" | head -n1 | sed 's/^[^:]*: //')"
	else result "$1" 1 "$2"; echo "$out" | head -n 30 | sed 's/^/    /'; fi
}

# Known emulation failures of the kernel's selftests excuse a variant only
# when the unmodified kernel (spinlock) of the same arch and base failed
# them too in this run.
baseline_for() { # arch name
	local b="$logs/$1-spinlock-$2.log"
	[ -f "$b" ] && echo "$b"
}

boot() { # arch variant steps name [deadline]
	local log="$logs/$1-$2-$4.log" rc=0 base=""
	# (the debug boot's selftests compare with the plain spinlock run)
	[ "$2" != spinlock ] && base=$(baseline_for "$1" "${4/debug-load/epoll-selftests}")
	bash qemu/run-vm.sh "$1" "$2" --no-build --steps "selftests/steps/$3.sh" \
		--deadline "${5:-300}" --log "$log" >"$log.runner" 2>&1 || rc=$?
	if [ $rc = 0 ] || [ $rc = 124 ]; then judge "$1/$2 $4 boot" "$log" "$base"
	else result "$1/$2 $4 boot" 1 "(runner exit $rc: $(tail -n1 "$log.runner"))"; fi
}

module_lint_done=0
for arch in $ARCHS; do
	for variant in $VARIANTS; do
		cell="$arch/$variant"
		out=$(bash qemu/build-kernel.sh "$arch" "$variant" 2>"$logs/build-$arch-$variant.out"); rc=$?
		if [ $rc = 3 ]; then
			printf '[check] skip %-44s %s\n' "$cell kernel" "(variant unavailable: $(tail -n1 "$logs/build-$arch-$variant.out"))"
			continue
		fi
		result "$cell kernel build + config verify" $rc "$(tail -n1 "$logs/build-$arch-$variant.out")"
		[ $rc = 0 ] || continue
		if [ $module_lint_done = 0 ]; then
			mod_log="$logs/module-clippy.out"
			if CLIPPY=1 bash qemu/build-module.sh "$arch" "$variant" >"$mod_log" 2>&1 && ! grep -q '^warning' "$mod_log"; then
				result "module: clippy + no warnings" 0
			else result "module: clippy + no warnings" 1 "(see $mod_log)"; grep -A5 -m3 -E '^(warning|error)' "$mod_log" | sed 's/^/    /'; fi
			run "module: rustfmt" rustfmt --check --edition 2021 --config-path "$(. "$out/build-info.env"; echo "$WORK_TREE")/.rustfmt.toml" rust/*.rs
			module_lint_done=1
		fi
		run "$cell image" bash qemu/mkimage.sh "$arch" "$variant" || continue
		boot "$arch" "$variant" smoke smoke 240
		if [ "${CHECK_SELFTESTS:-1}" = 1 ] && [ -f selftests/steps/epoll-selftests.sh ]; then
			boot "$arch" "$variant" epoll-selftests epoll-selftests 1500
		fi
	done
done

# --- 6.12 LTS base (no CFS throttle deferral): x86_64, no module ---
if [ "${CHECK_612:-1}" = 1 ]; then
	for variant in spinlock rwlock; do
		export BASE=6.12
		out=$(bash qemu/build-kernel.sh x86_64 "$variant" 2>"$logs/build-612-$variant.out"); rc=$?
		result "6.12 x86_64/$variant kernel build + config verify" $rc "$(tail -n1 "$logs/build-612-$variant.out")"
		if [ $rc = 0 ] && run "6.12 x86_64/$variant image" bash qemu/mkimage.sh x86_64 "$variant"; then
			boot x86_64 "$variant" epoll-selftests epoll-selftests-6.12 1500
		fi
		unset BASE
	done
fi

# --- debug overlay (lockdep, DEBUG_LIST, DEBUG_ATOMIC_SLEEP): rwlock and lockless under load ---
if [ "${CHECK_DEBUG:-1}" = 1 ] && [ -f selftests/steps/debug-load.sh ]; then
	for variant in rwlock lockless; do
		export DEBUG=1
		out=$(bash qemu/build-kernel.sh x86_64 "$variant" 2>"$logs/build-debug-$variant.out"); rc=$?
		result "debug x86_64/$variant kernel build + config verify" $rc "$(tail -n1 "$logs/build-debug-$variant.out")"
		if [ $rc = 0 ] && run "debug x86_64/$variant image" bash qemu/mkimage.sh x86_64 "$variant"; then
			boot x86_64 "$variant" debug-load debug-load 1800
		fi
		unset DEBUG
	done
fi

printf '[check] done in %ss\n' $(( $(date +%s) - t_start ))
[ $fail = 0 ] || printf '[check] failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
