# Guest steps: boot smoke test. The kernel is what its label says, the
# module loads and unloads cleanly. Judged by the host from the console.
echo "EPT-SMOKE release=$(uname -r) preempt=$(uname -v | grep -o PREEMPT_RT || echo none) cpus=$(grep -c ^processor /proc/cpuinfo)"
rc=0
if [ ! -f /lib/modules/epoll_torture.ko ]; then
	echo "EPT-SMOKE module=absent"
	exit 0
fi
if [ -x /bin/ept-run ]; then
	ept-run smoke || rc=1
else
	insmod /lib/modules/epoll_torture.ko || rc=1
	grep -q '^epoll_torture ' /proc/modules && rmmod epoll_torture || rc=1
fi
if grep -q '^epoll_torture ' /proc/modules; then
	echo "EPT-SMOKE error=module still loaded"; rc=1
fi
dmesg | grep 'epoll_torture' | tail -n 20
echo "EPT-SMOKE result=$([ $rc = 0 ] && echo ok || echo fail)"
exit $rc
