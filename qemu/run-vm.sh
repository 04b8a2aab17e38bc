#!/usr/bin/env bash
# Boot one (ARCH, VARIANT) guest: exactly 2 vCPUs, no network, the serial
# console on stdio.
#
#   run-vm.sh ARCH VARIANT [--steps FILE] [--deadline SEC] [--log FILE]
#             [--idle SEC] [--append ARGS] [--no-build]
#
# Without --steps: an interactive shell (Ctrl-A x quits QEMU).
# With --steps: FILE runs as /ept/steps.sh in the guest, which then powers
# off. The console is logged with host elapsed time per line
# ("[+0012.345] line"). After --deadline seconds (default 600), or after
# --idle seconds without console output, the host asks the guest for its
# blocked tasks (SysRq-w, then SysRq-t) over the serial line, waits a
# little, kills QEMU and exits 124 (HANG); the log is kept.
# Exit: 0 the guest powered off, 124 hang, 1 harness error.
set -euo pipefail
EPT_STEP=vm
. "$(dirname "$0")/lib.sh"
ARCH=${1:?usage: run-vm.sh ARCH VARIANT [--steps FILE] [--deadline SEC] [--log FILE]}
VARIANT=$(variant_canon "${2:?usage: run-vm.sh ARCH VARIANT ...}")
shift 2
steps="" deadline=600 idle=0 log="" append="" build=1
while [ $# -gt 0 ]; do
	case "$1" in
	--steps) steps=$(realpath -e "$2") || die "--steps: no such file $2"; shift 2 ;;
	--deadline) deadline=$2; shift 2 ;;
	--idle) idle=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	*) die "unknown option $1" ;;
	esac
done
EPT_STEP="vm $ARCH/$VARIANT"

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
if [ -n "$steps" ]; then
	mkdir -p "$tmp/ept"
	printf 'dir /ept 0755 0 0\nfile /ept/steps.sh %s 0755 0 0\n' "$steps" >"$tmp/list"
	"$BUILD_DIR/usr/gen_init_cpio" "$tmp/list" | gzip -1 >"$tmp/steps.cpio.gz"
	# The kernel unpacks concatenated archives in order.
	cat "$img" "$tmp/steps.cpio.gz" >"$tmp/initrd"
	img="$tmp/initrd"
fi

cmdline="console=$CONSOLE $CMDLINE_ARCH panic=-1 loglevel=7 sysrq_always_enabled $append"
qemu=("$QEMU" $QEMU_MACHINE $accel -smp 2 -m 1024 -nographic -no-reboot
	-nic none -kernel "$cell/$(basename "$KIMAGE")" -initrd "$img" -append "$cmdline"
	-pidfile "$tmp/qemu.pid")
[ "$ARCH" = riscv64 ] && qemu+=(-bios default)

if [ -z "$steps" ]; then
	say "interactive $ARCH/$VARIANT ($BASE_PKG $BASE_DEB_VERSION, ep->lock $LOCK_TYPE); Ctrl-A x quits"
	exec "${qemu[@]}"
fi

[ -n "$log" ] || log="$EPT_TOP/out/logs/$ARCH-$VARIANT-$(date +%Y%m%d-%H%M%S).log"
mkdir -p "$(dirname "$log")"
{
	echo "# epoll-torture console log"
	sed 's/^/# /' "$cell/build-info.env"
	echo "# qemu: ${qemu[*]}"
	echo "# deadline=$deadline idle=$idle steps=$(basename "$steps")"
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
mkfifo "$tmp/in"
"${qemu[@]}" <"$tmp/in" 2>&1 | stamp >>"$log" &
pipe_pid=$!
exec 8>"$tmp/in"    # QEMU's stdin stays open so we can type SysRq into it
start=$(date +%s)
hung=0 last_size=0 last_change=$start
say "booting, log $log (deadline ${deadline}s)"
while kill -0 $pipe_pid 2>/dev/null; do
	sleep 1
	now=$(date +%s)
	size=$(stat -c %s "$log")
	[ "$size" != "$last_size" ] && { last_size=$size; last_change=$now; }
	if [ $((now - start)) -ge "$deadline" ] || { [ "$idle" -gt 0 ] && [ $((now - last_change)) -ge "$idle" ]; }; then
		hung=1; break
	fi
done
if [ $hung = 1 ]; then
	why="deadline ${deadline}s"; [ $((now - start)) -lt "$deadline" ] && why="no console output for ${idle}s"
	echo "# host: $why reached after $((now - start))s: asking for SysRq-w and SysRq-t" >>"$log"
	# QEMU's serial mux sends a BREAK on Ctrl-A b; the next key is the SysRq.
	printf '\001b' >&8; sleep 1; printf 'w' >&8; sleep 8
	printf '\001b' >&8; sleep 1; printf 't' >&8; sleep 12
	echo "# host: HANG: killing QEMU after $(( $(date +%s) - start ))s" >>"$log"
	kill "$(cat "$tmp/qemu.pid" 2>/dev/null)" 2>/dev/null || true
	sleep 1
	kill -9 "$(cat "$tmp/qemu.pid" 2>/dev/null)" 2>/dev/null || true
	wait $pipe_pid 2>/dev/null || true
	say "HANG ($why); log kept: $log"
	exit 124
fi
wait $pipe_pid || true
exec 8>&-
echo "# host: QEMU exited after $(( $(date +%s) - start ))s" >>"$log"
if grep -q 'EPT: steps end' "$log"; then
	say "guest powered off after $(( $(date +%s) - start ))s; log $log"
	exit 0
fi
say "guest exited without finishing its steps; log $log"
exit 1
