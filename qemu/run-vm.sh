#!/usr/bin/env bash
# Boot one (ARCH, VARIANT) guest: exactly 2 vCPUs, no network, the serial
# console on stdio. Everything about the arch (QEMU binary, machine,
# firmware, CPU, console, command line) comes from qemu/arch/ARCH.conf.
#
#   run-vm.sh ARCH VARIANT [--plan FILE] [--deadline SEC] [--log FILE]
#             [--idle SEC] [--append ARGS] [--no-build]
#
# Without --plan: an interactive shell (Ctrl-A x quits QEMU).
# With --plan (old name: --steps): FILE runs as /ept/plan.sh in the guest,
# which then powers off. `ept run` generates plans; a plan announces each
# run's own deadline in a comment line
#     # ept-run-deadline scenario=S repeat=N seconds=SEC
# and brackets each run on the console with
#     EPT: run begin scenario=S repeat=N ... EPT: run end scenario=S repeat=N rc=R
# The console is logged with host elapsed time per line ("[+0012.345] line").
# After --deadline seconds for the whole boot (default 600), after a run's
# own deadline, or after --idle seconds without console output, the host
# asks the guest for its blocked tasks (SysRq-w, then SysRq-t) over the
# serial line, waits a little, kills QEMU and exits 124 (HANG); the log is
# kept. The host's load is noted at the start and at the end (also on the
# HANG path, before the kill):
#     # host: load start loadavg=a,b,c ncpu=N
#     # host: load end loadavg=a,b,c wall_s=W qemu_cpu_s=C vcpu_wait_s=V
# (qemu_cpu_s: utime+stime of QEMU; vcpu_wait_s: run-queue wait summed over
# QEMU's threads, /proc/PID/task/*/schedstat field 2.)
# EPT_VM_LOCK=FILE: hold an flock on FILE while QEMU runs (one VM at a time).
# TRACE=1 (docs/trace.md): on a hang SysRq-z (ftrace_dump) follows
# SysRq-w/-t (the guest enables the events itself, after boot).
# Exit: 0 the guest powered off after its plan, 124 hang, 1 harness error.
set -euo pipefail
EPT_TAG=vm
. "$(dirname "$0")/lib.sh"
usage="usage: run-vm.sh ARCH VARIANT [--plan FILE] [--deadline SEC] [--log FILE] [--idle SEC] [--append ARGS] [--no-build]"
ARCH=${1:?$usage}
VARIANT=$(variant_canon "${2:?$usage}")
shift 2
plan="" deadline=600 idle=0 log="" append="" build=1
while [ $# -gt 0 ]; do
	case "$1" in
	--plan|--steps) plan=$(realpath -e "$2") || die "$1: no such file $2"; shift 2 ;;
	--deadline) deadline=$2; shift 2 ;;
	--idle) idle=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	*) die "unknown option $1 ($usage)" ;;
	esac
done
EPT_TAG="vm $ARCH/$VARIANT"

if [ $build = 1 ]; then
	img=$("$EPT_TOP/qemu/mkimage.sh" "$ARCH" "$VARIANT")
fi
cell=$("$EPT_TOP/qemu/build-kernel.sh" "$ARCH" "$VARIANT" 2>/dev/null)
load_cell "$cell"
img=$(image_path "$cell")
[ -f "$img" ] || die "no initramfs in $cell (run without --no-build)"

# Accelerator: TCG unless KVM really works (a flag in cpuinfo and a probe).
. "$EPT_TOP/qemu/arch/$ARCH.conf"
accel="-accel $TCG_ACCEL $QEMU_CPU_TCG"
kvm_ok() {
	[ -w /dev/kvm ] && grep -Eqw "$KVM_CPU_FLAG" /proc/cpuinfo || return 1
	# /dev/kvm can exist without working (an emulating module): probe it.
	echo quit | timeout 20 "$QEMU" -accel kvm -M none -nographic -monitor stdio >/dev/null 2>&1
}
if [ "$(uname -m | sed 's/amd64/x86_64/')" = "$ARCH" ] && [ "${EPT_NO_KVM:-0}" != 1 ] && kvm_ok; then
	accel="-accel kvm $QEMU_CPU_KVM"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$plan" ]; then
	printf 'dir /ept 0755 0 0\nfile /ept/plan.sh %s 0755 0 0\n' "$plan" >"$tmp/list"
	"$BUILD_DIR/usr/gen_init_cpio" "$tmp/list" | gzip -1 >"$tmp/plan.cpio.gz"
	# The kernel unpacks concatenated archives in order.
	cat "$img" "$tmp/plan.cpio.gz" >"$tmp/initrd"
	img="$tmp/initrd"
