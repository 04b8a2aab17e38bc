#!/bin/sh
# TRACE=1 (docs/trace.md): after a module run, print the frozen ftrace
# window to the console between EPT-TRACE-BEGIN / EPT-TRACE-END, every line
# prefixed "ftrace: " (the host strips it and writes <cell>.trace.txt).
#
# Which buffer: the module froze either the snapshot (tracing_snapshot() at
# each new worst call over the threshold: "# trace snapshot reason=worst
# lat_us=N" in dmesg) or the live buffer (tracing_off() when it declared a
# hang: tracing_on reads 0). The window is the last N ms before the freeze
# on every CPU: the worst call's latency plus EPT_TRACE_MARGIN_MS (20), or
# for a hang EPT_TRACE_HANG_MS (default: the module's stall_ms + 500).
#
# `trace-dump.sh setup` (once per boot, before the first run): enables the
# events (EPT_TRACE_EVENTS) with EPT_TRACE_BUF_KB (1024) per CPU. At run time,
# not on the kernel command line: x86_64 TCG with trace_event= on the
# command line hung at SMP bring-up (docs/trace.md).
T=/sys/kernel/tracing
[ -r $T/trace ] || mount -t tracefs nodev $T 2>/dev/null
if [ ! -r $T/trace ]; then
	echo "EPT-TRACE-NONE reason=no-tracefs"
	exit 0
fi
if [ "${1:-}" = setup ]; then
	# No hrtimer_expire_exit and no tick timer (tick_nohz_handler): at
	# 1 kHz on a CPU a hog keeps busy they would overwrite the seconds
	# before a hang in the ring buffer.
	ev=${EPT_TRACE_EVENTS:-sched:sched_switch sched:sched_waking sched:sched_pi_setprio lock:contention_begin lock:contention_end timer:hrtimer_start timer:hrtimer_expire_entry}
	echo ${EPT_TRACE_BUF_KB:-1024} >$T/buffer_size_kb
	: >$T/set_event
	for e in $ev; do echo "$e" >>$T/set_event || echo "EPT-TRACE-NONE reason=no-event:$e"; done
	for e in hrtimer_start hrtimer_expire_entry; do
		echo 'function.function != tick_nohz_handler' >$T/events/timer/$e/filter ||
			echo "EPT-TRACE-NONE reason=no-filter:$e"
	done
	echo 1 >$T/tracing_on
	echo "EPT-TRACE-SETUP events=$(wc -l <$T/set_event) buffer_kb=$(cat $T/buffer_size_kb)"
	exit 0
fi
seen=/tmp/ept-trace-seen
n_snap=$(dmesg | grep -c '# trace snapshot reason=worst')
if [ "$(cat $T/tracing_on)" = 0 ]; then
	reason=hang src=$T/trace lat=""
	# The module's watchdog (stall_ms of its `# config` line) plus 500 ms.
	st=$(dmesg | sed -n 's/.*# config .* stall_ms=\([0-9]*\).*/\1/p' | tail -n1)
	win=${EPT_TRACE_HANG_MS:-$((${st:-5000} + 500))}
elif [ "$n_snap" -gt "$(cat $seen 2>/dev/null || echo 0)" ]; then
	reason=worst src=$T/snapshot
	lat=$(dmesg | sed -n 's/.*# trace snapshot reason=worst lat_us=\([0-9]*\).*/\1/p' | tail -n1)
	win=$((lat / 1000 + ${EPT_TRACE_MARGIN_MS:-20}))
else
	echo "EPT-TRACE-NONE reason=no-freeze (no call over the threshold, no hang)"
	exit 0
fi
echo "$n_snap" >$seen
grep -v '^#' "$src" >/tmp/ept-trace.raw
# The last $win ms before the newest event (the freeze), on every CPU.
end=$(awk '{ for (i = 4; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = $i + 0; if (t > m) m = t; break } }
	END { printf "%.6f", m }' /tmp/ept-trace.raw)
awk -v from="$end" -v w="$win" 'BEGIN { from -= w / 1000 }
	{ for (i = 4; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { if ($i + 0 >= from) print; break } }' \
	/tmp/ept-trace.raw >/tmp/ept-trace.win
lines=$(wc -l </tmp/ept-trace.win)
echo "EPT-TRACE-BEGIN reason=$reason${lat:+ lat_us=$lat} window_ms=$win end_s=$end lines=$lines total=$(wc -l </tmp/ept-trace.raw) buffer_kb=$(cat $T/buffer_size_kb)"
sed 's/^/ftrace: /' /tmp/ept-trace.win
echo "EPT-TRACE-END reason=$reason lines=$lines"
# Let the UART drain (the serial IRQ may have been disabled, "nobody
# cared"): a power-off right after a long dump lost its last 4 KB.
sleep 2
rm -f /tmp/ept-trace.raw /tmp/ept-trace.win
if [ $reason = hang ]; then
	echo >$T/trace
	echo 1 >$T/tracing_on
else
	echo 2 >$T/snapshot 2>/dev/null # clear, keep allocated
fi
exit 0
