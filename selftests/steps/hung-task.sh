#!/bin/sh
# Scenario "hung-task": the inversion with hog bursts longer than the
# hung-task timeout and a second consumer. Consumer A holds ep->mtx in
# __ep_eventpoll_poll() and waits (TASK_RTLOCK_WAIT, invisible to
# khungtaskd) for the write side of ep->lock behind the preempted
# producer; consumer B waits for ep->mtx, an rtmutex sleep in
# TASK_UNINTERRUPTIBLE, which khungtaskd reports. rwlock: "INFO: task
# ept_cons/N blocked for more than 2 seconds" at every burst that catches
# the producer inside ep_poll_callback() (about one in five); spinlock:
# consumer A boosts the producer, nobody blocks for long.
# The timeout is lowered (sysctl) so that 25 bursts fit in 100 s.
. /ept/scenarios/housekeeping.sh
echo "${HUNG_TIMEOUT:-2}" >/proc/sys/kernel/hung_task_timeout_secs
echo 1 >/proc/sys/kernel/hung_task_check_interval_secs
echo 100 >/proc/sys/kernel/hung_task_warnings
echo "EPT: hung_task_timeout_secs=$(cat /proc/sys/kernel/hung_task_timeout_secs)"
ept-run --timeout 180 inversion consumers=2 hog_burst_ms=3500 hog_period_ms=4000 \
	duration_s="${DURATION:-100}" over_min=1 stall_ms=60000 $EPT_PARAMS
rc=$?
echo "EPT: hung-task rc=$rc"
exit $rc
