#!/bin/sh
# epoll-selftests.sh - run the kernel's own epoll selftests in the guest,
# each test on its own so that each test's duration is measured.
#
# Guest side, busybox sh. For every executable in /usr/lib/epoll-selftests/
# (tools/testing/selftests/filesystems/epoll, built statically by
# qemu/build-guest.sh), in name order: list its tests (`-l`), run each one
# alone (`-t NAME`; the kselftest harness keeps its own 30 s per-test
# timeout), and print, one line each:
#
#   EPT-SELFTEST-BEGIN name=<bin>
#   EPT-SELFTEST-TEST name=<bin> test=<t> rc=<N> seconds=<S> [scaled=1/<div>]
#   EPT-SELFTEST name=<bin> rc=<N> seconds=<S> rc_after_reruns=<N> tests=<N>
#   EPT-SELFTEST-SUMMARY total=<N> pass=<N> skip=<N> fail=<N> seconds=<S>
#
# The TAP output of each test goes to the console unchanged (`ok 1
# global.epoll1`, one plan per test). A binary without `-l` support runs
# whole, as before. rc per binary: 0 every test passed or skipped (4 if all
# skipped), otherwise the first failing test's status.
#
# Scaled tests (EPT_SELFTEST_SCALED="epoll65=100", set by scenarios.json):
# a test whose stock size cannot finish under TCG (epoll65: 64 threads x
# 100,000 non-blocking epoll_wait() calls) runs from <bin>.scaled, the same
# source with the literal bounds of its counted loops divided by the given
# divisor (EPT_SELFTEST_DIV, selftests/kselftest/scaled.c), so it still
# races 64 waiters on one ready item but finishes. Its line says
# scaled=1/<div>; without a .scaled binary the stock test runs and the line
# says scaled=unavailable.
#
# A test the harness killed for its 30 s timeout is rerun alone with
# <bin>.long-timeout (the same test with a long harness timeout,
# selftests/kselftest/long-timeout.c) when EPT_SELFTEST_RERUN=1, and
# reported as
#
#   EPT-SELFTEST-RERUN name=<bin> test=<t> rc=<N> seconds=<S> timeout=long
#
# The stock outcome stays in the log as is; the host shows both.
#
# Environment (optional):
#   EPT_SELFTEST_DIR      directory of binaries (default /usr/lib/epoll-selftests)
#   EPT_SELFTEST_RERUN    1: rerun harness timeouts with the long-timeout build
#   EPT_SELFTEST_SCALED   test=divisor pairs run from the .scaled build
#   EPT_SELFTEST_TIMEOUT  extra per-test limit in seconds via busybox
#                         `timeout` (default 0 = none; a kill shows as rc>=124)
#   EPT_SELFTEST_ONLY     run only these tests (blank-separated names)
#
# Exit status: 0 if no test failed (skips are not failures), 1 otherwise,
# 2 if there was nothing to run.

dir=${EPT_SELFTEST_DIR:-/usr/lib/epoll-selftests}
limit=${EPT_SELFTEST_TIMEOUT:-0}

# uptime in centiseconds (integer), read from /proc/uptime ("123.45 ...")
now_cs() {
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}" | sed 's/^0*//;s/^$/0/'
}

# centiseconds -> seconds with 2 decimals
fmt_s() {
	printf '%d.%02d' $(($1 / 100)) $(($1 % 100))
}

# run_limited BIN ARGS...: with the optional per-test limit
run_limited() {
	if [ "$limit" -gt 0 ] 2>/dev/null; then
		timeout "$limit" "$@" 2>&1
	else
		"$@" 2>&1
	fi
}

# scaled_div TEST: the divisor EPT_SELFTEST_SCALED gives TEST, or nothing
scaled_div() {
	for p in $EPT_SELFTEST_SCALED; do
		[ "${p%%=*}" = "$1" ] && { echo "${p#*=}"; return; }
	done
}

if [ ! -d "$dir" ]; then
	echo "EPT-SELFTEST-SUMMARY total=0 pass=0 skip=0 fail=0 seconds=0.00 error=no-dir:$dir"
	exit 2
