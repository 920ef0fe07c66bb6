#!/bin/bash
# test/run-all.sh: the test command.  Installs what it needs, builds with
# warnings as errors, checks the C formatting, installs, and runs every
# suite against servers it starts itself:
#   pg_regress  sql/*.sql + expected/          (make installcheck, temp instance)
#   isolation   test/specs/*.spec              (make installcheck, temp instance)
#   TAP         test/t/*.pl                    (make installcheck, PostgreSQL::Test::Cluster)
#   pgTAP       test/pgtap/*.sql               (pg_prove against a server started here)
#   core        PostgreSQL's core regression suite, plain vs. with access_audit
#               (test/core-regress.sh; unit core_regress)
# Also checks, from the object files, that no two C files call each other
# (test/call-cycles.sh; unit call_cycles, always run).
# Prints each failing diff or log tail and ends with one line
# "N passed, N failed" (one unit per build step, regress test, isolation
# spec, TAP file and pgTAP file); exits non-zero on any failure.
#
# As root: installs missing Debian packages, creates OS user aa_test
# (AA_USER) and runs build and tests as that user; installs as root.
# As a normal user: the packages must be installed (or sudo -n must work),
# and "make install" needs write access to the PostgreSQL directories or
# sudo -n.
#
# The tests run in a copy of the tree under /tmp (the checkout is not
# written to), removed at the end unless a unit failed or AA_KEEP_WORK=1.
# Every server started here is stopped on exit, also on failure or ^C.
#
# When an older major version (15 or later) is installed beside the tested
# one, this build is installed into it too, for the pg_upgrade and dump
# tests (test/t/085_pg_upgrade.pl, 086_dump_across_versions.pl; skipped
# otherwise).
#
# Environment: AA_USER (aa_test), AA_PGTAP_PORT (55440), AA_KEEP_WORK,
# PG_CONFIG (picks the server when AA_PGBIN is not set),
# AA_PGBIN (the server's bin directory), AA_TESTS (run only these tests: a
# space-separated list of regress test names, isolation spec names, TAP file
# names without .pl, pgTAP file names without .sql, and core_regress; the
# build, format and install steps always run).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib/common.sh
. "$ROOT/test/lib/common.sh"

PGTAP_PORT=${AA_PGTAP_PORT:-55440}
PGTAP_DB=aa_pgtap

passed=0
failed=0
FAILED_UNITS=()
DETAILS=()				# files or commands whose output explains a failure
WORK=
PGTAP_DATA=
START=$SECONDS

unit_ok()
{
	passed=$((passed + 1))
}

unit_failed()
{
	failed=$((failed + 1))
	FAILED_UNITS+=("$1")
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
	local rc=$?
	if [ -n "$PGTAP_DATA" ]; then
		aa_pg_stop "$PGTAP_DATA"
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		aa_stop_all_under "$WORK"
		if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] && [ -z "${AA_KEEP_WORK:-}" ]; then
			rm -rf "$WORK"
		else
			echo "work directory kept: $WORK" >&2
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

# make_as_user ARGS...: make in the work copy as the server user
make_as_user()
{
	(cd "$WORK" && aa_as_user make -s PG_CONFIG="$AA_PG_CONFIG" "$@")
}

# summary_and_exit: print failure details, then the one summary line
summary_and_exit()
{
	local d
	if [ "$failed" -gt 0 ]; then
		aa_header "failures"
		for d in "${DETAILS[@]}"; do
			show_detail "$d"
		done
		echo
		echo "failed: ${FAILED_UNITS[*]}"
	fi
	echo
	echo "runtime: $((SECONDS - START)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

# show_detail SPEC: SPEC is "file:PATH" (whole file), "tail:PATH" (last lines)
show_detail()
{
	local kind=${1%%:*} path=${1#*:} n
	[ -f "$path" ] || return 0
	case $kind in
		file)
			n=$(wc -l <"$path")
			echo "----- ${path#"$WORK"/} -----"
			if [ "$n" -gt 500 ]; then
				head -n 500 "$path"
				echo "... ($((n - 500)) more lines in $path)"
			else
				cat "$path"
			fi
			;;
		tail)
			echo "----- last 40 lines of ${path#"$WORK"/} -----"
			tail -n 40 "$path"
			;;
	esac
}

