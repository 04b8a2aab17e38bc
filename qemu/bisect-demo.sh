#!/usr/bin/env bash
# The bisect demonstration (issue 15, docs/bisect.md): `ept bisect` over
# qemu/series/eventpoll-history and over a small git repository made of
# the same patches, each with its wall time appended to the results file.
#
#   bisect-demo.sh series ARCH SCENARIO   series mode, old end = prefix 1 (0001, rwlock)
#   bisect-demo.sh git ARCH SCENARIO      git mode on the demo repository (made first)
#   bisect-demo.sh repo                   only make the demo repository; print its path
#   bisect-demo.sh short                  the short real bisect for `make check`
#                                         (x86_64 inversion, series, 3 steps)
#   bisect-demo.sh all                    series x {x86_64,riscv64} x {inversion,wakeup}
#                                         and git x86_64 inversion
#
# The demo repository ($EPT_CACHE/bisect-demo/linux) is a git checkout of
# the Debian source tree the cache unpacked (hard links to it; nothing ever
# writes those files): commit 1 = the base as shipped, then one commit per
# patch of the series, applied to the index only (`git apply --cached`).
# After 0003 the tree is the base again, byte for byte, so the hard-linked
# checkout is clean. `ept bisect` clones it (--shared) and never writes it.
#
# Environment: RESULTS (default docs/bisect-results.md; RESULTS= for none),
# SERIES_KERNEL_SRC (series mode on that tree instead of Debian's base: the
# demo repository's bisect clone at HEAD is the base byte for byte, and its
# own work tree and build dir do not wait for the base's shared work tree),
# EPT_VM_LOCK (default $EPT_CACHE/locks/vm.lock), BISECT_ARGS (more
# `ept bisect` options).
set -euo pipefail
EPT_TAG=bisect-demo
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"
EPT="$EPT_TOP/selftests/host/target/release/ept"
SERIES="$EPT_TOP/qemu/series/eventpoll-history"
RESULTS=${RESULTS-$EPT_TOP/docs/bisect-results.md}
export EPT_VM_LOCK=${EPT_VM_LOCK:-$EPT_CACHE/locks/vm.lock}
unset PATCHES KERNEL_SRC GOOD BAD

