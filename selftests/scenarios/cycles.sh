#!/bin/sh
# Lifecycle proof: (1) rmmod in the middle of each scenario; (2) CYCLES
# (default 100) insmod/rmmod cycles of short runs, alternating scenarios and
# aborting half of them mid-run; (3) invalid parameters are refused with
# -EINVAL and leave nothing loaded; then checks for leftover threads,
# splats (WARNING/BUG/Oops) and leaks: open file handles (each cycle
# opens 65 files that the module references: a lost fput() keeps them
# all) and MemAvailable (the latency samples alone are 2 MiB per
# consumer) before and after the cycles, and kmemleak when present.
CYCLES=${CYCLES:-100}
fail=0
note() { echo "EPT: cycles: $*"; }
threads() { ps -o comm 2>/dev/null | grep -c 'ept_' ; }
files() { sleep 1; cut -f1 /proc/sys/fs/file-nr; }
mem() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

for sc in inversion stall soak throughput; do
	# (throughput ends by event count: enough events to outlast 2 s)
	extra=""; [ "$sc" = throughput ] && extra=events=2000000
	ept-run --abort-after 2 "$sc" duration_s=60 $extra
	rc=$?
	[ $rc -eq 5 ] || { note "abort of $sc: rc=$rc (want 5)"; fail=1; }
	lsmod | grep -q epoll_torture && { note "module still loaded after abort of $sc"; fail=1; }
done

f0=$(files) a0=$(mem MemAvailable) s0=$(mem SUnreclaim)
i=1
while [ "$i" -le "$CYCLES" ]; do
	case $((i % 4)) in
	0) ept-run inversion duration_s=1 hog_burst_ms=5 hog_period_ms=20 >/dev/null ;;
	1) ept-run --abort-after 1 stall duration_s=30 >/dev/null ;;
	2) ept-run throughput threads_max=4 events=500 >/dev/null ;;
	3) ept-run --abort-after 1 inversion duration_s=30 >/dev/null ;;
	esac
	rc=$?
	[ $rc -le 1 ] || [ $rc -eq 5 ] || { note "cycle $i rc=$rc"; fail=1; }
	if lsmod | grep -q epoll_torture; then note "cycle $i: module still loaded"; fail=1; rmmod epoll_torture; fi
	i=$((i+1))
done
note "$CYCLES cycles done"
f1=$(files) a1=$(mem MemAvailable) s1=$(mem SUnreclaim)
note "leak check: file handles $f0 -> $f1, MemAvailable $a0 -> $a1 kB, SUnreclaim $s0 -> $s1 kB"
[ $((f1 - f0)) -lt 65 ] || { note "file handles grew by $((f1 - f0)): references leaked"; fail=1; }
[ $((a0 - a1)) -lt 8192 ] || { note "MemAvailable fell by $((a0 - a1)) kB: memory leaked"; fail=1; }

# Invalid parameters: each must fail (exit 2 = insmod failed).
for p in producer_prio=100 consumer_cpu=7 duration_s=0 scenario=bogus hog_burst_ms=300 \
	hog_period_ms=99999999999 hogs=0:stall timer_cpu=0:stall producers=65 evfds=; do
	sc=inversion; arg=${p%%:*}
	case $p in *:*) sc=${p#*:} ;; esac
	ept-run "$sc" "$arg" >/dev/null
	rc=$?
	[ $rc -eq 2 ] || { note "invalid $arg ($sc) accepted? rc=$rc"; fail=1; }
	lsmod | grep -q epoll_torture && { note "loaded after invalid $arg"; fail=1; rmmod epoll_torture; }
done
n=$(threads)
[ "$n" -eq 0 ] || { note "$n ept_ threads left"; fail=1; }
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak; sleep 5; echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -c unreferenced /sys/kernel/debug/kmemleak)
	note "kmemleak unreferenced=$leaks"; [ "$leaks" -eq 0 ] || fail=1
fi
if dmesg | grep -E 'WARNING:|BUG:|Oops|general protection|refcount_t'; then note "splat in dmesg"; fail=1; fi
note "done fail=$fail"
exit $fail
