#!/bin/bash
# test/matrix.sh: the whole test suite on every supported PostgreSQL major
# version: 15 on the host, 17 and 18 each inside its own Debian chroot
# (test/chroot.sh creates and caches them).  For each version it runs
# test/run-all.sh against that version's server (servers run as the
# non-root user run-all.sh creates) and prints one summary line; exits
# non-zero if any version failed.
#
# Usage (as root): test/matrix.sh [VERSION...]     (default: 15 17 18)
#
# The tree (without .git and build products) is copied into the chroot for
# each run and removed afterwards; the logs of every version stay in
# AA_MATRIX_LOGS (default: a new /tmp/aa_matrix.XXXXXX), and the log of a
# failed version is shown at the end.  AA_TESTS, AA_PGTAP_PORT and
# AA_KEEP_WORK are passed on to run-all.sh; AA_PGBIN applies to the host
# version only.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib/common.sh
. "$ROOT/test/lib/common.sh"

HOST_VERSION=$AA_PG_VERSION
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=("$HOST_VERSION" 17 18)
LOGS=${AA_MATRIX_LOGS:-$(mktemp -d /tmp/aa_matrix.XXXXXX)}
mkdir -p "$LOGS"
START=$SECONDS

aa_is_root || aa_die "test/matrix.sh needs root (chroots for the other versions)"

SUMMARY=()
FAILED_LOGS=()
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

# passed_env: the run-all.sh settings given to this script, as NAME=VALUE
passed_env()
{
	local v
	for v in AA_TESTS AA_PGTAP_PORT AA_KEEP_WORK AA_USER; do
		if [ -n "${!v:-}" ]; then
			printf '%s=%s\n' "$v" "${!v}"
		fi
	done
}

# result_line LOG: run-all.sh's final "N passed, N failed" line
result_line()
{
	grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1
}

# run_version VERSION LOG: run the suite for one version, output to LOG
run_version()
{
	local v=$1 log=$2 dir env_args
	mapfile -t env_args < <(passed_env)
	if [ "$v" = "$HOST_VERSION" ]; then
		env "${env_args[@]}" AA_PGBIN="$AA_PGBIN" "$ROOT/test/run-all.sh" >"$log" 2>&1
		return
	fi
	dir=$("$ROOT/test/chroot.sh" "$v" ensure 2>>"$log") || return 1
	COPIED=$dir/aa
	rm -rf "$COPIED"
	mkdir -p "$COPIED/src"
	tar -C "$ROOT" -cf - --exclude=./.git --exclude='./tmp_check*' \
		--exclude=./results --exclude=./output_iso --exclude=./log \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./test/clients/node_modules . |
		tar -C "$COPIED/src" -xf - || return 1
	"$ROOT/test/chroot.sh" "$v" run env "${env_args[@]}" \
		AA_PGBIN="/usr/lib/postgresql/$v/bin" \
		/aa/src/test/run-all.sh >>"$log" 2>&1
	local rc=$?
	rm -rf "$COPIED"
	COPIED=
	return $rc
}

for v in "${VERSIONS[@]}"; do
	log=$LOGS/pg$v.log
	: >"$log"
	t0=$SECONDS
	aa_say "PostgreSQL $v: running (log: $log)"
	if run_version "$v" "$log"; then
		status=ok
	else
		status=FAILED
		FAILED_LOGS+=("$log")
	fi
	res=$(result_line "$log")
	server=$(grep -Eo 'PostgreSQL [0-9]+\.[0-9]+' "$log" | head -n 1)
	SUMMARY+=("$(printf 'PostgreSQL %-3s %-6s %s (%s s)%s' "$v" "$status" \
		"${res:-no result}" "$((SECONDS - t0))" "${server:+, server $server}")")
done

for f in "${FAILED_LOGS[@]}"; do
	aa_header "$f"
	sed -n '/^=== failures ===/,$p' "$f" | head -n 300
	if ! grep -q '^=== failures ===' "$f"; then
		tail -n 60 "$f"
	fi
done

aa_header "matrix ($((SECONDS - START)) s, logs in $LOGS)"
printf '%s\n' "${SUMMARY[@]}"

# one closing line over every version: a version that gave no result
# counts as one failed unit
total_passed=0
total_failed=0
for v in "${VERSIONS[@]}"; do
	res=$(result_line "$LOGS/pg$v.log")
	if [[ $res =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		total_passed=$((total_passed + BASH_REMATCH[1]))
		total_failed=$((total_failed + BASH_REMATCH[2]))
	else
		total_failed=$((total_failed + 1))
	fi
done
echo
echo "matrix: $total_passed passed, $total_failed failed"
[ ${#FAILED_LOGS[@]} -eq 0 ] && [ "$total_failed" -eq 0 ]
