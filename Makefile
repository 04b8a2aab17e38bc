# epoll-torture: top-level entry points. See README.md.
#
#   make run      build what is missing, run the matrix, print the verdicts
#   make check    the tests CI runs (host tests, lints, builds, boots)
#   make vm ARCH=riscv64 VARIANT=rwlock    interactive guest shell
#
# Also: make setup | kernels | module | image | bench | clean-cache
# Knobs: ARCHS, VARIANTS, SCENARIOS, REPEAT, DURATION, JOBS, SHARD, BASE,
#        KERNEL_SRC, PATCHES, DEBUG, EPT_CACHE, SELFTEST_RERUN=1.

# kbuild (make -C <kdir> M=$PWD) reads ./Kbuild, never this file.
SHELL := /bin/bash
ARCH ?= x86_64
VARIANT ?= spinlock
ARCHS ?= x86_64 riscv64
VARIANTS ?= spinlock rwlock lockless
SCENARIOS ?=
REPEAT ?=
DURATION ?=
JOBS ?=
SHARD ?=
export BASE KERNEL_SRC PATCHES DEBUG EPT_CACHE SELFTEST_RERUN

HOST_TOOL := selftests/host/target/release/ept
CARGO := $(HOME)/.cargo/bin/cargo

.PHONY: all run check setup kernels module image vm host-tool bench clean-cache help

all: help

help:
	@sed -n '2,12p' Makefile | sed 's/^# \{0,1\}//'

setup:
	@bash qemu/setup-host.sh

host-tool: setup
	@echo "[host] cargo build selftests/host"
	@$(CARGO) build -q --release --manifest-path selftests/host/Cargo.toml

kernels: setup
	@for a in $(ARCHS); do for v in $(VARIANTS); do \
		bash qemu/build-kernel.sh $$a $$v >/dev/null; rc=$$?; \
		[ $$rc = 3 ] && continue; [ $$rc = 0 ] || exit $$rc; \
	done; done

module: setup
	@bash qemu/build-module.sh $(ARCH) $(VARIANT)

image: setup
	@bash qemu/mkimage.sh $(ARCH) $(VARIANT)

vm: setup
	@bash qemu/run-vm.sh $(ARCH) $(VARIANT)

run: host-tool
	@$(HOST_TOOL) run --archs "$(ARCHS)" --variants "$(VARIANTS)" \
		$(if $(SCENARIOS),--scenarios "$(SCENARIOS)") $(if $(REPEAT),--repeat $(REPEAT)) \
		$(if $(DURATION),--duration $(DURATION)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(SHARD),--shard $(SHARD))

check: setup
	@bash qemu/check.sh

bench: setup
	@bash qemu/bench.sh

clean-cache:
	rm -rf "$${EPT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/epoll-torture}"

