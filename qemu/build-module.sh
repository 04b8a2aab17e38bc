#!/usr/bin/env bash
# Build the epoll-torture module (top-level Kbuild, Rust in rust/) against
# a cell's kernel build directory, as a standard external module, and print
# the .ko path. Output goes to $EPT_CACHE/mod/<arch>-<base>, never into the
# source tree. CLIPPY=1 runs clippy on the Rust code while building. The
# same directory also gets epoll_torture_kunit.ko (the KUnit suite).
#
#   build-module.sh ARCH VARIANT
set -euo pipefail
EPT_STEP=module
. "$(dirname "$0")/lib.sh"
ARCH=${1:?usage: build-module.sh ARCH VARIANT}
VARIANT=$(variant_canon "${2:?usage: build-module.sh ARCH VARIANT}")
cell=$("$EPT_TOP/qemu/build-kernel.sh" "$ARCH" "$VARIANT")
load_cell "$cell"
case "$BASE_KERNELVERSION" in
	6.*) say "the module needs the 7.x kernel crate; base $BASE_KERNELVERSION gets no module"; exit 3 ;;
esac
[ -f "$EPT_TOP/Kbuild" ] || die "no Kbuild at the top of the repo"
# One output dir per checkout, so two clones never build into the same one.
out="$EPT_CACHE/mod/$(basename "$BUILD_DIR")-$(printf '%s' "$EPT_TOP" | sha256sum | cut -c1-8)"
mkdir -p "$out"
build_lock "$BUILD_DIR"
say "building against $BUILD_DIR${CLIPPY:+ (clippy)}"
make -s -C "$BUILD_DIR" M="$EPT_TOP" MO="$out" ARCH="$(arch_get "$ARCH" KARCH)" \
	LLVM="$LLVM_SUFFIX" ${CLIPPY:+CLIPPY=1} modules >&2
ko="$out/epoll_torture.ko"
[ -f "$ko" ] || die "build produced no $ko"

echo "$ko"
