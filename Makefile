# epoll-torture: top-level entry points. See README.md.
#
#   make run      build what is missing, run the matrix, print the verdicts
#   make quick    one arch: your VARIANT (or PATCHES/KERNEL_SRC) against spinlock and rwlock
#   make check    the tests CI runs (host tests, lints, builds, boots; check-full: + 6.12, debug)
#   make bisect   the patch (SERIES=dir or PATCHES=, FROM=k) or commit (KERNEL_SRC=,
#                 GOOD=, BAD=) that flips the verdict of ARCH x SCENARIO (docs/bisect.md)
#   make vm ARCH=riscv64 VARIANT=rwlock    interactive guest shell
#
# Also: make setup | kernels | module | image | bench | defaults | fidelity |
#       ci-dryrun | validate-ci | clean-cache
# Knobs: ARCHS, VARIANTS, SCENARIOS, REPEAT, DURATION, JOBS, SHARD, BASE,
#        KERNEL_SRC, PATCHES, DEBUG, EPT_CACHE, ISOLATE=1, FORCE=1,
#        SELFTEST_RERUN=1, CCACHE=1, TRACE=1 (docs/trace.md), EPT_VM_LOCK. The default ARCHS, VARIANTS and SCENARIOS live in
#        selftests/host/scenarios.json (`make defaults` shows them).

# kbuild (make -C <kdir> M=$PWD) reads ./Kbuild, never this file.
SHELL := /bin/bash
ARCH ?= x86_64
VARIANT ?= spinlock
# Empty = the defaults of selftests/host/scenarios.json.
ARCHS ?=
VARIANTS ?=
SCENARIOS ?=
REPEAT ?=
DURATION ?=
JOBS ?=
SHARD ?=
export BASE KERNEL_SRC PATCHES DEBUG EPT_CACHE SELFTEST_RERUN ISOLATE FORCE EPT_VM_LOCK CCACHE TRACE

HOST_TOOL := selftests/host/target/release/ept
CARGO := $(HOME)/.cargo/bin/cargo
# A list knob, else the data's default (`ept defaults KEY`).
list = $(or $($(1)),$(shell $(HOST_TOOL) defaults $(2)))

.PHONY: all run quick check check-full bisect bisect-demo setup kernels module image vm host-tool bench defaults fidelity ci-dryrun validate-ci clean-cache help

all: help

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

setup:
	@bash qemu/setup-host.sh

host-tool: setup
	@echo "[host] cargo build selftests/host"
	@$(CARGO) build -q --release --manifest-path selftests/host/Cargo.toml

defaults: host-tool
	@for s in $$($(HOST_TOOL) defaults sets); do for k in env archs variants scenarios; do \
		printf '%-9s %-10s %s\n' $$s $$k "$$($(HOST_TOOL) defaults $$s $$k)"; done; done

kernels: host-tool
	@for a in $(call list,ARCHS,archs); do for v in $(call list,VARIANTS,variants); do \
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
	@$(HOST_TOOL) run $(if $(ARCHS),--archs "$(ARCHS)") $(if $(VARIANTS),--variants "$(VARIANTS)") \
		$(if $(SCENARIOS),--scenarios "$(SCENARIOS)") $(if $(REPEAT),--repeat $(REPEAT)) \
		$(if $(DURATION),--duration $(DURATION)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(SHARD),--shard $(SHARD))

quick: host-tool
	@ARCH=$(ARCH) VARIANT=$(if $(filter command line environment,$(origin VARIANT)),$(VARIANT)) \
		bash qemu/quick.sh

bisect: host-tool
	@$(HOST_TOOL) bisect --arch $(ARCH) --scenario $(or $(SCENARIO),inversion) \
		$(if $(SERIES),--series "$(SERIES)") $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) \
		$(if $(GOOD),--good "$(GOOD)") $(if $(BAD),--bad "$(BAD)") $(BISECT_ARGS)

# DEMO=all|short|series ARCH SCENARIO|git ARCH SCENARIO (qemu/bisect-demo.sh)
bisect-demo: host-tool
	@bash qemu/bisect-demo.sh $(or $(DEMO),all)

check: setup
	@bash qemu/check.sh

# make check plus the 6.12 LTS base and the lockdep/debug boots (about 30 min more, cold).
check-full: setup
	@CHECK_SETS="check check-cross check-6.12 check-debug" bash qemu/check.sh

bench: setup
	@bash qemu/bench.sh

# Each variant's fs/eventpoll.c against the upstream code it stands for.
fidelity: setup
	@bash qemu/fidelity.sh --all

# Run exactly what the CI pipelines' jobs run, on a tiny matrix, 2 shards + merge.
ci-dryrun: setup
	@bash qemu/ci-dryrun.sh

# junit.xml, kcidb.json and both pipeline files against their schemas.
validate-ci:
	@bash qemu/validate-ci.sh

clean-cache:
	rm -rf "$${EPT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/epoll-torture}"
