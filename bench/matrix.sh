#!/bin/bash
# bench/matrix.sh: the benchmark (bench/run.sh) on every supported
# PostgreSQL major version, each side by side with that version's pgaudit:
# the host's version (15) directly, 17 and 18 inside the test chroots
# (test/chroot.sh creates and caches them).  The versions run one after
# the other, never at the same time.
#
# Usage (as root): bench/matrix.sh [-V "15 17 18"] [bench/run.sh options]
#   e.g. bench/matrix.sh -T 5 -r 2 -n 200000    (a quicker, noisier run)
# Results: bench/results/<UTC time>-pgNN/ for each version (summary.txt,
# raw.tsv, server-version.txt, ...); each version's summary is printed at
# the end.  Exits non-zero if any version's run failed.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../test/lib/common.sh
. "$ROOT/test/lib/common.sh"

VERSIONS="$AA_PG_VERSION 17 18"
if [ "${1:-}" = -V ]; then
	VERSIONS=$2
	shift 2
fi
aa_is_root || aa_die "bench/matrix.sh needs root (bench/run.sh and the chroots)"

COPIED=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
	if [ -n "$COPIED" ] && [ -d "$COPIED" ]; then
		rm -rf "$COPIED"
	fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

failed=0
RESULTS=()
for v in $VERSIONS; do
	aa_header "benchmark on PostgreSQL $v"
	before=$(ls -d "$ROOT"/bench/results/*-pg"$v" 2>/dev/null | tail -n 1)
	if [ "$v" = "$AA_PG_VERSION" ]; then
		if ! BENCH_TAG=pg$v PGBIN=$AA_PGBIN "$ROOT/bench/run.sh" "$@"; then
			failed=1
		fi
	else
		dir=$("$ROOT/test/chroot.sh" "$v" ensure) || {
			failed=1
			continue
		}
		COPIED=$dir/aa-bench
		rm -rf "$COPIED"
		mkdir -p "$COPIED/src"
		tar -C "$ROOT" -cf - --exclude=./.git --exclude=./bench/results \
			--exclude='./tmp_check*' --exclude='*.o' --exclude='*.so' \
			--exclude='*.bc' --exclude=./test/clients/node_modules . |
			tar -C "$COPIED/src" -xf -
		if ! "$ROOT/test/chroot.sh" "$v" run env BENCH_TAG="pg$v" \
			PGBIN="/usr/lib/postgresql/$v/bin" /aa-bench/src/bench/run.sh "$@"; then
			failed=1
		fi
		mkdir -p "$ROOT/bench/results"
		cp -a "$COPIED"/src/bench/results/* "$ROOT/bench/results/" 2>/dev/null || true
		rm -rf "$COPIED"
		COPIED=
	fi
	after=$(ls -d "$ROOT"/bench/results/*-pg"$v" 2>/dev/null | tail -n 1)
	if [ -n "$after" ] && [ "$after" != "$before" ]; then
		RESULTS+=("$after")
	fi
done

for r in "${RESULTS[@]}"; do
	aa_header "$(cat "$r/server-version.txt" 2>/dev/null || basename "$r"): $r"
	cat "$r/summary.txt" 2>/dev/null || echo "(no summary: the run failed; see $r/progress.log)"
done
exit $failed
