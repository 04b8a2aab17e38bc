#!/usr/bin/env bash
# Build the epoll-torture modules (top-level Kbuild, Rust in rust/) against
# a cell's kernel build directory, as a standard external module build, and
# print the path of every .ko it produced, one per line (epoll_torture.ko,
# and epoll_torture_kunit.ko when Kbuild builds the KUnit suite). Output
# goes to $EPT_CACHE/mod/<arch>-<base>-<checkout>, never into the source
# tree. CLIPPY=1 runs clippy on the Rust code while building.
#
#   build-module.sh ARCH VARIANT
#
# Exit: 0 built, 3 this kernel cannot take the module (its FEATURES lack
# `module`: no kernel crate with module parameters, fs::file, Completion).
set -euo pipefail
EPT_TAG=module
. "$(dirname "$0")/lib.sh"
ARCH=${1:?usage: build-module.sh ARCH VARIANT}
VARIANT=$(variant_canon "${2:?usage: build-module.sh ARCH VARIANT}")
cell=$("$EPT_TOP/qemu/build-kernel.sh" "$ARCH" "$VARIANT")
load_cell "$cell"
case " ${FEATURES:-module} " in
	*" module "*) ;;
	*) say "the module needs the 7.x kernel crate (module parameters, fs::file, Completion); $BASE_KERNELVERSION gets no module"; exit 3 ;;
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
# Every module this build made (modules.order lists them; a .ko left over
# from an older Kbuild is not installed).
mapfile -t kos < <(sed -n 's/\.o$/.ko/p' "$out/modules.order" 2>/dev/null | sed "s|^|$out/|")
[ ${#kos[@]} -gt 0 ] || kos=("$ko")

for k in "${kos[@]}"; do
	[ -f "$k" ] || die "modules.order lists $(basename "$k") but the build left no such file"
	echo "$k"
done