fi

# kunit.filter_glob: only our module's KUnit suite runs. The kernel crate's
# built-in suites would run at every boot, and one of them
# (rust_spinlock_irq_condvar) asserts that spin_lock_irq() disabled
# interrupts, which PREEMPT_RT does not: a lockdep WARNING on DEBUG=1 boots
# that has nothing to do with eventpoll.
# TRACE=1: a printk ring big enough for a whole SysRq-z dump (2 x 1 MB of
# trace is about 70,000 lines); with the default ring the reader that
# echoes /dev/kmsg is overrun and only the dump's tail reaches the host.
[ "${TRACE:-0}" = 1 ] && append="log_buf_len=16M $append"
cmdline="console=$CONSOLE $CMDLINE_ARCH panic=-1 loglevel=7 sysrq_always_enabled kunit.filter_glob=epoll_torture $append"
qemu=("$QEMU" $QEMU_MACHINE $QEMU_FIRMWARE $accel -smp 2 -m 1024 -nographic -no-reboot
	-nic none -kernel "$cell/$(basename "$KIMAGE")" -initrd "$img" -append "$cmdline"
	-pidfile "$tmp/qemu.pid")

if [ -z "$plan" ]; then
	say "interactive $ARCH/$VARIANT ($BASE_PKG $BASE_DEB_VERSION, ep->lock $LOCK_TYPE); Ctrl-A x quits"
	exec "${qemu[@]}"
fi

# Each run's own deadline, from the plan: "scenario repeat" -> seconds.
declare -A run_deadline=()
while read -r s r sec; do
	run_deadline["$s $r"]=$sec
done < <(sed -nE 's/^# ept-run-deadline scenario=([^ ]+) repeat=([0-9]+) seconds=([0-9]+).*/\1 \2 \3/p' "$plan")

[ -n "$log" ] || log="$EPT_TOP/out/logs/$ARCH-$VARIANT-$(date +%Y%m%d-%H%M%S).log"
mkdir -p "$(dirname "$log")"
{
	echo "# epoll-torture console log"
	sed 's/^/# /' "$cell/build-info.env"
	echo "# qemu: ${qemu[*]}"
	echo "# deadline=$deadline idle=$idle plan=$(basename "$plan")"
} >"$log"

# Timestamp each console line with host elapsed time (EPOCHREALTIME, bash 5).
stamp() {
	local t0=${EPOCHREALTIME/./} line e
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line//$'\r'/}
		e=$(( ${EPOCHREALTIME/./} - t0 ))
		printf '[+%04d.%03d] %s\n' $((e / 1000000)) $((e / 1000 % 1000)) "$line"
	done
}

