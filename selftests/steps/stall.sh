#!/bin/sh
# Scenario "stall" (report [2] as a lock cycle). rwlock: the module reports
# "not ok ... hang" after stall_ms; ept-run then lingers LINGER seconds
# (default 45) so RCU stall / hung task reports reach the console, then
# rmmod, which stops the hog first and so breaks the cycle. With
# NO_RMMOD=1 the guest stays hung (the host deadline then reports HANG).
# spinlock: ok, the run completes. REPEATS (default 1) runs in one boot:
# each rmmod breaks the cycle, so the next run starts on a live kernel.
LINGER=${LINGER:-45}
REPEATS=${REPEATS:-1}
# Keep the console path off the hog's CPU (0): the printk threads and the
# serial IRQ thread would otherwise be starved there for good once the
# cycle closes, and nothing (heartbeats, RCU stall reports) would be
# printed. CPU1 keeps running the watchdog during the hang.
. /ept/scenarios/housekeeping.sh
opt=""
if [ "${NO_RMMOD:-0}" = 1 ]; then opt="--no-rmmod"; LINGER=1000000; REPEATS=1; fi
i=1; bad=0; fail=0
while [ "$i" -le "$REPEATS" ]; do
	[ "$REPEATS" -gt 1 ] && echo "EPT: stall run $i/$REPEATS"
	ept-run --cpu "${EPT_HK_CPU:-1}" --alive 5 --echo --sysrq-w --linger "$LINGER" $opt stall $EPT_PARAMS
	rc=$?
	echo "EPT: stall rc=$rc"
	case $rc in 0) ;; 1) bad=$((bad+1)) ;; *) fail=$((fail+1)) ;; esac
	i=$((i+1))
done
[ "$REPEATS" -gt 1 ] && echo "EPT: stall summary runs=$REPEATS not_ok=$bad errors=$fail"
[ $fail -eq 0 ] || exit 2
[ $bad -eq 0 ] || exit 1
exit 0
