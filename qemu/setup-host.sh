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

ensure_qemu() {
	if qemu-system-x86_64 --version 2>/dev/null | grep -q 'version 1[0-9]' &&
	   qemu-system-riscv64 --version >/dev/null 2>&1; then
		step "qemu 10 present"
		return
	fi
	step "apt-get install -t bookworm-backports qemu-system-x86 qemu-system-misc"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports qemu-system-x86 qemu-system-misc >/dev/null
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
	for t in x86_64-unknown-linux-musl riscv64gc-unknown-linux-gnu; do
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
	clang-19 lld-19 llvm-19 libclang-19-dev gcc-riscv64-linux-gnu libc6-dev-riscv64-cross \
	busybox-static musl-tools debian-archive-keyring patch python3 kmod
ensure_qemu
ensure_rust
step "host set-up complete"
