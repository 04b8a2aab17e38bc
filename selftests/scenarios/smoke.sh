# Guest steps: boot smoke test. The kernel is PREEMPT_RT with 2 CPUs; a bad
# parameter is refused with EINVAL and nothing stays loaded; a short
# throughput run loads, reports in KTAP and unloads. The host judges the
# console (any splat fails it).
echo "EPT-SMOKE release=$(uname -r) preempt=$(uname -v | grep -o PREEMPT_RT || echo none) cpus=$(grep -c ^processor /proc/cpuinfo)"
rc=0
uname -v | grep -q PREEMPT_RT || { echo "EPT-SMOKE error=not a PREEMPT_RT kernel"; rc=1; }
if [ ! -f /lib/modules/epoll_torture.ko ]; then
	echo "EPT-SMOKE module=absent"
	exit $rc
fi
if insmod /lib/modules/epoll_torture.ko scenario=no-such-scenario 2>/dev/null; then
	echo "EPT-SMOKE error=bad parameter accepted"; rc=1
	rmmod epoll_torture
fi
ept-run throughput events=2000 threads_max=2 || { echo "EPT-SMOKE error=ept-run exit $?"; rc=1; }
if grep -q '^epoll_torture ' /proc/modules; then
	echo "EPT-SMOKE error=module still loaded"; rc=1
fi
echo "EPT-SMOKE result=$([ $rc = 0 ] && echo ok || echo fail)"
exit $rc
