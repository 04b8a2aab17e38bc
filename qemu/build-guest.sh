#!/usr/bin/env bash
# Build the guest-side programs for ARCH and print the directory holding
# them: bin/ (every binary of selftests/guest, static) and selftests/ (the
# kernel's own epoll selftests, built statically from the cell's tree so
# they match the kernel under test, each also as <test>.long-timeout and
# <test>.scaled: see selftests/kselftest/).
#
#   build-guest.sh ARCH VARIANT
set -euo pipefail
EPT_TAG=guest
. "$(dirname "$0")/lib.sh"
ARCH=${1:?usage: build-guest.sh ARCH VARIANT}
VARIANT=$(variant_canon "${2:?usage: build-guest.sh ARCH VARIANT}")
cell=$("$EPT_TOP/qemu/build-kernel.sh" "$ARCH" "$VARIANT")
load_cell "$cell"
target=$(arch_get "$ARCH" RUST_TARGET)
linker=$(arch_get "$ARCH" RUST_LINKER)
cc=$(arch_get "$ARCH" CC_GUEST)
# One output dir per checkout (like images and modules): another clone's
# guest programs never end up in this one's image.
out="$EPT_CACHE/guest/$ARCH-$(basename "$WORK_TREE")-$(printf '%s' "$EPT_TOP" | sha256sum | cut -c1-8)"
mkdir -p "$out/bin" "$out/selftests"
# cargo's target dir per checkout too (two clones' sources never mix).
gtarget="$EPT_CACHE/guest-target-$(printf '%s' "$EPT_TOP" | sha256sum | cut -c1-8)"

if [ -f "$EPT_TOP/selftests/guest/Cargo.toml" ]; then
	say "cargo build selftests/guest for $target"
	envname=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
	env ${linker:+$envname=$linker} RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build -q --release --target "$target" \
		--manifest-path "$EPT_TOP/selftests/guest/Cargo.toml" \
		--target-dir "$gtarget" >&2
	rel="$gtarget/$target/release"
	rm -f "$out"/bin/*
	for src in "$EPT_TOP"/selftests/guest/src/bin/*.rs; do
		[ -e "$src" ] || continue
		cp "$rel/$(basename "$src" .rs)" "$out/bin/"
	done
fi

# The kernel's epoll selftests, against this tree's uapi headers.
build_lock "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/usr/include/linux/time_types.h" ]; then
	make -s -C "$WORK_TREE" O="$BUILD_DIR" ARCH="$(arch_get "$ARCH" KARCH)" LLVM="$LLVM_SUFFIX" headers >&2
fi
st="$WORK_TREE/tools/testing/selftests"
kst="$EPT_TOP/selftests/kselftest"
for c in "$st"/filesystems/epoll/*.c; do
	b="$out/selftests/$(basename "$c" .c)"
	if [ ! -x "$b.long-timeout" ] || [ ! -e "$(dirname "$b")/.$(basename "$b").scaled-checked" ] || [ "$c" -nt "$b" ] ||
		[ "$kst/long-timeout.c" -nt "$b" ] || [ "$kst/scaled.c" -nt "$b" ]; then
		say "building selftest $(basename "$c" .c)"
		"$cc" -static -O2 -isystem "$BUILD_DIR/usr/include" -I "$st" \
			-o "$b" "$c" -lpthread
		# The same test with a long harness timeout, for reruns of tests
		# that time out under emulation (selftests/kselftest/long-timeout.c).
		"$cc" -static -O2 -isystem "$BUILD_DIR/usr/include" -I "$st" -I "$(dirname "$c")" \
			-DEPT_LONG_TIMEOUT="${SELFTEST_LONG_TIMEOUT:-900}" -DEPT_TEST_SOURCE="\"$c\"" \
			-o "$b.long-timeout" "$kst/long-timeout.c" -lpthread
		# The same test with the literal bounds (>= 100) of its counted
		# loops divided by EPT_SELFTEST_DIV (selftests/kselftest/scaled.c).
		rm -f "$b.scaled"
		sed -E 's/^(\s*for \([^;]*; *[a-z_]+ < )([0-9]{3,});/\1ept_iters(\2);/' "$c" >"$out/selftests/.$(basename "$c")"
		if ! cmp -s "$c" "$out/selftests/.$(basename "$c")"; then
			"$cc" -static -O2 -isystem "$BUILD_DIR/usr/include" -I "$st" -I "$(dirname "$c")" \
				-DEPT_SCALED_SOURCE="\"$out/selftests/.$(basename "$c")\"" \
				-o "$b.scaled" "$kst/scaled.c" -lpthread
		fi
		rm -f "$out/selftests/.$(basename "$c")"
		touch "$(dirname "$b")/.$(basename "$b").scaled-checked"
	fi
done
echo "$out"
