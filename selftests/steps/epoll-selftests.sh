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
#   EPT-SELFTEST name=<bin> rc=<N> seconds=<S>
#   EPT-SELFTEST-SUMMARY total=<N> pass=<N> skip=<N> fail=<N> seconds=<S>
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
	name=${bin##*/}
	total=$((total + 1))
	echo "EPT-SELFTEST-BEGIN name=$name"
	t0=$(now_cs)
	if [ "$limit" -gt 0 ] 2>/dev/null; then
		timeout "$limit" "$bin" 2>&1
	else
		"$bin" 2>&1
	fi
	rc=$?
	t1=$(now_cs)
	case $rc in
	0) pass=$((pass + 1)) ;;
	4) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
	echo "EPT-SELFTEST name=$name rc=$rc seconds=$(fmt_s $((t1 - t0)))"
done
t_end=$(now_cs)

echo "EPT-SELFTEST-SUMMARY total=$total pass=$pass skip=$skip fail=$fail seconds=$(fmt_s $((t_end - t_all)))"
[ "$total" -gt 0 ] || exit 2
[ "$fail" -eq 0 ]
