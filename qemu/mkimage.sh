#!/usr/bin/env bash
# Build the guest initramfs for (ARCH, VARIANT) without root, with the
# kernel's gen_init_cpio, and print its path: busybox, every module
# build-module.sh produced (in /lib/modules/), the guest programs, the
# kernel's epoll selftests, selftests/scenarios/*.sh and /init.
#
#   mkimage.sh ARCH VARIANT        (MODULE=0: an image without the module)
set -euo pipefail
EPT_TAG=image
. "$(dirname "$0")/lib.sh"
ARCH=${1:?usage: mkimage.sh ARCH VARIANT}
VARIANT=$(variant_canon "${2:?usage: mkimage.sh ARCH VARIANT}")
cell=$("$EPT_TOP/qemu/build-kernel.sh" "$ARCH" "$VARIANT")
load_cell "$cell"

# busybox-static of the guest's architecture: the host's own on x86_64;
# riscv64 comes from trixie through a private APT configuration, which
# leaves the host's dpkg alone.
busybox_for() {
	local suite=$(arch_get "$ARCH" BUSYBOX_DEB_SUITE) darch=$(arch_get "$ARCH" DEB_ARCH)
	if [ "$suite" = host ]; then
		[ -x /bin/busybox ] || die "/bin/busybox missing (make setup installs busybox-static)"
		echo /bin/busybox; return
	fi
	local root="$EPT_CACHE/busybox/$darch" bb
	bb=$(ls "$root"/bin/busybox "$root"/usr/bin/busybox 2>/dev/null | head -n1 || true)
	if [ -z "$bb" ]; then
		local d="$EPT_CACHE/apt-$darch"
		say "fetching busybox-static:$darch from Debian $suite"
		mkdir -p "$d/etc/sources.list.d" "$d/etc/preferences.d" "$d/state/lists/partial" "$d/cache/archives/partial" "$EPT_CACHE/debs"
		: >"$d/state/status"
		echo "deb [arch=$darch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$d/etc/sources.list"
		cat >"$d/apt.conf" <<CONF
Dir::State "$d/state";
Dir::State::status "$d/state/status";
Dir::Cache "$d/cache";
Dir::Etc "$d/etc";
APT::Architecture "$darch";
APT::Architectures { "$darch"; };
CONF
		local deb
		deb=$(ls "$EPT_CACHE"/debs/busybox-static_*_"$darch".deb 2>/dev/null | tail -n1 || true)
		if [ -z "$deb" ]; then
			APT_CONFIG="$d/apt.conf" apt-get update -qq >&2
			( cd "$EPT_CACHE/debs" && APT_CONFIG="$d/apt.conf" apt-get download -qq "busybox-static:$darch" >&2 )
			deb=$(ls "$EPT_CACHE"/debs/busybox-static_*_"$darch".deb | tail -n1)
		fi
		rm -rf "$EPT_CACHE/busybox/$darch"; mkdir -p "$EPT_CACHE/busybox/$darch"
		dpkg-deb -x "$deb" "$root"
		# trixie is merged-/usr: /usr/bin/busybox; older suites: /bin/busybox.
		bb=$(ls "$root"/bin/busybox "$root"/usr/bin/busybox 2>/dev/null | head -n1 || true)
		[ -n "$bb" ] || die "no busybox binary in $(basename "$deb")"
	fi
	echo "$bb"
}

bb=$(busybox_for)
kos=""
if [ "${MODULE:-1}" = 1 ]; then
	if kos=$("$EPT_TOP/qemu/build-module.sh" "$ARCH" "$VARIANT"); then :; else
		rc=$?; [ $rc = 3 ] || exit $rc; kos=""
	fi
fi
guest=$("$EPT_TOP/qemu/build-guest.sh" "$ARCH" "$VARIANT")

img=$(image_path "$cell")
mkdir -p "$(dirname "$img")"
list=$(mktemp)
trap 'rm -f "$list" "$img.$$"' EXIT
{
	echo "dir /dev 0755 0 0"
	echo "nod /dev/console 0600 0 0 c 5 1"
	for d in /bin /sbin /usr /usr/bin /usr/lib /usr/lib/epoll-selftests /lib /lib/modules /proc /sys /tmp /run /ept /ept/scenarios /etc; do
		echo "dir $d 0755 0 0"
	done
	echo "file /bin/busybox $bb 0755 0 0"
	echo "file /init $EPT_TOP/qemu/guest-init.sh 0755 0 0"
	for ko in $kos; do echo "file /lib/modules/$(basename "$ko") $ko 0644 0 0"; done
	for f in "$guest"/bin/*; do [ -f "$f" ] && echo "file /bin/$(basename "$f") $f 0755 0 0"; done
	for f in "$guest"/selftests/*; do [ -f "$f" ] && echo "file /usr/lib/epoll-selftests/$(basename "$f") $f 0755 0 0"; done
	for f in "$EPT_TOP"/selftests/scenarios/*.sh; do [ -f "$f" ] && echo "file /ept/scenarios/$(basename "$f") $f 0755 0 0"; done
	printf 'file /etc/ept-build-info %s 0644 0 0\n' "$cell/build-info.env"
} >"$list"
"$BUILD_DIR/usr/gen_init_cpio" "$list" | gzip -1 >"$img.$$"
mv "$img.$$" "$img"
# The kernel's build facts (FEATURES) beside the image, for `ept run`.
cp "$cell/build-info.env" "$(dirname "$img")/build-info.env"
say "image $(du -h "$img" | cut -f1): modules=$(for k in $kos; do basename "$k" .ko; done | tr '\n' ' ')guest programs=$(ls "$guest/bin" | wc -l) selftests=$(ls "$guest/selftests" | wc -l)"
echo "$img"
