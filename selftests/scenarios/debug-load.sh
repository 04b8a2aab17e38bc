# Guest steps for the debug-overlay boot (DEBUG=1: lockdep, LOCK_STAT,
# DEBUG_LIST, DEBUG_ATOMIC_SLEEP): the kernel's epoll selftests while the
# module's throughput scenario loads epoll from kthreads on both CPUs. The
# host fails the run on any splat. Then it prints what lockdep recorded for
# ep->lock: an rwlock_t shows separate read (-R) and write (-W) hold-time
# rows in /proc/lock_stat, a spinlock_t one row; that is the running
# kernel's own word for the lock type.
echo "EPT-DEBUG lockdep=$([ -e /proc/lockdep ] && echo yes || echo no) lock_stat=$([ -e /proc/lock_stat ] && echo yes || echo no)"
[ -w /proc/sys/kernel/lock_stat ] && echo 1 >/proc/sys/kernel/lock_stat
rm -f /tmp/stop-load
(
	n=0
	while [ ! -e /tmp/stop-load ]; do
		# A lockdep kernel under TCG is slow: a lenient no-progress watchdog.
		ept-run --timeout 300 throughput stall_ms=60000 >/dev/null 2>&1
		n=$((n + 1))
	done
	echo "EPT-DEBUG load-runs=$n"
) &
load=$!
sh /ept/scenarios/epoll-selftests.sh
rc=$?
touch /tmp/stop-load
wait $load
if [ -e /proc/lock_stat ]; then
	echo "EPT-DEBUG lock_stat rows for ep->lock:"
	grep -E '^ *&ep->lock(-[RW])?:' /proc/lock_stat | sed 's/^ */EPT-LOCKSTAT /'
fi
if [ -e /proc/lockdep ]; then
	echo "EPT-DEBUG lockdep classes: $(grep -c '' /proc/lockdep)"
	grep -E '&ep->lock' /proc/lockdep | head -n 4 | sed 's/^/EPT-LOCKDEP /'
fi
exit $rc