# count_regress LOG NAME...: pg_regress result of each named test
# (PG15 prints "test NAME ... ok"/"FAILED"; later releases "ok N - NAME")
count_regress()
{
	local log=$1 name status any_failed=0
	shift
	for name in "$@"; do
		status=$(grep -E "^(test +| +)?${name} +\.\.\. |^(not )?ok [0-9]+ +[-+] +${name} " "$log" |
			tail -n 1)
		if printf '%s' "$status" | grep -Eq "\.\.\. +ok |\.\.\. +ok$|^ok "; then
			unit_ok
		elif [ -z "$status" ]; then
			unit_failed "$name(did-not-run)"
			any_failed=1
		else
			unit_failed "$name"
			any_failed=1
		fi
	done
	return $any_failed
}

# count_prove LOG FILE...: prove/pg_prove result of each named file; a
# file failed if the "Test Summary Report" lists it, or if the run ended
# without "Result: PASS"/"Result: FAIL"
count_prove()
{
	local log=$1 f any_failed=0 result
	shift
	result=$(grep -E '^Result: (PASS|FAIL)' "$log" | tail -n 1)
	for f in "$@"; do
		if [ "$result" = "Result: PASS" ]; then
			unit_ok
		elif [ -z "$result" ]; then
			unit_failed "$f(did-not-finish)"
			any_failed=1
		elif awk -v f="$f" '$1 == f && $2 ~ /^\(Wstat:/ { found = 1 } END { exit !found }' "$log"; then
			unit_failed "$f"
			any_failed=1
		else
			unit_ok
		fi
	done
	return $any_failed
}

# same_module A B: true if two builds of the module have the same code
# (debug info and build id name the build directory, so they are left out)
same_module()
{
	local t rc
	t=$(mktemp -d)
	objcopy --strip-debug --remove-section=.note.gnu.build-id "$1" "$t/a" 2>/dev/null &&
		objcopy --strip-debug --remove-section=.note.gnu.build-id "$2" "$t/b" 2>/dev/null &&
		cmp -s "$t/a" "$t/b"
	rc=$?
	rm -rf "$t"
	return $rc
}

# installed_same: true if the installed module, control file and install
# script are the ones just built in the work copy
installed_same()
{
	same_module "$WORK/access_audit.so" "$pkglibdir/access_audit.so" &&
		cmp -s "$WORK/access_audit.control" "$sharedir/extension/access_audit.control" &&
		cmp -s "$WORK/extension/access_audit--1.1.sql" "$sharedir/extension/access_audit--1.1.sql"
}

# server_trouble DIFFS: true if the diffs are missing or show a lost connection
server_trouble()
{
	[ -s "$1" ] || return 0
	grep -Eq 'server closed the connection|connection to server was lost|terminated by signal' "$1"
}

# ---------------------------------------------------------------------------
aa_header "packages"
aa_ensure_packages "${AA_TEST_PACKAGES[@]}"
aa_ensure_user
[ -x "$AA_PG_CONFIG" ] || aa_die "no pg_config in $AA_PGBIN (set AA_PGBIN or PG_CONFIG)"
echo "server: $("$AA_PG_CONFIG" --version) ($AA_PGBIN)"

# selected NAME: true unless AA_TESTS is set and does not list NAME
selected()
{
	[ -z "${AA_TESTS:-}" ] && return 0
	case " $AA_TESTS " in
		*" $1 "*) return 0 ;;
	esac
	return 1
}

