#!/usr/bin/env bash
# Check that a variant's fs/eventpoll.c does what the upstream code it
# stands for did: apply the variant's patch series to a scratch copy of
# the base's fs/eventpoll.c (no kernel build) and compare the locking and
# list operations of every ready-list function with the hand-written
# reference qemu/variants/VARIANT/fidelity.ref (selftests/host/src/fidelity.rs;
# a series directory such as 6.12/ may hold its own fidelity.ref).
#
#   fidelity.sh VARIANT            e.g. lockless, rwlock, spinlock-2025, spinlock
#   fidelity.sh --all              every variant that has a fidelity.ref
#
# Env: BASE=7|7.3|6.12 (kernel-source.sh), KERNEL_SRC=/path (a tree to use
# instead; never written to), VERBOSE=1 (print every function's outline).
# Exit: 0 faithful, 1 a departure (the first mismatch of each function is
# printed), 2 usage or setup error.
set -euo pipefail
EPT_TAG=fidelity
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: fidelity.sh VARIANT | --all" >&2; exit 2; }
[ $# -eq 1 ] || usage

if [ "$1" = --all ]; then
	rc=0
	for ref in "$EPT_TOP"/qemu/variants/*/fidelity.ref; do
		v=$(basename "$(dirname "$ref")")
		"$0" "$v" || rc=1
	done
	exit $rc
fi

VARIANT=$(variant_canon "$1")
vdir="$EPT_TOP/qemu/variants/$VARIANT"
ref="$vdir/fidelity.ref"
[ -f "$vdir/variant.conf" ] || { say "unknown variant '$VARIANT'"; exit 2; }
[ -f "$ref" ] || { say "variant '$VARIANT' has no fidelity.ref (it stands for no upstream code)"; exit 2; }

if [ -n "${KERNEL_SRC:-}" ]; then
	src=$(cd "$KERNEL_SRC" && pwd)
	series=$(make -s -C "$src" kernelversion | cut -d. -f1-2)
else
	src=$("$EPT_TOP/qemu/kernel-source.sh" "${BASE:-7}")
	series=$(. "$src/.base.env"; echo "$BASE_SERIES")
fi
[ -f "$src/fs/eventpoll.c" ] || { say "no fs/eventpoll.c in $src"; exit 2; }

# The series as build-kernel.sh picks it: a directory named after the
# kernel series (7.3/, 6.12/) wins over the patches at the top.
pdir=$vdir
[ -d "$vdir/$series" ] && pdir="$vdir/$series"
mapfile -t patches < <(ls "$pdir"/*.patch 2>/dev/null | sort)
# A series directory may carry its own reference (that kernel's shape).
[ -f "$pdir/fidelity.ref" ] && ref="$pdir/fidelity.ref"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/fs"
cp "$src/fs/eventpoll.c" "$tmp/fs/eventpoll.c"
for p in "${patches[@]}"; do
	if ! patch -s -p1 --no-backup-if-mismatch -d "$tmp" -i "$p" >"$tmp/patch.out" 2>&1; then
		sed 's/^/    /' "$tmp/patch.out" >&2
		say "$(basename "$p") does not apply to $src/fs/eventpoll.c"
		exit 2
	fi
done
say "$VARIANT on $(basename "$src"): ${#patches[@]} patch(es), reference $ref"

export EPT_FIDELITY_FILE="$tmp/fs/eventpoll.c" EPT_FIDELITY_REF="$ref"
[ "${VERBOSE:-0}" = 1 ] && export EPT_FIDELITY_VERBOSE=1
set +e
cargo test -q --release --manifest-path "$EPT_TOP/selftests/host/Cargo.toml" \
	--test fidelity given_file -- --exact --nocapture 2>"$tmp/cargo.err" |
	grep -v '^running [0-9]* test\|^test result\|^$\|^\.$'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 0 ]; then
	say "$VARIANT: faithful to its reference"
	exit 0
fi
if grep -q 'departs from' "$tmp/cargo.err"; then
	say "$VARIANT: departs from its reference (first mismatch per function above)"
	exit 1
fi
sed -n '1,30p' "$tmp/cargo.err" >&2
say "could not run the check (cargo test exit $rc)"
exit 2
