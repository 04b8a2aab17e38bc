#!/usr/bin/env bash
# Config benchmark: what the kernel config costs a cold build. Per arch,
# one cold kernel build (build-kernel.sh, spinlock, empty build cache, the
# unpacked source shared) with the config fragments of BEFORE and one with
# this tree's, one after the other. Prints wall and CPU seconds, the C
# objects compiled and the image size, and writes them to
# qemu/bench-config-results.md.
#
#   qemu/bench-config.sh [ARCH...]    default: x86_64 riscv64
#   BEFORE=REV                        default: the previous commit that
#                                     changed qemu/configs/
set -euo pipefail
EPT_TAG=bench-config
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
[ $# -gt 0 ] && archs=("$@") || archs=(x86_64 riscv64)
before=${BEFORE:-$(git log -n2 --format=%h -- qemu/configs | sed -n 2p)}
[ -n "$before" ] || die "no earlier commit changed qemu/configs; set BEFORE=REV"
git rev-parse -q --verify "$before^{commit}" >/dev/null || die "BEFORE=$before is not a commit"
after=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- qemu/configs || echo +)
res="$EPT_TOP/qemu/bench-config-results.md"

# The unpacked source, once, in the real cache: every build below shares it.
src=$("$EPT_TOP/qemu/kernel-source.sh" "${BASE:-7}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ept-bench-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/before"
git archive "$before" qemu | tar -x -C "$tmp/before"

# build LABEL TOP ARCH: one cold build; prints "wall cpu objects image_kib".
build() {
	local label=$1 top=$2 arch=$3 c="$tmp/cache-$1-$3" t
	mkdir -p "$c"
	ln -s "$EPT_CACHE/src" "$c/src"; ln -s "$EPT_CACHE/debs" "$c/debs"
	say "$arch: cold build with the $label config ($top/qemu/configs)"
	t=$( { TIMEFORMAT='%R %U %S'; time EPT_CACHE=$c bash "$top/qemu/build-kernel.sh" "$arch" spinlock >"$c/cell" 2>"$c/build.log"; } 2>&1 ) ||
		die "$arch: $label build failed (log $c/build.log)"
	local b cell
	cell=$(cat "$c/cell")
	b=$(ls -d "$c"/build/"$arch"-*)
	read -r wall user sys <<<"$t"
	echo "$wall $(echo "$user + $sys" | bc) $(find "$b" -name '*.o' ! -name '*.mod.o' ! -path '*/rust/*' | wc -l) $(( $(stat -c %s "$cell/$(. "$cell/build-info.env"; echo "$KIMAGE_FILE")") / 1024 ))"
	rm -rf "$c"
}

rows=()
# Rows of arches not measured this time stay from the file's last table.
if [ -f "$res" ]; then
	while IFS= read -r line; do
		a=$(echo "$line" | cut -d'|' -f2 | tr -d ' ')
		[[ " ${archs[*]} " == *" $a "* ]] || rows+=("$line")
	done < <(grep -E '^\| [a-z0-9_]+ \| [0-9]' "$res")
fi
for arch in "${archs[@]}"; do
	m=$(build before "$tmp/before" "$arch") || exit 1
	read -r w0 c0 o0 i0 <<<"$m"
	say "$arch: $before: ${w0} s wall, ${c0} s CPU, $o0 C objects"
	m=$(build after "$EPT_TOP" "$arch") || exit 1
	read -r w1 c1 o1 i1 <<<"$m"
	say "$arch: $after: ${w1} s wall, ${c1} s CPU, $o1 C objects"
	ratio=$(echo "scale=2; $w1 / $w0" | bc)
	rows+=("| $arch | $w0 | $c0 | $o0 | $i0 | $w1 | $c1 | $o1 | $i1 | $ratio | $(date -u +%Y-%m-%d) $before..$after |")
done

{
	echo "# Config benchmark"
	echo
	echo "Made by \`qemu/bench-config.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m) host."
	echo "One cold kernel build (spinlock, empty build cache, the unpacked source shared) per arch and config,"
	echo "before and after = the fragments of the two commits in the row's last column; the two builds ran one after the"
	echo "other. Seconds: wall, and CPU (user + system) of the whole build-kernel.sh. Compare within a row"
	echo "(a row from an earlier run says so in its date column)."
	echo "Base: $(grep -hE 'BASE_PKG|BASE_DEB_VERSION' "$src/.base.env" | tr '\n' ' ')"
	echo "Toolchain: $(toolchain_id)"
	echo
	echo "| arch | before: wall s | CPU s | C objects | image KiB | after: wall s | CPU s | C objects | image KiB | wall after/before | date, commits |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >"$res"
cat "$res"
