#!/usr/bin/env bash
# Fetch and unpack a Debian kernel source package; print its tree on stdout.
#
#   kernel-source.sh [BASE]     BASE: 7 (default, newest linux-source-7.*
#                               in trixie-backports), or a series like 7.2
#                               or 6.12 (linux-source-6.12, bookworm-security)
#
# The version is discovered from APT, never hard-coded. The .deb is kept in
# $EPT_CACHE/debs so the machine keeps working when Debian replaces it, and
# unpacked once into $EPT_CACHE/src/<package>_<version>/ (never modified:
# variant patches go on a hard-linked copy, see build-kernel.sh). Writes base.env beside the tree.
set -euo pipefail
EPT_TAG=source
. "$(dirname "$0")/lib.sh"

BASE=${1:-${BASE:-7}}
debs="$EPT_CACHE/debs"
mkdir -p "$debs" "$EPT_CACHE/src"

# Newest package named linux-source-$BASE or linux-source-$BASE.N.
pick_pkg() {
	apt-cache pkgnames linux-source- 2>/dev/null |
		grep -E "^linux-source-${BASE//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1
}

pkg=$(pick_pkg || true)
if [ -z "$pkg" ]; then
	say "apt lists have no linux-source-$BASE*; running apt-get update"
	apt-get update -qq >&2 || true
	pkg=$(pick_pkg || true)
fi
deb=""
if [ -n "$pkg" ]; then
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
	if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
		deb=$(ls "$debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
		if [ -z "$deb" ]; then
			say "downloading $pkg $ver"
			( cd "$debs" && apt-get download -qq "$pkg=$ver" >&2 ) || say "download of $pkg $ver failed"
			deb=$(ls "$debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
		fi
	fi
fi
if [ -z "$deb" ]; then
	# APT no longer offers it (or no network): use the newest cached one.
	deb=$(ls "$debs"/linux-source-"$BASE"*.deb 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$deb" ] || die "no linux-source-$BASE* in APT or in $debs; check the apt suites (make setup)"
	say "APT offers no linux-source-$BASE*; using cached $(basename "$deb")"
fi

name=$(basename "$deb" .deb)            # linux-source-7.2_7.2.12-1~bpo13+1_all
tree="$EPT_CACHE/src/${name%_all}"
# One unpack at a time: two concurrent builds would each remove the
# other's half-unpacked tree.
mkdir -p "$EPT_CACHE/locks"
exec 8>"$EPT_CACHE/locks/src-${name%_all}.lock"
flock 8
if [ ! -f "$tree/.unpacked" ]; then
	say "unpacking $(basename "$deb") (about a minute)"
	rm -rf "$tree" "$tree.tmp"; mkdir -p "$tree.tmp"
	dpkg-deb -x "$deb" "$tree.tmp/deb"
	tarball=$(ls "$tree.tmp"/deb/usr/src/linux-source-*.tar.* | head -n1)
	mkdir -p "$tree.tmp/linux"
	tar -xf "$tarball" -C "$tree.tmp/linux" --strip-components=1
	mv "$tree.tmp/linux" "$tree"; rm -rf "$tree.tmp"
	kver=$(make -s -C "$tree" kernelversion 2>/dev/null)
	{
		echo "BASE_PKG=${name%%_*}"
		echo "BASE_DEB_VERSION=$(dpkg-deb -f "$deb" Version)"
		echo "BASE_KERNELVERSION=$kver"
		echo "BASE_SERIES=$(echo "$kver" | cut -d. -f1-2)"
	} >"$tree/.base.env"
	touch "$tree/.unpacked"
fi
flock -u 8
echo "$tree"