# The host's load: loadavg, and QEMU's CPU time and run-queue wait, sampled
# every second while QEMU lives (its /proc entry is gone once it exits).
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,; }
qemu_pid="" cpu_ticks=0 wait_ns=0
sample() {
	[ -n "$qemu_pid" ] || qemu_pid=$(cat "$tmp/qemu.pid" 2>/dev/null) || return 0
	local st w
	st=$(cat "/proc/$qemu_pid/stat" 2>/dev/null) || return 0
	w=$(cat /proc/"$qemu_pid"/task/*/schedstat 2>/dev/null | awk '{ s += $2; n++ } END { if (n) printf "%d", s }')
	[ -n "$w" ] || return 0
	st=${st##*) }
	set -- $st
	cpu_ticks=$(( ${12} + ${13} )) wait_ns=$w
}
load_end() {
	awk -v l="$(loadavg)" -v w="$(( ${EPOCHREALTIME/./} - t0_us ))" -v c="$cpu_ticks" \
		-v hz="$(getconf CLK_TCK)" -v n="$wait_ns" 'BEGIN {
		printf "# host: load end loadavg=%s wall_s=%.1f qemu_cpu_s=%.1f vcpu_wait_s=%.1f\n", l, w / 1e6, c / hz, n / 1e9 }' >>"$log"
}

# EPT_VM_LOCK=FILE: one VM at a time on this machine (latency verdicts
# and races need the host's cores); wait for the lock only now, after the
# build, so builds overlap other boots.
if [ -n "${EPT_VM_LOCK:-}" ]; then
	exec 7>"$EPT_VM_LOCK"
	if ! flock -n 7; then
		say "waiting for the VM lock $EPT_VM_LOCK"
		w0=$(date +%s); flock 7
		echo "# host: waited $(( $(date +%s) - w0 ))s for the VM lock" >>"$log"
	fi
fi
mkfifo "$tmp/in"
t0_us=${EPOCHREALTIME/./}
"${qemu[@]}" <"$tmp/in" 2>&1 | stamp >>"$log" &
pipe_pid=$!
exec 8>"$tmp/in"    # QEMU's stdin stays open so we can type SysRq into it
echo "# host: load start loadavg=$(loadavg) ncpu=$(nproc)" >>"$log"
start=$(date +%s)
hung=0 last_size=0 last_change=$start why=""
cur="" cur_start=$start
say "booting, log $log (deadline ${deadline}s)"
while kill -0 $pipe_pid 2>/dev/null; do
	sleep 1
	sample
	now=$(date +%s)
	size=$(stat -c %s "$log")
	if [ "$size" != "$last_size" ]; then
		last_size=$size; last_change=$now
		# The run in progress: the last run marker on the console.
		m=$(grep -a -oE 'EPT: run (begin|end) scenario=[^ ]+ repeat=[0-9]+' "$log" | tail -n1 || true)
		if [ "$m" != "$cur" ]; then cur=$m; cur_start=$now; fi
	fi
	if [ $((now - start)) -ge "$deadline" ]; then
		hung=1; why="deadline ${deadline}s"; break
	fi
	if [ "$idle" -gt 0 ] && [ $((now - last_change)) -ge "$idle" ]; then
		hung=1; why="no console output for ${idle}s"; break
	fi
	if [[ $cur == "EPT: run begin "* ]]; then
		set -- $cur
		s=${4#scenario=} r=${5#repeat=}
		rd=${run_deadline["$s $r"]:-}
		if [ -n "$rd" ] && [ $((now - cur_start)) -ge "$rd" ]; then
			hung=1; why="run deadline ${rd}s of scenario=$s repeat=$r"; break
		fi
	fi
done
if [ $hung = 1 ]; then
	echo "# host: $why reached after $((now - start))s: asking for SysRq-w and SysRq-t" >>"$log"
	# QEMU's serial mux sends a BREAK on Ctrl-A b; the next key is the SysRq.
	printf '\001b' >&8; sleep 1; printf 'w' >&8; sleep 8
	printf '\001b' >&8; sleep 1; printf 't' >&8; sleep 12
	if [ "${TRACE:-0}" = 1 ]; then
		# ftrace_dump: the buffer the module froze; wait until the console
		# has been quiet for 3 s (at most 120 s).
		echo "# host: TRACE=1: asking for SysRq-z (ftrace dump)" >>"$log"
		printf '\001b' >&8; sleep 1; printf 'z' >&8
		q0=$(date +%s) qs=0 qsize=$(stat -c %s "$log")
		while [ $(( $(date +%s) - q0 )) -lt 120 ] && [ $qs -lt 3 ]; do
			sleep 1
			n=$(stat -c %s "$log")
			if [ "$n" = "$qsize" ]; then qs=$((qs + 1)); else qs=0 qsize=$n; fi
		done
	fi
	sample
	load_end
	echo "# host: HANG: killing QEMU after $(( $(date +%s) - start ))s" >>"$log"
	[ -n "$qemu_pid" ] || qemu_pid=$(cat "$tmp/qemu.pid" 2>/dev/null || true)
	kill "$qemu_pid" 2>/dev/null || true
	sleep 1
	kill -9 "$qemu_pid" 2>/dev/null || true
	wait $pipe_pid 2>/dev/null || true
	say "HANG ($why); log kept: $log"
	exit 124
fi
wait $pipe_pid || true
exec 8>&-
load_end
echo "# host: QEMU exited after $(( $(date +%s) - start ))s" >>"$log"
if grep -aqE 'EPT: (plan|steps) end' "$log"; then
	say "guest powered off after $(( $(date +%s) - start ))s; log $log"
	exit 0
fi
say "guest exited without finishing its plan; log $log"
exit 1
