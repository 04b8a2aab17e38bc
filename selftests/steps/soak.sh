#!/bin/sh
# Scenario "soak": the stall load for DURATION seconds (default 600) with
# heartbeats; not ok on a hang or a latency over the threshold.
DURATION=${DURATION:-600}
ept-run --linger "${LINGER:-30}" soak duration_s="$DURATION" $EPT_PARAMS
rc=$?
echo "EPT: soak rc=$rc"
exit $rc
