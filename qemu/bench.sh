#!/usr/bin/env bash
# Pipeline benchmark: cold time to the first booted VM per arch (empty
# build cache; packages and the downloaded source .debs reused), the rebuild
# time of a variant switch (spinlock -> rwlock -> spinlock on one build dir),
# and boot-to-poweroff time per arch (median of 3). Prints the numbers and
# writes them to qemu/bench-results.md.
#
#   bench.sh [ARCH...]          default: x86_64 riscv64
set -euo pipefail
EPT_TAG=bench
. "$(dirname "$0")/lib.sh"
archs=("${@:-x86_64}"); [ $# -gt 0 ] || archs=(x86_64 riscv64)
main_cache=$EPT_CACHE
cold=$(mktemp -d "${TMPDIR:-/tmp}/ept-bench.XXXXXX")
trap 'rm -rf "$cold"' EXIT
mkdir -p "$cold/debs"
cp -l "$main_cache"/debs/*.deb "$cold/debs/" 2>/dev/null || true
steps=$(mktemp); echo true >"$steps"   # an empty plan: boot, power off
res="$EPT_TOP/qemu/bench-results.md"
rows=()
# secs CMD...: run CMD quietly, print its wall time; fail if CMD fails.
secs() {
	local t0=$(date +%s.%N) rc=0
	"$@" >/dev/null 2>&1 || rc=$?
	echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f'
	return $rc
}

for arch in "${archs[@]}"; do
	say "$arch: cold build + first boot (empty cache $cold)"
	t_cold=$(EPT_CACHE=$cold secs bash qemu/run-vm.sh "$arch" spinlock --plan "$steps" --deadline 300 --log "$cold/first.log") ||
		die "$arch: first boot failed (log $cold/first.log)"
	say "$arch: cold to first boot ${t_cold}s"
	t_switch="n/a" t_back="n/a"
	if ls "$EPT_TOP"/qemu/variants/rwlock/*.patch >/dev/null 2>&1; then
		t_switch=$(EPT_CACHE=$cold secs bash qemu/build-kernel.sh "$arch" rwlock) || die "$arch: rwlock build failed"
		# Back to spinlock with its cell dropped: the work tree flips back.
		rm -rf "$cold"/cells/"$arch"/*-spinlock-*
		t_back=$(EPT_CACHE=$cold secs bash qemu/build-kernel.sh "$arch" spinlock) || die "$arch: spinlock rebuild failed"
		say "$arch: variant switch spinlock->rwlock ${t_switch}s, rwlock->spinlock ${t_back}s"
	fi
	# The image for the (possibly just rebuilt) cell, outside the timing.
	EPT_CACHE=$cold bash qemu/mkimage.sh "$arch" spinlock >/dev/null
	boots=()
	for i in 1 2 3; do
		t=$(EPT_CACHE=$cold secs bash qemu/run-vm.sh "$arch" spinlock --no-build --plan "$steps" --deadline 120 --log "$cold/boot$i.log") ||
			die "$arch: boot $i failed (log $cold/boot$i.log)"
		boots+=("$t")
	done
	t_boot=$(printf '%s\n' "${boots[@]}" | sort -n | sed -n 2p)
	say "$arch: boot to poweroff ${boots[*]}s (median $t_boot)"
	rows+=("| $arch | $t_cold | $t_switch | $t_back | $t_boot (${boots[*]}) |")
done

{
	echo "# Pipeline benchmark"
	echo
	echo "Made by \`make bench\` (qemu/bench.sh) on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m) host, TCG."
	echo "Base: $(cat "$cold"/src/*/.base.env 2>/dev/null | grep -E 'BASE_PKG|BASE_DEB_VERSION' | tr '\n' ' ')"
	echo "Toolchain: $(toolchain_id)"
	echo
	echo "| arch | cold: empty cache to first booted VM (s) | switch spinlock->rwlock (s) | switch back (s) | boot to poweroff, median of 3 (s) |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Cold includes unpacking the cached source .deb, configuring, building"
	echo "the kernel, module, guest programs and initramfs. Seconds of wall time"
	echo "on a shared machine: compare within one run."
} >"$res"
cat "$res"
