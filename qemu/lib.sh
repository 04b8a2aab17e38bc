# Shared helpers for the qemu/ scripts. Sourced, never run.
# Everything built lives under $EPT_CACHE, outside the git tree, so a fresh
# clone on the same machine reuses it.
: "${EPT_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/epoll-torture}"
EPT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export EPT_CACHE EPT_TOP
export PATH="$HOME/.cargo/bin:$PATH"
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

say() { printf '[%s] %s\n' "${EPT_STEP:-ept}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${EPT_STEP:-ept}" "$*" >&2; exit 1; }

# arch_get ARCH KEY: one value from qemu/arch/ARCH.conf (the per-arch data).
arch_get() {
	local f="$EPT_TOP/qemu/arch/$1.conf"
	[ -f "$f" ] || die "unknown arch '$1' (have: $(cd "$EPT_TOP/qemu/arch" && ls *.conf | sed 's/\.conf//' | tr '\n' ' '))"
	( . "$f"; eval "printf '%s' \"\${$2-}\"" )
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
