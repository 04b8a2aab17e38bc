#!/bin/sh
# Scenario "throughput": N = 1, 2, 4, 8, 16 producers (default threads_max
# 16), each signalling its own eventfd `events` times; one metrics line
# per N with events_per_ms.
ept-run --timeout 900 throughput $EPT_PARAMS
rc=$?
echo "EPT: throughput rc=$rc"
exit $rc
