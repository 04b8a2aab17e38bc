#!/bin/sh
# Scenario "soak": the stall load (which includes the inversion
# measurement) for DURATION seconds (default 600), heartbeats every 2 s;
# not ok on a hang or on calls over the latency threshold. On rwlock it
# ends like "stall" (hang, RCU stall report, then rmmod breaks the cycle).
DURATION=${DURATION:-600}
. /ept/scenarios/housekeeping.sh
ept-run --cpu "${EPT_HK_CPU:-1}" --alive 30 --echo --sysrq-w --linger "${LINGER:-30}" \
	soak duration_s="$DURATION" $EPT_PARAMS
rc=$?
echo "EPT: soak rc=$rc"
exit $rc
