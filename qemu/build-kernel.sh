#!/usr/bin/env bash
# Build one kernel cell (arch, base, variant[, debug]) and print its cell
# directory on stdout.
#
#   build-kernel.sh ARCH VARIANT
#
# Environment: BASE (see kernel-source.sh), KERNEL_SRC (a user's own tree,
# used instead of Debian's; never written to), PATCHES (comma-separated
# patch files used instead of the variant's series), DEBUG=1 (merge
# configs/debug.config), JOBS (make -j, default all cores), CCACHE=1 (C
# through ccache).
#
# build-info.env records the build (base, patches, toolchain, ep->lock) and
# the kernel's FEATURES (lib.sh kernel_features: decided from the patched
# source and the config), which `ept run` checks the scenarios' needs against.
#
# A cell is cached under $EPT_CACHE/cells, keyed by the base version, the
# patch contents, the config fragments and the toolchain versions; an
# unchanged cell is not rebuilt. Each (arch, base, debug) has one build
# directory and each (arch, base) one patched work tree (hard links to the
# pristine source), so switching a variant recompiles only what its patches
# touch, and two arches build at once, each with its own variant applied.
#
# Exit status: 0 built or cached, 3 variant unavailable for this base
# (no patch series), 1 any other failure.
set -euo pipefail
EPT_TAG=kernel
. "$(dirname "$0")/lib.sh"

ARCH=${1:?usage: build-kernel.sh ARCH VARIANT}
VARIANT=$(variant_canon "${2:?usage: build-kernel.sh ARCH VARIANT}")
EPT_TAG="kernel $ARCH/$VARIANT"
KARCH=$(arch_get "$ARCH" KARCH)
KIMAGE=$(arch_get "$ARCH" KIMAGE)
JOBS=${JOBS:-$(nproc)}
DEBUG=${DEBUG:-0}

