#!/bin/sh
# Scenario "inversion" (report [1]): low-prio producer + medium-prio hog on
# CPU0, high-prio consumer timing vfs_poll() on CPU1. rwlock: not ok (max
# latency ~ hog burst); spinlock: ok. REPEATS (default 1) runs in one boot.
# Extra module parameters: EPT_PARAMS="hog_burst_ms=40 hog_period_ms=100".
REPEATS=${REPEATS:-1}
i=1; bad=0; fail=0
while [ "$i" -le "$REPEATS" ]; do
	echo "EPT: inversion run $i/$REPEATS"
	ept-run --timeout 120 inversion $EPT_PARAMS
	rc=$?
	case $rc in 0) ;; 1) bad=$((bad+1)) ;; *) fail=$((fail+1)) ;; esac
	i=$((i+1))
done
echo "EPT: inversion summary runs=$REPEATS not_ok=$bad errors=$fail"
[ $fail -eq 0 ] || exit 2
[ $bad -eq 0 ] || exit 1
exit 0
