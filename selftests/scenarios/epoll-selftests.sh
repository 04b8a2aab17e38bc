#!/bin/sh
# epoll-selftests.sh - run the kernel's own epoll selftests in the guest.
#
# Guest side, busybox sh. Runs every executable in /usr/lib/epoll-selftests/
# (tools/testing/selftests/filesystems/epoll, built statically by
# qemu/build-guest.sh), one after the other, in name order. The kselftest
# TAP output of each binary goes to the console unchanged; around it this
# script prints, one line each:
#
#   EPT-SELFTEST-BEGIN name=<bin>
#   EPT-SELFTEST name=<bin> rc=<N> seconds=<S> rc_after_reruns=<N>
#   EPT-SELFTEST-SUMMARY total=<N> pass=<N> skip=<N> fail=<N> seconds=<S>
#
# A test the harness killed for its 30 s timeout (under TCG, epoll65 on
# every variant) is rerun alone with <bin>.long-timeout, the same test built
# with a long harness timeout (selftests/kselftest/long-timeout.c), and
# reported as
#
#   EPT-SELFTEST-RERUN name=<bin> test=<t> rc=<N> seconds=<S> timeout=long
#
# The stock outcome stays in the log as is; the host shows both.
#
# rc is the binary's exit status (0 pass, 4 = KSFT_SKIP, anything else a
# failure; the kselftest harness enforces its own per-test timeout).
# seconds is wall time from /proc/uptime, 2 decimals.
#
# Use: run-vm.sh ARCH VARIANT --steps selftests/steps/epoll-selftests.sh
# (it is also copied into the image as /ept/scenarios/epoll-selftests.sh).
#
# Environment (optional):
#   EPT_SELFTEST_DIR      directory of binaries (default /usr/lib/epoll-selftests)
#   EPT_SELFTEST_RERUN    1: rerun harness timeouts with the long-timeout
#                         build (900 s; `make run SELFTEST_RERUN=1`);
#                         0 (default): report them as they are
#   EPT_SELFTEST_TIMEOUT  extra per-binary limit in seconds via busybox
#                         `timeout` (default 0 = none; a kill shows as rc>=124)
#
# Exit status: 0 if no binary failed (skips are not failures), 1 otherwise,
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

if [ ! -d "$dir" ]; then
	echo "EPT-SELFTEST-SUMMARY total=0 pass=0 skip=0 fail=0 seconds=0.00 error=no-dir:$dir"
	exit 2
fi

cd /tmp 2>/dev/null || cd /

total=0 pass=0 skip=0 fail=0
t_all=$(now_cs)
for bin in "$dir"/*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case $bin in *.long-timeout) continue ;; esac
	name=${bin##*/}
	total=$((total + 1))
	echo "EPT-SELFTEST-BEGIN name=$name"
	t0=$(now_cs)
	{
		if [ "$limit" -gt 0 ] 2>/dev/null; then
			timeout "$limit" "$bin" 2>&1
		else
			"$bin" 2>&1
		fi
		echo $? >/tmp/ept-selftest.rc
	} | tee /tmp/ept-selftest.out
	rc=$(cat /tmp/ept-selftest.rc)
	t1=$(now_cs)
	# Failures not explained by a harness timeout that a long rerun passes.
	unexplained=$(grep -c '^not ok ' /tmp/ept-selftest.out)
	for t in $(sed -n 's/^# \([^:]*\): Test terminated by timeout$/\1/p' /tmp/ept-selftest.out); do
		[ -x "$bin.long-timeout" ] && [ "${EPT_SELFTEST_RERUN:-0}" = 1 ] || break
		r0=$(now_cs)
		"$bin.long-timeout" -t "$t" 2>&1
		rrc=$?
		echo "EPT-SELFTEST-RERUN name=$name test=$t rc=$rrc seconds=$(fmt_s $(($(now_cs) - r0))) timeout=long"
		[ $rrc = 0 ] && unexplained=$((unexplained - 1))
	done
	# The stock exit status is reported as is; the tally counts a binary
	# whose only failures were timeouts that passed when rerun as passed.
	[ $rc != 0 ] && [ $rc != 4 ] && [ "$unexplained" -le 0 ] && rc_eff=0 || rc_eff=$rc
	case $rc_eff in
	0) pass=$((pass + 1)) ;;
	4) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
	echo "EPT-SELFTEST name=$name rc=$rc seconds=$(fmt_s $((t1 - t0))) rc_after_reruns=$rc_eff"
done
t_end=$(now_cs)

echo "EPT-SELFTEST-SUMMARY total=$total pass=$pass skip=$skip fail=$fail seconds=$(fmt_s $((t_end - t_all)))"
[ "$total" -gt 0 ] || exit 2
[ "$fail" -eq 0 ]
