#!/bin/sh
# Report [2] in user space (Jan Kiszka's reproducer, rewritten here as
# ept-kiszka): a reader looping in epoll_wait() on a pipe + a 50 us timerfd,
# a writer looping 1-byte writes inside a cgroup v2 with cpu.max
# "1000 2000", both pinned to CPU ${PIN:-0} (K Prateek Nayak's variant;
# PIN=none to leave them unpinned). Prints reader iterations per second and
# a summary with the longest reader stall; exit 1 if the reader was still
# stalled at the end. Needs a kernel that throttles CFS tasks in the kernel
# (no "defer throttle to user entry", i.e. 6.12): on 7.x it must pass.
DURATION=${DURATION:-60}
pin="--pin ${PIN:-0}"
[ "${PIN:-0}" = none ] && pin=""
. /ept/scenarios/housekeeping.sh
ept-kiszka --duration "$DURATION" $pin
rc=$?
echo "EPT: cfs-stall rc=$rc"
exit $rc
