# Shared helpers for the qemu/ scripts. Sourced, never run.
# Everything built lives under $EPT_CACHE, outside the git tree, so a fresh
# clone on the same machine reuses it.
: "${EPT_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/epoll-torture}"
EPT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export EPT_CACHE EPT_TOP
export PATH="$HOME/.cargo/bin:$PATH"
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

# EPT_TAG: the tag of this script's progress lines ("[kernel x86_64/rwlock] ...").
say() { printf '[%s] %s\n' "${EPT_TAG:-ept}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${EPT_TAG:-ept}" "$*" >&2; exit 1; }

# arch_get ARCH KEY: one value from qemu/arch/ARCH.conf (the per-arch data).
arch_get() {
	local f="$EPT_TOP/qemu/arch/$1.conf"
	[ -f "$f" ] || die "unknown arch '$1' (have: $(cd "$EPT_TOP/qemu/arch" && ls *.conf | sed 's/\.conf//' | tr '\n' ' '))"
	( . "$f"; eval "printf '%s' \"\${$2-}\"" )
}

# arch_list: every arch this checkout describes (qemu/arch/*.conf).
arch_list() {
	local f
	for f in "$EPT_TOP"/qemu/arch/*.conf; do basename "$f" .conf; done
}

# Canonical variant name; users say patched/unpatched.
variant_canon() {
	case "$1" in
		patched) echo spinlock ;;
		unpatched) echo rwlock ;;
		*) echo "$1" ;;
	esac
}

toolchain_id() {
	printf 'rustc=%s bindgen=%s clang=%s' \
		"$(rustc --version | awk '{print $2}')" \
		"$(bindgen --version 2>/dev/null | awk '{print $2}')" \
		"$(clang$LLVM_SUFFIX --version | head -n1 | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"
}

# image_path CELL: where this checkout's guest image for CELL lives. Images
# hold this checkout's module, guest programs and scripts, so two clones
# (or worktrees) sharing one kernel cell never overwrite each other's.
image_path() {
	echo "$EPT_CACHE/images/$(basename "$1")-$(printf '%s' "$EPT_TOP" | sha256sum | cut -c1-8)/initramfs.cpio.gz"
}

# build_lock DIR: hold an exclusive lock on a kernel build dir until exit.
build_lock() {
	mkdir -p "$EPT_CACHE/locks"
	exec 8>"$EPT_CACHE/locks/build-$(basename "$1").lock"
	flock 8
}

# load_cell CELL: the cell's build-info.env into this shell, without letting
# it touch the user's knobs (cells written by older versions of
# build-kernel.sh called their patch list PATCHES).
load_cell() {
	local keep_patches=${PATCHES-}
	. "$1/build-info.env"
	VARIANT_PATCHES=${VARIANT_PATCHES-${PATCHES-}}
	PATCHES=$keep_patches
}

# kernel_features TREE CONFIG: the kernel facts the scenarios' `needs` are
# checked against (selftests/host/scenarios.json, "features"), decided from
# the (patched) source and the config, never from a version string. Prints
# one line of words: a present feature by name, ep_lock=<type> always.
kernel_features() {
	local tree=$1 config=$2 f=() lock
	cfg() { grep -qx "CONFIG_$1=y" "$config"; }
	# The module uses module parameters, kernel::fs::file and Completion.
	if cfg RUST && [ -f "$tree/rust/kernel/module_param.rs" ] &&
		[ -f "$tree/rust/kernel/fs/file.rs" ] && [ -f "$tree/rust/kernel/sync/completion.rs" ]; then
		f+=(module)
	fi
	cfg KUNIT && f+=(kunit)
	cfg PREEMPT_RT && f+=(preempt_rt)
	cfg PROVE_LOCKING && f+=(lockdep)
	# Aaron Lu's "defer throttle to user entry": a throttled CFS task is
	# parked at its return to user space, never inside the kernel.
	grep -qE 'throttle_cfs_rq_work|throttled_limbo_list' "$tree/kernel/sched/fair.c" && f+=(cfs_throttle_deferred)
	local ep
	ep=$(sed -n '/^struct eventpoll {/,/^};/p' "$tree/fs/eventpoll.c")
	printf '%s\n' "$ep" | grep -qE '^[[:space:]]+seqcount[a-z_]*_t[[:space:]]' && f+=(ep_seqcount)
	lock=$(printf '%s\n' "$ep" | sed -nE 's/^[[:space:]]+([a-z_]+_t)[[:space:]]+lock;.*/\1/p' | head -n1)
	f+=("ep_lock=${lock:-none}")
	echo "${f[*]}"
}
