#!/bin/busybox sh
# /init of every epoll-torture guest. With /ept/steps.sh (added by
# run-vm.sh --steps) it runs the steps and powers off; without, it gives an
# interactive shell where `insmod /lib/modules/epoll_torture.ko` and `dmesg`
# work. Lines starting with "EPT:" are read by the host.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Let the host ask for blocked-task dumps (SysRq-w/-t over the serial line).
echo 1 >/proc/sys/kernel/sysrq
echo "EPT: guest up release=$(uname -r) version=$(uname -v) cpus=$(grep -c ^processor /proc/cpuinfo)"
if [ -f /ept/steps.sh ]; then
	echo "EPT: steps begin"
	sh /ept/steps.sh
	echo "EPT: steps end rc=$?"
else
	echo "EPT: interactive shell; try: insmod /lib/modules/epoll_torture.ko && dmesg | tail"
	setsid cttyhack sh -l
fi
sync
poweroff -f
