#!/usr/bin/env bash
# make quick: the one-line answer for a patch. On one arch (ARCH, default
# x86_64), your kernel against the two references, spinlock (the fix as
# shipped) and rwlock (the pre-fix design), on the quick scenarios
# (`ept defaults quick scenarios`: inversion, wakeup, stall), then one
# verdict table.
#
#   make quick VARIANT=spinlock-2025            a variant of qemu/variants/
#   make quick PATCHES=my.patch[,more.patch]    your patches on Debian's base (VARIANT=mine)
#   make quick KERNEL_SRC=/path/to/linux        your tree as it is (VARIANT=mine)
#
# The references run first, unless their last results are still valid:
# the same kernels (cell keys), image and scenario data as last time
# (REFRESH=1 reruns them). Reports: out/quick/{ref,mine}/, merged into
# out/quick/. One VM at a time (EPT_VM_LOCK, default a lock in EPT_CACHE).
# Exit: 0 when every run met its expectation (yours: the spinlock row's).
set -uo pipefail
EPT_TAG=quick
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
EPT="$EPT_TOP/selftests/host/target/release/ept"
ARCH=${ARCH:-x86_64}
VARIANT=${VARIANT:-}
if [ -z "$VARIANT" ]; then
	if [ -n "${PATCHES:-}${KERNEL_SRC:-}" ]; then VARIANT=mine; else VARIANT=spinlock; fi
fi
VARIANT=$(variant_canon "$VARIANT")
SCENARIOS=${SCENARIOS:-$("$EPT" defaults quick scenarios)}
refs=$("$EPT" defaults quick variants)
mkdir -p "$EPT_CACHE/locks" out/quick
export EPT_VM_LOCK=${EPT_VM_LOCK:-$EPT_CACHE/locks/vm.lock}
t0=$(date +%s)

# The references: Debian's base, the variants' own patches.
refs_todo=""
for v in $refs; do [ "$v" = "$VARIANT" ] && [ -z "${PATCHES:-}${KERNEL_SRC:-}" ] || refs_todo+="$v "; done
ref_key() { # what the reference verdicts depend on
	local v
	for v in $refs_todo; do
		env -u PATCHES -u KERNEL_SRC bash qemu/mkimage.sh "$ARCH" "$v" 2>/dev/null | xargs sha256sum | cut -c1-16 || return 1
	done
	sha256sum selftests/host/scenarios.json qemu/run-vm.sh | cut -c1-16
	echo "$SCENARIOS $refs_todo ${DURATION:-}"
}
rc=0
reports=()
if [ -n "$refs_todo" ]; then
	key=$(ref_key | sha256sum | cut -c1-16)
	if [ "${REFRESH:-0}" != 1 ] && [ -f out/quick/ref/report.json ] && [ "$(cat out/quick/ref/key 2>/dev/null)" = "$key" ]; then
		say "references ($refs_todo) unchanged since $(date -r out/quick/ref/report.json '+%F %T'): reusing their verdicts (REFRESH=1 reruns them)"
	else
		say "references: $refs_todo on $ARCH"
		env -u PATCHES -u KERNEL_SRC "$EPT" run --archs "$ARCH" --variants "$refs_todo" --scenarios "$SCENARIOS" \
			${DURATION:+--duration "$DURATION"} --out out/quick/ref --logs out/quick/ref/logs >/dev/null
		r=$?; [ $r -le 1 ] || rc=$r
		echo "$key" >out/quick/ref/key
	fi
	reports+=(out/quick/ref/report.json)
fi
say "your kernel: $VARIANT on $ARCH${PATCHES:+ (PATCHES=$PATCHES)}${KERNEL_SRC:+ (KERNEL_SRC=$KERNEL_SRC)}"
"$EPT" run --archs "$ARCH" --variants "$VARIANT" --scenarios "$SCENARIOS" \
	${DURATION:+--duration "$DURATION"} --out out/quick/mine --logs out/quick/mine/logs
r=$?; [ $r = 0 ] || rc=$r
reports+=(out/quick/mine/report.json)
"$EPT" merge --out out/quick "${reports[@]}" >/dev/null 2>&1
echo
sed -n '/^## Verdicts/,/^## /p' out/quick/report.md | sed '$d'
say "done in $(( $(date +%s) - t0 ))s; report out/quick/report.md"
exit $rc