# --- the base tree ---
if [ -n "${KERNEL_SRC:-}" ]; then
	src=$(cd "$KERNEL_SRC" && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
	[ -f "$src/fs/eventpoll.c" ] || die "KERNEL_SRC=$src does not look like a kernel tree (no fs/eventpoll.c)"
	kver=$(make -s -C "$src" kernelversion)
	desc=$(git -C "$src" describe --always --dirty 2>/dev/null || echo nogit)
	base_id="user-$kver-$(printf '%s' "$src:$desc" | sha256sum | cut -c1-8)"
	# The work tree and build dir follow the checkout, not its revision:
	# another revision of the same checkout (ept bisect) rebuilds only the
	# files that changed. Cells stay keyed by the revision (base_id).
	tree_id="user-$kver-$(printf '%s' "$src" | sha256sum | cut -c1-8)"
	BASE_PKG=user-tree BASE_DEB_VERSION="$src ($desc)" BASE_KERNELVERSION=$kver
	BASE_SERIES=$(echo "$kver" | cut -d. -f1-2)
else
	src=$("$EPT_TOP/qemu/kernel-source.sh" "${BASE:-7}")
	. "$src/.base.env"
	base_id="${BASE_PKG#linux-source-}-$BASE_DEB_VERSION"
	base_id=${base_id//[~+:]/_}
	tree_id=$base_id
fi

# --- the variant's patches ---
vdir="$EPT_TOP/qemu/variants/$VARIANT"
EXPECT_LOCK=""
if [ -n "${PATCHES:-}" ]; then
	IFS=, read -r -a patches <<<"$PATCHES"
	for i in "${!patches[@]}"; do
		p=$(realpath -e "${patches[$i]}" 2>/dev/null) || die "PATCHES: no such file '${patches[$i]}'"
		patches[$i]=$p
	done
	[ -f "$vdir/variant.conf" ] && EXPECT_LOCK=$(. "$vdir/variant.conf"; echo "$EXPECT_LOCK")
elif [ ! -d "$vdir" ] && [ -n "${KERNEL_SRC:-}" ]; then
	# A name of the user's own (make quick VARIANT=mine KERNEL_SRC=...):
	# their tree as it is, no patches, no label to check.
	patches=()
	say "variant '$VARIANT': $KERNEL_SRC as it is (no patches)"
else
	[ -f "$vdir/variant.conf" ] || die "unknown variant '$VARIANT' (have: $(ls "$EPT_TOP/qemu/variants" | tr '\n' ' '); aliases: patched, unpatched; a new name needs PATCHES= or KERNEL_SRC=)"
	EXPECT_LOCK=$(. "$vdir/variant.conf"; echo "$EXPECT_LOCK")
	# A per-series directory (7.3/, 6.12/) wins over patches at the top.
	pdir=$vdir
	[ -d "$vdir/$BASE_SERIES" ] && pdir="$vdir/$BASE_SERIES"
	mapfile -t patches < <(ls "$pdir"/*.patch 2>/dev/null | sort)
	if [ ${#patches[@]} -eq 0 ] && [ "$EXPECT_LOCK" != spinlock_t ]; then
		say "variant '$VARIANT' is unavailable for base $BASE_KERNELVERSION: no patches in $pdir"
		exit 3
	fi
fi

# --- the cache key ---
frags=("$EPT_TOP/qemu/configs/common.config" "$EPT_TOP/qemu/configs/$ARCH.config")
[ "$DEBUG" = 1 ] && frags+=("$EPT_TOP/qemu/configs/debug.config")
tool=$(toolchain_id)
key=$( { echo "$base_id"; echo "$tool"; cat "${frags[@]}"; for p in "${patches[@]}"; do cat "$p"; done; } | sha256sum | cut -c1-16)
suffix=""; [ "$DEBUG" = 1 ] && suffix="-debug"
cell="$EPT_CACHE/cells/$ARCH/$base_id-$VARIANT$suffix-$key"
# FEATURES of a cell built before build-info.env had them: decided again
# from the pristine files the feature checks read, with this series applied.
backfill_features() {
	local t f p
	t=$(mktemp -d)
	for f in fs/eventpoll.c kernel/sched/fair.c rust/kernel/module_param.rs rust/kernel/fs/file.rs \
		rust/kernel/sync/completion.rs; do
		[ -f "$src/$f" ] && { mkdir -p "$t/$(dirname "$f")"; cp "$src/$f" "$t/$f"; }
	done
	for p in "${patches[@]}"; do patch -d "$t" -p1 -s -f --no-backup-if-mismatch <"$p" >/dev/null 2>&1 || true; done
	echo "FEATURES=\"$(kernel_features "$t" "$cell/config")\"" >>"$cell/build-info.env"
	rm -rf "$t"
}
if [ -f "$cell/.done" ]; then
	grep -q '^FEATURES=' "$cell/build-info.env" || backfill_features
	say "cached: $cell"
	echo "$cell"; exit 0
fi

# Locks: the work tree is shared by every cell of an (arch, base) (held
# from patching to the end of the build); a build dir is shared with module
# and guest builds of its arch (build_lock in lib.sh).
mkdir -p "$EPT_CACHE/locks"
exec 9>"$EPT_CACHE/locks/work-$tree_id-$ARCH.lock"
flock 9

# --- the patched work tree: hard links to the base, patched files replaced ---
work="$EPT_CACHE/work/$tree_id-$ARCH"
if [ ! -f "$work/.ept-linked" ] || [ -n "${KERNEL_SRC:-}" ]; then
	say "linking work tree $work"
	mkdir -p "$work"
	# Restore anything a previous variant replaced, then refresh links.
	rsync -a --delete --link-dest="$src/" --exclude=.git --exclude='.ept-*' "$src/" "$work/"
	rm -f "$work/.ept-applied"; touch "$work/.ept-linked"
fi
want=$(for p in "${patches[@]}"; do sha256sum "$p" | cut -c1-16; done | tr '\n' ' ')
have=$(cat "$work/.ept-applied" 2>/dev/null || echo "<none>")
if [ "$want" != "$have" ]; then
	# Put back the files the previous series touched (fresh mtimes, so make
	# recompiles exactly them), then apply this series.
	if [ -f "$work/.ept-touched" ]; then
		while read -r f; do
			if [ -e "$src/$f" ]; then cp --remove-destination "$src/$f" "$work/$f"; else rm -f "$work/$f"; fi
		done <"$work/.ept-touched"
	fi
	: >"$work/.ept-touched"
	for p in "${patches[@]}"; do
		say "applying $(basename "$p")"
		if ! out=$(patch -d "$work" -p1 --dry-run --no-backup-if-mismatch -f <"$p" 2>&1); then
			printf '%s\n' "$out" | sed 's/^/    /' >&2
			hunk=$(printf '%s\n' "$out" | grep -m1 -E 'FAILED|malformed|can.t find file' || true)
			# Show the text of the first failing hunk, from the patch itself.
			file=$(printf '%s\n' "$out" | grep -B50 -m1 'FAILED' | sed -n 's/^checking file //p' | tail -n1)
			num=$(printf '%s\n' "$hunk" | sed -n 's/.*Hunk #\([0-9]*\) FAILED.*/\1/p')
			if [ -n "$file" ] && [ -n "$num" ]; then
				say "failing hunk #$num of $file:"
				awk -v f="$file" -v n="$num" '
					/^\+\+\+ / { cur = $2; sub(/^[^\/]*\//, "", cur); h = 0; next }
					/^@@ / && cur == f { h++ }
					/^(diff |--- )/ { if (h == n) exit }
					cur == f && h == n { print "    " $0 }' "$p" | head -n 40 >&2
			fi
			rm -f "$work/.ept-applied"
			die "$(basename "$p") does not apply to $BASE_PKG $BASE_DEB_VERSION: ${hunk:-see above}"
		fi
		patch -d "$work" -p1 -s --no-backup-if-mismatch -f <"$p"
		lsdiff_files=$(grep -E '^\+\+\+ ' "$p" | awk '{print $2}' | sed 's|^[^/]*/||')
		printf '%s\n' $lsdiff_files >>"$work/.ept-touched"
	done
	echo "$want" >"$work/.ept-applied"
fi

# --- refuse a kernel that does not match its label ---
lock_type=$(sed -n '/^struct eventpoll {/,/^};/p' "$work/fs/eventpoll.c" |
	sed -nE 's/^[[:space:]]+([a-z_]+_t)[[:space:]]+lock;.*/\1/p' | head -n1)
lock_type=${lock_type:-none}
if [ -n "$EXPECT_LOCK" ] && [ "$lock_type" != "$EXPECT_LOCK" ]; then
	die "variant '$VARIANT' expects ep->lock to be $EXPECT_LOCK but fs/eventpoll.c of this tree has: $lock_type (patches: ${patches[*]:-none})"
fi
say "fs/eventpoll.c: ep->lock is $lock_type"
# variant.conf may also state source facts (EXPECT_FEATURES="!ep_seqcount"):
# the kernel_features names that only depend on the tree.
expect_features=""
[ -f "$vdir/variant.conf" ] && expect_features=$(. "$vdir/variant.conf"; echo "${EXPECT_FEATURES:-}")
if [ -n "$expect_features" ]; then
	tree_features=" $(kernel_features "$work" /dev/null) "
	for f in $expect_features; do
		case $f in
		!*) [[ $tree_features != *" ${f#!} "* ]] || die "variant '$VARIANT' expects no ${f#!} but the patched tree has it (features:$tree_features)" ;;
		*) [[ $tree_features == *" $f "* ]] || die "variant '$VARIANT' expects $f but the patched tree lacks it (features:$tree_features)" ;;
		esac
	done
	say "source facts verified: $expect_features"
fi

# --- configure (only when fragments or base changed) ---
build="$EPT_CACHE/build/$ARCH-$tree_id$suffix"
mkdir -p "$build"
build_lock "$build"
K=(make -s -C "$work" O="$build" ARCH="$KARCH" LLVM="$LLVM_SUFFIX")
# CCACHE=1: C compiles through ccache (cache dir CCACHE_DIR, default
# $EPT_CACHE/ccache); rustc is not cached. See README (cold builds).
if [ "${CCACHE:-0}" = 1 ]; then
	command -v ccache >/dev/null || die "CCACHE=1 but no ccache (apt-get install ccache)"
	export CCACHE_DIR=${CCACHE_DIR:-$EPT_CACHE/ccache} CCACHE_BASEDIR=$EPT_CACHE CCACHE_NOHASHDIR=1
	# (CC only: the kernel links host Rust programs with $(HOSTCC), which must
	# stay one word.)
	K+=(CC="ccache clang$LLVM_SUFFIX")
fi
cfg_key=$( { echo "$tool"; cat "${frags[@]}"; } | sha256sum | cut -c1-16)
if [ "$(cat "$build/.ept-config" 2>/dev/null)" != "$cfg_key" ]; then
	"${K[@]}" rustavailable >&2 || die "Rust toolchain not usable for this kernel (run: make setup)"
	say "configuring: tinyconfig + ${frags[*]##*/}"
	"${K[@]}" tinyconfig >/dev/null
	( cd "$build" && "$work/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${frags[@]}" >/dev/null )
	"${K[@]}" olddefconfig >/dev/null
	missing=()
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" "$build/.config" || missing+=("$line (got: $(grep -E "^(# )?${line%%=*}[= ]" "$build/.config" || echo unset))") ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
			grep -q "^$opt=" "$build/.config" && missing+=("$line (got: $(grep "^$opt=" "$build/.config"))") ;;
		esac
	done < <(cat "${frags[@]}")
	if [ ${#missing[@]} -gt 0 ]; then
		printf '    %s\n' "${missing[@]}" >&2
		die "Kconfig dropped ${#missing[@]} requested option(s), listed above"
	fi
	say "config verified: every requested option is set"
	echo "$cfg_key" >"$build/.ept-config"
fi

say "building $(basename "$KIMAGE") + modules with $JOBS jobs (minutes when cold)"
t0=$(date +%s)
image_target=$(basename "$KIMAGE")
"${K[@]}" -j"$JOBS" "$image_target" modules >&2
say "kernel built in $(( $(date +%s) - t0 )) s"

rm -rf "$cell"; mkdir -p "$cell"
cp "$build/$KIMAGE" "$cell/"
cp "$build/.config" "$cell/config"
cp "$build/System.map" "$cell/"
cat >"$cell/build-info.env" <<INFO
ARCH=$ARCH
VARIANT=$VARIANT
DEBUG=$DEBUG
BASE_PKG=$BASE_PKG
BASE_DEB_VERSION="$BASE_DEB_VERSION"
BASE_KERNELVERSION=$BASE_KERNELVERSION
KERNEL_RELEASE=$(cat "$build/include/config/kernel.release")
VARIANT_PATCHES="$(for p in "${patches[@]}"; do printf '%s:%s ' "$(basename "$p")" "$(sha256sum "$p" | cut -c1-12)"; done)"
LOCK_TYPE=$lock_type
TOOLCHAIN="$tool"
KEY=$key
BUILD_DIR=$build
WORK_TREE=$work
KIMAGE_FILE=$(basename "$KIMAGE")
FEATURES="$(kernel_features "$work" "$build/.config")"
INFO
touch "$cell/.done"
echo "$cell"