fi

cd /tmp 2>/dev/null || cd /

total=0 pass=0 skip=0 fail=0
t_all=$(now_cs)
for bin in "$dir"/*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case $bin in *.long-timeout|*.scaled) continue ;; esac
	name=${bin##*/}
	total=$((total + 1))
	echo "EPT-SELFTEST-BEGIN name=$name"
	t0=$(now_cs)
	# The harness lists its tests on stderr: a header, then one line per
	# test whose last column is the test name.
	tests=$("$bin" -l 2>&1 | awk 'NR > 1 && !/^-/ && NF { print $NF }')
	[ -n "$EPT_SELFTEST_ONLY" ] && tests=$(for t in $tests; do
		case " $EPT_SELFTEST_ONLY " in *" $t "*) echo "$t" ;; esac; done)
	rc="" ntests=0 npass=0 nskip=0 unexplained=0
	if [ -z "$tests" ]; then
		# No -l: the whole binary at once.
		{ run_limited "$bin"; echo $? >/tmp/ept-selftest.rc; } | tee /tmp/ept-selftest.out
		rc=$(cat /tmp/ept-selftest.rc)
		unexplained=$(grep -c '^not ok ' /tmp/ept-selftest.out)
	fi
	for t in $tests; do
		ntests=$((ntests + 1))
		div=$(scaled_div "$t")
		run=$bin extra=""
		if [ -n "$div" ]; then
			export EPT_SELFTEST_DIV="$div"
			if [ -x "$bin.scaled" ]; then
				run=$bin.scaled extra=" scaled=1/$div"
			else
				extra=" scaled=unavailable"
			fi
		else
			unset EPT_SELFTEST_DIV
		fi
		r0=$(now_cs)
		{ run_limited "$run" -t "$t"; echo $? >/tmp/ept-selftest.rc; } | tee /tmp/ept-selftest.out
		trc=$(cat /tmp/ept-selftest.rc)
		echo "EPT-SELFTEST-TEST name=$name test=$t rc=$trc seconds=$(fmt_s $(($(now_cs) - r0)))$extra"
		case $trc in
		0) npass=$((npass + 1)) ;;
		4) nskip=$((nskip + 1)) ;;
		*)
			[ -n "$rc" ] || rc=$trc
			unexplained=$((unexplained + 1))
			# Killed by the harness's timeout: rerun alone with a long one.
			if grep -q "^# $t: Test terminated by timeout" /tmp/ept-selftest.out &&
				[ -x "$bin.long-timeout" ] && [ "${EPT_SELFTEST_RERUN:-0}" = 1 ]; then
				r0=$(now_cs)
				"$bin.long-timeout" -t "$t" 2>&1
				rrc=$?
				echo "EPT-SELFTEST-RERUN name=$name test=$t rc=$rrc seconds=$(fmt_s $(($(now_cs) - r0))) timeout=long"
				[ $rrc = 0 ] && unexplained=$((unexplained - 1))
			fi
			;;
		esac
	done
	unset EPT_SELFTEST_DIV
	# Every test skipped: the binary skipped (KSFT_SKIP).
	[ -n "$rc" ] || { [ $ntests -gt 0 ] && [ $npass = 0 ] && [ $nskip -gt 0 ] && rc=4 || rc=0; }
	t1=$(now_cs)
	# The stock status is reported as is; the tally counts a binary whose
	# only failures were timeouts that passed when rerun as passed.
	[ $rc != 0 ] && [ $rc != 4 ] && [ "$unexplained" -le 0 ] && rc_eff=0 || rc_eff=$rc
	case $rc_eff in
	0) pass=$((pass + 1)) ;;
	4) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
	echo "EPT-SELFTEST name=$name rc=$rc seconds=$(fmt_s $((t1 - t0))) rc_after_reruns=$rc_eff tests=$ntests"
done
t_end=$(now_cs)

echo "EPT-SELFTEST-SUMMARY total=$total pass=$pass skip=$skip fail=$fail seconds=$(fmt_s $((t_end - t_all)))"
[ "$total" -gt 0 ] || exit 2
[ "$fail" -eq 0 ]