cd "$ROOT" || exit 2
REGRESS_TESTS=()
for f in sql/*.sql; do
	[ -e "$f" ] && selected "$(basename "$f" .sql)" && REGRESS_TESTS+=("$(basename "$f" .sql)")
done
ISOLATION_TESTS=()
for f in test/specs/*.spec; do
	[ -e "$f" ] && selected "$(basename "$f" .spec)" && ISOLATION_TESTS+=("$(basename "$f" .spec)")
done
TAP_FILES=()
for f in test/t/*.pl; do
	[ -e "$f" ] && selected "$(basename "$f" .pl)" && TAP_FILES+=("$f")
done
PGTAP_FILES=()
for f in test/pgtap/*.sql; do
	[ -e "$f" ] && selected "$(basename "$f" .sql)" && PGTAP_FILES+=("$f")
done

# A copy of the tree the server user can write: tmp_check, results and
# node_modules go there, and build products of the checkout are left out so
# that everything is compiled here with -Werror.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aa_run_all.XXXXXX") || aa_die "mktemp failed"
chmod 755 "$WORK"
tar -C "$ROOT" -cf - \
	--exclude=./.git --exclude='./tmp_check*' --exclude=./results \
	--exclude=./output_iso --exclude=./log --exclude='./regression.*' \
	--exclude=./test/results --exclude=./test/tmp --exclude=./demo-data \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./extension/access_audit--1.1.sql \
	--exclude=./extension/access_audit--1.0--1.1.sql . |
	tar -C "$WORK" -xf - || aa_die "could not copy the tree to $WORK"
if aa_is_root; then
	chown -R "$AA_USER:" "$WORK"
fi
echo "work directory: $WORK (as OS user $AA_USER)"

# ---------------------------------------------------------------------------
aa_header "build (make COPT=-Werror)"
if make_as_user COPT=-Werror >"$WORK/build.log" 2>&1; then
	cat "$WORK/build.log"
	echo "ok"
	unit_ok
else
	cat "$WORK/build.log"
	unit_failed build
	echo "build failed; no tests run"
	summary_and_exit
fi

aa_header "call cycles (test/call-cycles.sh)"
# no two C files may call each other, directly or through others
if "$WORK/test/call-cycles.sh" "$WORK"/extension/*.o >"$WORK/call-cycles.log" 2>&1; then
	echo "ok"
	unit_ok
else
	echo "C files call each other (see docs/design.md, Dependencies)"
	unit_failed call_cycles
	DETAILS+=("file:$WORK/call-cycles.log")
fi

aa_header "format (make indentcheck)"
if ! command -v pg_bsd_indent >/dev/null 2>&1 &&
	[ "$AA_PG_VERSION" != "$AA_PG_DEFAULT_VERSION" ]; then
	# the layout does not depend on the server version; Debian packages
	# pg_bsd_indent for the host's version only
	echo "skipped: no pg_bsd_indent here (the format is checked with PostgreSQL $AA_PG_DEFAULT_VERSION)"
elif make_as_user indentcheck >"$WORK/indent.diff" 2>&1; then
	echo "ok"
	unit_ok
else
	echo "C files differ from pg_bsd_indent's layout (fix with: make indent)"
	unit_failed indentcheck
	DETAILS+=("file:$WORK/indent.diff")
fi

aa_header "install (make install)"
pkglibdir=$("$AA_PG_CONFIG" --pkglibdir)
sharedir=$("$AA_PG_CONFIG" --sharedir)
if [ -w "$pkglibdir" ] && [ -w "$sharedir/extension" ]; then
	install_cmd=(make)
else
	install_cmd=(aa_as_root make)
fi
if (cd "$WORK" && "${install_cmd[@]}" -s PG_CONFIG="$AA_PG_CONFIG" install) >"$WORK/install.log" 2>&1; then
	echo "installed into $pkglibdir"
	unit_ok
elif ! aa_is_root && installed_same; then
	# a normal user without sudo, after an install by root of this build
	echo "cannot install without root, but the installed files are this build's: testing them"
	unit_ok
else
	echo "install failed; as a normal user, run 'make install' as root first (or run this script as root)"
	cat "$WORK/install.log"
	unit_failed install
	echo "install failed; no tests run"
	summary_and_exit
fi

# The pg_upgrade and cross-version dump tests (test/t/085_pg_upgrade.pl,
# 086_dump_across_versions.pl) start from the newest older major version
# (15 or later) installed next to this one, if any: that version gets this
# build of the extension too.
upgrade_from=
if printf '%s\n' "${TAP_FILES[@]}" | grep -Eq '/(085_pg_upgrade|086_dump_across_versions)\.pl$'; then
	for ((v = AA_PG_VERSION - 1; v >= 15; v--)); do
		if [ -x "/usr/lib/postgresql/$v/bin/pg_config" ] &&
			[ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then
			upgrade_from=$v
			break
		fi
	done
fi
if [ -n "$upgrade_from" ]; then
	aa_header "install for PostgreSQL $upgrade_from (the old server of the upgrade and dump tests)"
	old_config=/usr/lib/postgresql/$upgrade_from/bin/pg_config
	mkdir -p "$WORK/upgrade_from"
	tar -C "$WORK" -cf - --exclude=./upgrade_from --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=./extension/access_audit--1.1.sql . |
		tar -C "$WORK/upgrade_from" -xf -
	if aa_is_root; then
		chown -R "$AA_USER:" "$WORK/upgrade_from"
	fi
	if (cd "$WORK/upgrade_from" && aa_as_user make -s PG_CONFIG="$old_config" COPT=-Werror &&
		"${install_cmd[@]}" -s PG_CONFIG="$old_config" install) >"$WORK/install_old.log" 2>&1; then
		echo "installed into $("$old_config" --pkglibdir)"
		export AA_UPGRADE_FROM_PGBIN=/usr/lib/postgresql/$upgrade_from/bin
		unit_ok
	else
		cat "$WORK/install_old.log"
		unit_failed "install-$upgrade_from"
	fi
fi

# ---------------------------------------------------------------------------
# make installcheck, one suite at a time: a failing pg_regress would stop
# make before the isolation and TAP suites otherwise.
if [ ${#REGRESS_TESTS[@]} -gt 0 ]; then
	aa_header "pg_regress (${#REGRESS_TESTS[@]} tests)"
	make_as_user installcheck ISOLATION= TAP_TESTS= REGRESS="${REGRESS_TESTS[*]}" 2>&1 | tee "$WORK/regress.log"
	if ! count_regress "$WORK/regress.log" "${REGRESS_TESTS[@]}"; then
		DETAILS+=("file:$WORK/regression.diffs")
		# the server log explains a crash; the TAP run below removes tmp_check
		if server_trouble "$WORK/regression.diffs"; then
			cp "$WORK/tmp_check/log/postmaster.log" "$WORK/regress-postmaster.log" 2>/dev/null &&
				DETAILS+=("tail:$WORK/regress-postmaster.log")
		fi
	fi
fi

if [ ${#ISOLATION_TESTS[@]} -gt 0 ]; then
	aa_header "isolation (${#ISOLATION_TESTS[@]} specs)"
	make_as_user installcheck REGRESS= TAP_TESTS= ISOLATION="${ISOLATION_TESTS[*]}" 2>&1 | tee "$WORK/isolation.log"
	if ! count_regress "$WORK/isolation.log" "${ISOLATION_TESTS[@]}"; then
		DETAILS+=("file:$WORK/output_iso/regression.diffs")
		if server_trouble "$WORK/output_iso/regression.diffs"; then
			DETAILS+=("tail:$WORK/tmp_check_iso/log/postmaster.log")
		fi
	fi
fi

if [ ${#TAP_FILES[@]} -gt 0 ]; then
	aa_header "TAP (${#TAP_FILES[@]} files)"
	make_as_user installcheck REGRESS= ISOLATION= PROVE_TESTS="${TAP_FILES[*]}" 2>&1 | tee "$WORK/tap.log"
	if ! count_prove "$WORK/tap.log" "${TAP_FILES[@]}"; then
		for f in "${TAP_FILES[@]}"; do
			if printf '%s\n' "${FAILED_UNITS[@]}" | grep -Fq "$f"; then
				t=$(basename "$f" .pl)
				DETAILS+=("tail:$WORK/tmp_check/log/regress_log_$t")
				for l in "$WORK"/tmp_check/log/"${t}"_*.log; do
					[ -f "$l" ] && DETAILS+=("tail:$l")
				done
			fi
		done
	fi
fi

# ---------------------------------------------------------------------------
# pgTAP: a throwaway server with access_audit and pg_cron preloaded, unix
# socket only, one fresh database with pgtap and access_audit.
if [ ${#PGTAP_FILES[@]} -gt 0 ]; then
	aa_header "pgTAP (${#PGTAP_FILES[@]} files, server on port $PGTAP_PORT)"
	PGTAP_DATA=$WORK/pgtap_data
	sock=$WORK/pgtap_sock
	aa_new_dir "$sock"
	started=0
	if (cd "$WORK" && aa_initdb "$PGTAP_DATA"); then
		{
			echo
			echo "# test/run-all.sh: pgTAP server"
			cat "$WORK/test/access_audit.conf"
			echo "shared_preload_libraries = 'access_audit,pg_cron'"
			echo "cron.database_name = '$PGTAP_DB'"
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$sock'"
			echo "port = $PGTAP_PORT"
			echo "fsync = off"
		} >>"$PGTAP_DATA/postgresql.conf"
		if (cd "$WORK" && aa_pg_start "$PGTAP_DATA") &&
			(cd "$WORK" && aa_as_user "$AA_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
				-h "$sock" -p "$PGTAP_PORT" -U postgres -d postgres \
				-c "CREATE DATABASE $PGTAP_DB" &&
				aa_as_user "$AA_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
					-h "$sock" -p "$PGTAP_PORT" -U postgres -d "$PGTAP_DB" \
					-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION access_audit'); then
			started=1
		fi
	fi
	if [ "$started" = 1 ]; then
		(cd "$WORK" && aa_as_user env PATH="$AA_PGBIN:$PATH" pg_prove \
			-h "$sock" -p "$PGTAP_PORT" -U postgres -d "$PGTAP_DB" \
			"${PGTAP_FILES[@]}") 2>&1 | tee "$WORK/pgtap.log"
	else
		echo "could not set up the pgTAP server" | tee "$WORK/pgtap.log"
	fi
	if ! count_prove "$WORK/pgtap.log" "${PGTAP_FILES[@]}"; then
		DETAILS+=("tail:$PGTAP_DATA/server.log")
	fi
	aa_pg_stop "$PGTAP_DATA"
fi

# ---------------------------------------------------------------------------
# PostgreSQL's own regression suite, on a plain server and on one with
# access_audit preloaded and every table tagged (test/core-regress.sh): one
# unit, core_regress.
if selected core_regress; then
	aa_header "core regression suite (test/core-regress.sh)"
	AA_PGBIN=$AA_PGBIN AA_USER=$AA_USER AA_CORE_WORK=$WORK/core_regress \
		"$WORK/test/core-regress.sh" 2>&1 | tee "$WORK/core_regress.log"
	core_rc=${PIPESTATUS[0]}
	if [ "$core_rc" -eq 0 ]; then
		unit_ok
	elif [ "$core_rc" -eq 3 ]; then
		# the archive has no source of this major version's suite
		echo "core_regress skipped: no source of PostgreSQL's core suite for this version can be downloaded here"
	else
		unit_failed core_regress
		DETAILS+=("tail:$WORK/core_regress.log")
	fi
fi

summary_and_exit