make_repo() {
	local src repo p subj
	src=$("$EPT_TOP/qemu/kernel-source.sh" "${BASE:-7}")
	repo="$EPT_CACHE/bisect-demo/linux"
	if [ -f "$repo/.git/ept-demo-done" ] &&
		[ "$(cat "$repo/.git/ept-demo-done")" = "$(cat "$SERIES"/*.patch | sha256sum | cut -c1-16)" ]; then
		echo "$repo"; return
	fi
	say "making the demo repository $repo from $src"
	rm -rf "$repo"; mkdir -p "$repo"
	cp -al "$src/." "$repo/"
	rm -f "$repo/.base.env" "$repo/.unpacked"
	git -C "$repo" init -q
	git -C "$repo" config user.name "epoll-torture demo"
	git -C "$repo" config user.email "demo@epoll-torture.invalid"
	git -C "$repo" config core.compression 1
	( . "$src/.base.env"; git -C "$repo" add -A -f . && git -C "$repo" commit -q -m "$BASE_PKG $BASE_DEB_VERSION as Debian ships it" )
	for p in "$SERIES"/*.patch; do
		subj=$(awk '/^Subject:/ {s=$0; sub(/^Subject: *(\[[^]]*\] *)?/, "", s); f=1; next}
			f && /^[ \t]/ {sub(/^[ \t]+/, " "); s = s $0; next} f {print s; exit}' "$p")
		git -C "$repo" apply --cached "$p"
		git -C "$repo" commit -q -m "$subj" -m "qemu/series/eventpoll-history/$(basename "$p")"
	done
	git -C "$repo" diff --quiet HEAD -- fs/eventpoll.c || die "after the series fs/eventpoll.c should be the base again"
	git -C "$repo" tag demo-base HEAD~3
	git -C "$repo" tag demo-rwlock HEAD~2
	cat "$SERIES"/*.patch | sha256sum | cut -c1-16 >"$repo/.git/ept-demo-done"
	say "demo repository: $(git -C "$repo" log --oneline | head -4 | tr '\n' ';')"
	echo "$repo"
}

# record TITLE CMD...: run, time, append command + output to $RESULTS.
record() {
	local title=$1 t0 t1 rc=0 out err
	shift
	out=$(mktemp); err=$(mktemp)
	say "$title: $*"
	t0=$(date +%s)
	"$@" >"$out" 2> >(tee "$err" >&2) || rc=$?
	t1=$(date +%s)
	sleep 1
	cat "$out"
	say "$title: exit $rc, wall $((t1 - t0)) s"
	if [ -n "$RESULTS" ]; then
		{
			printf '\n## %s\n\n' "$title"
			printf -- '- when: %s UTC, host load at the end: %s\n' "$(date -u '+%Y-%m-%d %H:%M')" "$(cut -d' ' -f1-3 /proc/loadavg)"
			printf -- '- command: `%s`\n' "$*"
			printf -- '- exit status: %s; **wall time: %s s**\n\n' "$rc" "$((t1 - t0))"
			printf 'Progress (one line per step):\n\n```\n'
			grep '^bisect:' "$err" || true
			printf '```\n\n'
			sed 's/^# /### /' "$out"
		} >>"$RESULTS"
	fi
	rm -f "$out" "$err"
	return $rc
}

series() { # ARCH SCENARIO
	record "series: $1 $2 over eventpoll-history (old end: prefix 1)${SERIES_KERNEL_SRC:+ on KERNEL_SRC=$SERIES_KERNEL_SRC}" \
		"$EPT" bisect --arch "$1" --scenario "$2" --series "$SERIES" --from 1 \
		${SERIES_KERNEL_SRC:+--kernel-src "$SERIES_KERNEL_SRC"} \
		--out "out/bisect/demo-series-$1-$2" ${BISECT_ARGS:-}
}

gitmode() { # ARCH SCENARIO
	local repo
	repo=$(make_repo)
	record "git: $1 $2 on the demo repository (GOOD=demo-rwlock BAD=HEAD)" \
		"$EPT" bisect --arch "$1" --scenario "$2" --kernel-src "$repo" \
		--good demo-rwlock --bad HEAD --out "out/bisect/demo-git-$1-$2" ${BISECT_ARGS:-}
}

case "${1:-}" in
repo) make_repo ;;
series) series "${2:?ARCH}" "${3:?SCENARIO}" ;;
git) gitmode "${2:?ARCH}" "${3:?SCENARIO}" ;;
short)
	# 3 steps (prefix 1, 3, then 2), x86_64 inversion: what `make check`
	# may call. Exit 0 only when it names 0002.
	t0=$(date +%s)
	out=$("$EPT" bisect --arch x86_64 --scenario inversion --series "$SERIES" --from 1 \
		${SERIES_KERNEL_SRC:+--kernel-src "$SERIES_KERNEL_SRC"} \
		--out out/bisect/check-x86_64-inversion --json ${BISECT_ARGS:-})
	c=$(printf '%s' "$out" | sed -n 's/^  "culprit": "\(.*\)",$/\1/p')
	say "short bisect: culprit ${c:-none} in $(( $(date +%s) - t0 )) s"
	[ -z "$RESULTS" ] || printf '\n## short (check) bisect: x86_64 inversion%s\n\n- when: %s UTC; culprit %s; **wall time: %s s**\n' \
		"${SERIES_KERNEL_SRC:+ on KERNEL_SRC=$SERIES_KERNEL_SRC}" "$(date -u '+%Y-%m-%d %H:%M')" "${c:-none}" "$(( $(date +%s) - t0 ))" >>"$RESULTS"
	case $c in 0002-*) ;; *) die "short bisect: expected 0002-*, got '${c:-none}'" ;; esac
	;;
all)
	for a in x86_64 riscv64; do for s in inversion wakeup; do series "$a" "$s"; done; done
	gitmode x86_64 inversion
	;;
*) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
