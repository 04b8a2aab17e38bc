#!/usr/bin/env bash
# Install everything the build needs on a Debian 12 host, idempotently.
# Each step prints one progress line and is skipped when already satisfied.
set -euo pipefail

step() { printf '[setup] %s\n' "$*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "setup-host.sh: run as root (apt-get install)" >&2; exit 1; }; }

APT_UPDATED=0
apt_update() { [ $APT_UPDATED = 1 ] || { apt-get update -qq; APT_UPDATED=1; }; }

# Debian suites we need beyond bookworm: QEMU 10 from bookworm-backports,
# linux-source-7.x from trixie-backports (low pin: nothing upgrades from it).
ensure_suites() {
	local f=/etc/apt/sources.list.d/epoll-torture.sources
	if [ ! -f "$f" ]; then
		step "adding bookworm-backports and trixie-backports apt suites"
		cat >"$f" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		cat >/etc/apt/preferences.d/epoll-torture <<'PIN'
Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
PIN
		APT_UPDATED=0
	else
		step "apt suites present"
	fi
}

ensure_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		step "apt-get install ${missing[*]}"
		apt_update
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		step "packages present: $*"
	fi
}

# Per-arch needs, from qemu/arch/*.conf (one description per arch).
TOP=$(cd "$(dirname "$0")/.." && pwd)
arch_all() { # KEY: the values of KEY over every arch, blank-separated, deduplicated
	local f
	for f in "$TOP"/qemu/arch/*.conf; do ( . "$f"; eval "printf '%s\n' \${$1-}" ); done |
		tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' '
}

ensure_qemu() {
	local bins=$(arch_all QEMU) debs=$(arch_all QEMU_DEB) b ok=1
	for b in $bins; do
		"$b" --version 2>/dev/null | grep -q 'version 1[0-9]' || ok=0
	done
	if [ $ok = 1 ]; then
		step "qemu 10 present ($bins)"
		return
	fi
	step "apt-get install -t bookworm-backports $debs"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports $debs >/dev/null
}

ensure_rust() {
	export PATH="$HOME/.cargo/bin:$PATH"
	if rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
		step "rust-src present"
	else
		step "rustup component add rust-src"; rustup component add rust-src
	fi
	for c in rustfmt clippy; do
		rustup component list --installed 2>/dev/null | grep -q "^$c" || { step "rustup component add $c"; rustup component add "$c"; }
	done
	local t
	for t in $(arch_all RUST_TARGET); do
		if rustup target list --installed | grep -qx "$t"; then
			step "rust target $t present"
		else
			step "rustup target add $t"; rustup target add "$t"
		fi
	done
	if command -v bindgen >/dev/null && bindgen --version | awk '{split($2,v,"."); exit !(v[1]>0 || v[2]>=71)}'; then
		step "bindgen present ($(bindgen --version))"
	else
		step "cargo install --locked bindgen-cli (about a minute)"
		cargo install --locked -q bindgen-cli
	fi
}

need_root
ensure_suites
ensure_pkgs build-essential flex bison bc libelf-dev libssl-dev cpio rsync \
	clang-19 lld-19 llvm-19 libclang-19-dev busybox-static debian-archive-keyring patch python3 kmod \
	$(arch_all CROSS_PKGS)
[ "${CCACHE:-0}" = 1 ] && ensure_pkgs ccache
ensure_qemu
ensure_rust
step "host set-up complete"
