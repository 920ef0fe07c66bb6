#!/bin/bash
# test/core-regress.sh: PostgreSQL's own regression suite as a test of
# access_audit.
#
# Runs the core suite (src/test/regress of the installed server's source,
# parallel schedule, pg_regress against running servers) twice:
#   plain    a server without access_audit
#   audited  the same settings plus shared_preload_libraries = 'access_audit',
#            the extension created in template0 and template1 (pg_regress
#            creates "regression" from template0), and an event trigger
#            there that tags every new table (CREATE SCHEMA ... CREATE TABLE,
#            CREATE TABLE AS, partitions and temporary tables included)
# and fails on
#   - a crash of either server (or a PANIC or assertion failure),
#   - an ERROR, WARNING or FATAL of access_audit's making in the audited
#     server's log (raised in the extension's C files, or naming access_audit
#     or the tagging trigger),
#   - any test whose output differs between the two runs, except changed
#     lines allowed by test/core-regress.allow (each entry gives its reason),
#   - an audit log of the regression database that does not verify.
# It prints the record counts of the regression database at the end.
#
# The server is AA_PGBIN's (or PG_CONFIG's bindir); any major version.  The
# matching source comes from the Debian archive (a deb-src entry mirroring
# the system's deb entries is added, then "apt-get source postgresql-NN",
# the installed version first, else the newest available: the archive may
# lag the installed minor), cached in AA_CORE_CACHE
# (/var/cache/access_audit/core-regress).  Only src/test/regress is kept.
# The suite's own test module (regress.so) is built with PGXS.
#
# Needs: the access_audit build installed into AA_PGBIN's installation, the
# server headers (postgresql-server-dev-NN), make, gcc, perl; root for the
# first download (it installs bzip2 if missing).  Servers run as OS user AA_USER (aa_test),
# listen on Unix sockets in the work directory only.
#
# Environment: AA_PGBIN or PG_CONFIG, AA_USER, AA_CORE_CACHE, AA_CORE_WORK
# (work directory; default a new /tmp/aa_core_regress.*, removed on success
# unless AA_KEEP_WORK=1), AA_CORE_TIMEOUT (seconds per suite run, 1800).
#
# Exit status: 0 passed, 3 skipped (the archive serves no source of this
# major version's suite), anything else failed.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${AA_PGBIN:-}" ] && [ -n "${PG_CONFIG:-}" ]; then
	AA_PGBIN=$("$PG_CONFIG" --bindir) || exit 2
fi
# shellcheck source=test/lib/common.sh
. "$ROOT/test/lib/common.sh"

CACHE=${AA_CORE_CACHE:-/var/cache/access_audit/core-regress}
TIMEOUT=${AA_CORE_TIMEOUT:-1800}
ALLOW=$ROOT/test/core-regress.allow
WORK=${AA_CORE_WORK:-}
FAILED=0
DATADIRS=()

fail()
{
	echo "FAIL: $*"
	FAILED=1
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
	local rc=$? d
	for d in "${DATADIRS[@]}"; do
		aa_pg_stop "$d"
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -eq 0 ] && [ -z "${AA_KEEP_WORK:-}" ]; then
			# a work directory given by the caller is the caller's to remove
			[ -n "${AA_CORE_WORK:-}" ] || rm -rf "$WORK"
		else
			echo "work directory kept: $WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

[ -x "$AA_PG_CONFIG" ] || aa_die "no pg_config in $AA_PGBIN (set AA_PGBIN or PG_CONFIG)"
aa_ensure_user

# "PostgreSQL 15.20 (Debian 15.20-0+deb12u1)"
PG_VERSION_STRING=$("$AA_PG_CONFIG" --version)
UPSTREAM=$(printf '%s\n' "$PG_VERSION_STRING" | awk '{ print $2 }')
MAJOR=${UPSTREAM%%.*}
MAJOR=${MAJOR%%[!0-9]*}
DEBVERSION=$(printf '%s\n' "$PG_VERSION_STRING" | sed -n 's/.*(Debian \([^)]*\)).*/\1/p')
PKGLIBDIR=$("$AA_PG_CONFIG" --pkglibdir)
PGXS_REGRESS=$(dirname "$("$AA_PG_CONFIG" --pgxs)")/../test/regress/pg_regress
[ -n "$MAJOR" ] || aa_die "cannot tell the server's major version from \"$PG_VERSION_STRING\""
[ -x "$PGXS_REGRESS" ] || aa_die "no pg_regress at $PGXS_REGRESS (install postgresql-server-dev-$MAJOR)"
[ -f "$PKGLIBDIR/access_audit.so" ] || aa_die "access_audit is not installed in $PKGLIBDIR"

# ---------------------------------------------------------------------------
# The source of the core suite

# cached_source: print the cached regress directory for this major version,
# the installed upstream version if cached, else the newest cached one
cached_source()
{
	local d
	if [ -f "$CACHE/postgresql-$UPSTREAM/src/test/regress/parallel_schedule" ]; then
		echo "$CACHE/postgresql-$UPSTREAM/src/test/regress"
		return 0
	fi
	d=$(find "$CACHE" -maxdepth 1 -type d -name "postgresql-$MAJOR.*" 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -f "$d/src/test/regress/parallel_schedule" ]; then
		echo "$d/src/test/regress"
		return 0
	fi
	return 1
}

# add_deb_src: add deb-src entries mirroring the system's deb entries
add_deb_src()
{
	local f out
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		case $f in */access_audit-src-*) continue ;; esac
		grep -Eq '^Types:.*\bdeb\b' "$f" || continue
		out=/etc/apt/sources.list.d/access_audit-src-$(basename "$f")
		{
			echo "# deb-src entries for test/core-regress.sh, from $f"
			sed -E 's/^Types:.*$/Types: deb-src/' "$f"
		} >"$out"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		case $f in */access_audit-src-*) continue ;; esac
		grep -Eq '^deb[[:space:]]' "$f" || continue
		out=/etc/apt/sources.list.d/access_audit-src-$(basename "$f")
		{
			echo "# deb-src entries for test/core-regress.sh, from $f"
			sed -nE 's/^deb([[:space:]])/deb-src\1/p' "$f"
		} >"$out"
	done
}

# apt_update: apt-get update, waiting for another apt to finish
apt_update()
{
	local i
	for i in 1 2 3 4 5 6; do
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >/dev/null 2>&1 && return 0
		sleep $((i * 5))
	done
	DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
}

# fetch_source: download and cache src/test/regress of the installed
# version, else of the newest version of postgresql-MAJOR the archive has
fetch_source()
{
	local pkg=postgresql-$MAJOR versions v tmp orig up
	aa_is_root || aa_die "the core suite's source is not cached in $CACHE; run this script once as root"
	mkdir -p "$CACHE"
	# the upstream tarballs are bzip2-compressed
	aa_ensure_packages bzip2
	if ! apt-cache showsrc "$pkg" 2>/dev/null | grep -q '^Version:'; then
		echo "adding deb-src entries and updating the package lists"
		add_deb_src
		apt_update || aa_die "apt-get update failed"
	fi
	versions=$(apt-cache showsrc "$pkg" 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -u | sort -rV)
	[ -n "$versions" ] || aa_die "the archive has no source package $pkg"
	if [ -n "$DEBVERSION" ] && printf '%s\n' "$versions" | grep -qxF "$DEBVERSION"; then
		versions=$(printf '%s\n%s\n' "$DEBVERSION" "$versions" | awk '!seen[$0]++')
	fi
	tmp=$(mktemp -d "$CACHE/download.XXXXXX") || return 1
	chmod 755 "$tmp"
	for v in $versions; do
		echo "fetching source $pkg=$v"
		rm -rf "${tmp:?}"/*
		if (cd "$tmp" && apt-get source --download-only -q "$pkg=$v" </dev/null >"$tmp.log" 2>&1); then
			orig=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.orig.tar.*" | head -n 1)
			[ -n "$orig" ] || continue
			up=$(basename "$orig")
			up=${up#"${pkg}_"}
			up=${up%.orig.tar.*}
			mkdir -p "$tmp/x"
			if tar -C "$tmp/x" -xf "$orig" --wildcards '*/src/test/regress/*' &&
				[ -f "$tmp/x/postgresql-$up/src/test/regress/parallel_schedule" ]; then
				rm -rf "$CACHE/postgresql-$up"
				mkdir -p "$CACHE/postgresql-$up/src/test"
				mv "$tmp/x/postgresql-$up/src/test/regress" "$CACHE/postgresql-$up/src/test/"
				rm -rf "$tmp" "$tmp.log"
				[ "$up" = "$UPSTREAM" ] ||
					echo "note: the archive's source is $up, the server is $UPSTREAM"
				return 0
			fi
		fi
		tail -n 3 "$tmp.log"
	done
	rm -rf "$tmp" "$tmp.log"
	# a resource this machine lacks, not a failure of the extension: say so
	# and exit 3, which run-all.sh reports as a skipped unit
	echo "skipped: the Debian archive reachable here lists $pkg source versions ($versions) but serves none of them"
	exit 3
}

aa_header "source of the core suite"
SRC=$(cached_source)
if [ -z "$SRC" ]; then
	mkdir -p "$CACHE" 2>/dev/null
	(
		flock 9
		cached_source >/dev/null || fetch_source
	) 9>"$CACHE/.lock"
	rc=$?
	[ "$rc" -eq 0 ] || exit "$rc"   # 3: no source to be had (skipped)
	SRC=$(cached_source) || aa_die "no source in $CACHE"
fi
echo "server $UPSTREAM ($PG_VERSION_STRING), suite from $SRC"

# ---------------------------------------------------------------------------
# The work directory: a copy of the suite, its test module, a psql wrapper

if [ -z "$WORK" ]; then
	WORK=$(mktemp -d /tmp/aa_core_regress.XXXXXX) || aa_die "mktemp failed"
fi
mkdir -p "$WORK"
chmod 755 "$WORK"
rm -rf "${WORK:?}/regress" "${WORK:?}/lib" "${WORK:?}/bin"
cp -r "$SRC" "$WORK/regress"
mkdir -p "$WORK/lib" "$WORK/bin"

# psql of 15.19 and later skips the in-line data after a COPY ... FROM
# STDIN that fails at once, up to a "\." line; older test files have no
# such line after those statements, so the rest of the file would be
# swallowed.  Add the "\." where the expected output shows that the COPY
# failed and the next line of the file ran as SQL.
perl - "$WORK/regress" <<'PERL' || aa_die "could not adjust the COPY statements"
use strict;
use warnings;
my $dir = shift;
my ($files, $stmts) = (0, 0);
for my $sql (glob("$dir/sql/*.sql"))
{
	(my $name = $sql) =~ s{.*/(.*)\.sql$}{$1};
	my $out = "$dir/expected/$name.out";
	next unless -f $out;
	open(my $fh, '<', $sql) or die "$sql: $!";
	my @s = <$fh>;
	close $fh;
	open($fh, '<', $out) or die "$out: $!";
	my @e = <$fh>;
	close $fh;
	chomp(@s, @e);
	my ($pos, $changed, @new) = (0, 0);
	for (my $i = 0; $i < @s; $i++)
	{
		push @new, $s[$i];
		next unless $s[$i] =~ /^\s*copy\b/i;
		my $k = $i;
		$k++ while $k < $#s && $s[$k] !~ /;\s*(--.*)?$/;
		my $stmt = join(' ', @s[$i .. $k]);
		next unless $stmt =~ /\bfrom\s+stdin\b/i;
		push @new, @s[$i + 1 .. $k];
		$i = $k;
		# psql echoes every line but empty ones (and COPY data)
		my $n = $k + 1;
		$n++ while $n <= $#s && $s[$n] eq '';
		next if $n > $#s || $s[$k + 1] eq '\\.';
		my $j = $pos;
		$j++ while $j < @e && $e[$j] ne $s[$k];
		next if $j >= @e;
		$pos = $j + 1;
		my ($m, $errors) = ($j + 1, 0);
		while ($m < @e && $e[$m] =~ /^(ERROR|DETAIL|HINT|CONTEXT|WARNING|NOTICE|LINE \d+):|^\s+\^\s*$/)
		{
			$errors++ if $e[$m] =~ /^ERROR:/;
			$m++;
		}
		if ($errors && $m < @e && $e[$m] eq $s[$n])
		{
			push @new, '\\.';
			$changed++;
		}
	}
	next unless $changed;
	open($fh, '>', $sql) or die "$sql: $!";
	print $fh map { "$_\n" } @new;
	close $fh;
	$files++;
	$stmts += $changed;
}
print "added \"\\.\" after $stmts failing COPY FROM STDIN statements in $files files\n";
PERL

# the suite's C functions (regress.so); autoinc and refint come with the server
cat >"$WORK/regress/Makefile.aa" <<EOF
MODULES = regress
PG_CONFIG = $AA_PG_CONFIG
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
include \$(PGXS)
EOF
if aa_is_root; then
	chown -R "$AA_USER:" "$WORK"
fi
if ! (cd "$WORK/regress" && aa_as_user make -s -f Makefile.aa >"$WORK/regress-module.log" 2>&1); then
	cat "$WORK/regress-module.log"
	aa_die "could not build the suite's regress module"
fi
dlsuffix=.so
cp "$WORK/regress/regress$dlsuffix" "$WORK/lib/"
for m in autoinc refint; do
	[ -f "$PKGLIBDIR/$m$dlsuffix" ] && ln -sf "$PKGLIBDIR/$m$dlsuffix" "$WORK/lib/$m$dlsuffix"
done

# pg_regress runs psql from --bindir: wait for the server first, so that
# after a crash the next tests run against the restarted server instead of
# failing to connect
cat >"$WORK/bin/psql" <<EOF
#!/bin/sh
"$AA_PGBIN/pg_isready" -q -t 120 >/dev/null 2>&1
exec "$AA_PGBIN/psql" "\$@"
EOF
chmod 755 "$WORK/bin/psql"
if aa_is_root; then
	chown -R "$AA_USER:" "$WORK"
fi

# ---------------------------------------------------------------------------
# Servers

# start_server NAME PORT [EXTRA-CONF]: a fresh cluster in $WORK/NAME
start_server()
{
	local name=$1 port=$2 extra=${3:-} data=$WORK/$1/data sock=$WORK/$1/sock
	aa_new_dir "$WORK/$name"
	aa_new_dir "$sock"
	chmod 755 "$WORK/$name"
	(cd "$WORK" && aa_initdb "$data") || return 1
	cat >>"$data/postgresql.conf" <<EOF

# test/core-regress.sh ($name)
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
fsync = off
compute_query_id = regress
max_worker_processes = 16
log_error_verbosity = verbose
log_line_prefix = '%m [%p] %d '
log_min_messages = warning
$extra
EOF
	DATADIRS+=("$data")
	(cd "$WORK" && aa_pg_start "$data")
}

# sql NAME DB SQL...: run SQL on server NAME as the bootstrap superuser
sql()
{
	local name=$1 db=$2
	shift 2
	local args=() s
	for s in "$@"; do
		args+=(-c "$s")
	done
	(cd "$WORK" && aa_as_user "$AA_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h "$WORK/$name/sock" -p "$(cat "$WORK/$name/port")" -U postgres -d "$db" "${args[@]}")
}

# The tagging trigger: every table, partitioned table, materialized view and
# foreign table a statement creates, also inside CREATE SCHEMA (whose
# elements are reported with their own command tags)
TAG_SETUP=$(
	cat <<'EOF'
CREATE EXTENSION access_audit;
CREATE SCHEMA aa_core_regress;
CREATE FUNCTION aa_core_regress.tag_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT DISTINCT c.objid, k.relkind
		  FROM pg_catalog.pg_event_trigger_ddl_commands() c
		  JOIN pg_catalog.pg_class k ON k.oid = c.objid
		 WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND c.objsubid = 0
		   AND c.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO',
								 'CREATE MATERIALIZED VIEW', 'CREATE FOREIGN TABLE')
		   AND k.relkind IN ('r', 'p', 'm', 'f')
	LOOP
		EXECUTE pg_catalog.format('SECURITY LABEL FOR access_audit ON %s %s IS %L',
								  CASE r.relkind WHEN 'm' THEN 'MATERIALIZED VIEW'
									  WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
								  r.objid::pg_catalog.regclass, 'core_regress');
	END LOOP;
END
$$;
CREATE EVENT TRIGGER aa_core_regress_tag ON ddl_command_end
	EXECUTE FUNCTION aa_core_regress.tag_new_tables();
EOF
)

setup_audited()
{
	local name=$1
	sql "$name" template1 "$TAG_SETUP" &&
		sql "$name" postgres "ALTER DATABASE template0 ALLOW_CONNECTIONS true" &&
		sql "$name" template0 "$TAG_SETUP" &&
		sql "$name" template0 "VACUUM FREEZE" &&
		sql "$name" postgres "ALTER DATABASE template0 ALLOW_CONNECTIONS false"
}

# run_suite NAME: the parallel schedule against server NAME
run_suite()
{
	local name=$1 rc
	aa_new_dir "$WORK/out_$name"
	chmod 755 "$WORK/out_$name"
	echo "running the core suite against the $name server"
	(cd "$WORK/regress" && aa_as_user timeout "$TIMEOUT" "$PGXS_REGRESS" \
		--inputdir="$WORK/regress" --outputdir="$WORK/out_$name" \
		--bindir="$WORK/bin" --dlpath="$WORK/lib" \
		--schedule="$WORK/regress/parallel_schedule" \
		--host="$WORK/$name/sock" --port="$(cat "$WORK/$name/port")" \
		--user=postgres) >"$WORK/out_$name.log" 2>&1
	rc=$?
	[ "$rc" -eq 124 ] && fail "the core suite timed out on the $name server"
	grep -E 'tests (passed|failed)|failed \(ignored\)|^# ' "$WORK/out_$name.log" | tail -n 3
	return 0
}

aa_header "plain server"
PORT_BASE=${AA_CORE_PORT:-54960}
start_server plain "$PORT_BASE" || aa_die "the plain server did not start"
echo "$PORT_BASE" >"$WORK/plain/port"
run_suite plain
aa_pg_stop "$WORK/plain/data"

aa_header "audited server (access_audit preloaded, every new table tagged)"
start_server audited $((PORT_BASE + 1)) "shared_preload_libraries = 'access_audit'" ||
	aa_die "the audited server did not start"
echo $((PORT_BASE + 1)) >"$WORK/audited/port"
setup_audited audited || aa_die "could not set up the audited server's templates"
run_suite audited

# ---------------------------------------------------------------------------
# Verdicts

aa_header "crashes"
for name in plain audited; do
	if grep -E 'terminated by signal|exited with exit code [2-9]|was terminated by exception|PANIC:|TRAP:' \
		"$WORK/$name/data/server.log" >"$WORK/$name.crashes"; then
		fail "the $name server crashed:"
		cat "$WORK/$name.crashes"
	fi
done
[ "$FAILED" -eq 0 ] && echo "none"

aa_header "differences between the plain and the audited run"
perl - "$WORK/out_plain/results" "$WORK/out_audited/results" "$ALLOW" \
	"$WORK/audited/data/server.log" "$ROOT/extension" <<'PERL' || FAILED=1
use strict;
use warnings;
my ($plain, $audited, $allowfile, $log, $extdir) = @ARGV;
my $bad = 0;

# allow-list: "NAME /REGEX/ REASON"; NAME "log" is for server log entries
my (%allow, @logallow);
open(my $fh, '<', $allowfile) or die "$allowfile: $!";
while (<$fh>)
{
	next if /^\s*(#|$)/;
	/^(\S+)\s+\/(.*?)\/\s+(\S.*)$/ or die "$allowfile:$.: expected NAME /REGEX/ REASON\n";
	if ($1 eq 'log') { push @logallow, qr/$2/; }
	else { push @{ $allow{$1} }, qr/$2/; }
}
close $fh;

my %names;
$names{$_} = 1 for map { m{([^/]+)\.out$} } glob("$plain/*.out"), glob("$audited/*.out");
my ($same, $allowed, $differ) = (0, 0, 0);
for my $t (sort keys %names)
{
	my ($a, $b) = ("$plain/$t.out", "$audited/$t.out");
	if (!-f $a || !-f $b)
	{
		print "$t: output missing from the ", (-f $a ? 'audited' : 'plain'), " run\n";
		$bad = 1;
		$differ++;
		next;
	}
	my @d = `diff -U2 '$a' '$b'`;
	if (!@d) { $same++; next; }
	my @changed = grep { /^[-+]/ && !/^(---|\+\+\+) / } @d;
	my @left = grep {
		my $l = substr($_, 1);
		!grep { $l =~ $_ } @{ $allow{$t} || [] }
	} @changed;
	if (!@left) { $allowed++; next; }
	$differ++;
	$bad = 1;
	print "$t: output differs (", scalar(@left), " lines not allowed):\n";
	print @d > 80 ? (@d[0 .. 79], "... (" . (@d - 80) . " more lines)\n") : @d;
}
print "$same outputs identical, $allowed differ as allowed, $differ differ\n";

# the extension's own ERROR/WARNING/FATAL entries in the audited server's log
my %ourfiles;
for my $c (glob("$extdir/*.c"))
{
	(my $f = $c) =~ s{.*/}{};
	open(my $cf, '<', $c) or die "$c: $!";
	my %funcs;
	while (<$cf>) { $funcs{$1} = 1 if /^([a-zA-Z_]\w*)\(/; }
	close $cf;
	$ourfiles{$f} = \%funcs;
}
open($fh, '<', $log) or die "$log: $!";
my (@entries, $cur);
while (my $l = <$fh>)
{
	if ($l =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] \S* ?(\w+):  /)
	{
		my $kind = $1;
		if ($kind =~ /^(DETAIL|HINT|CONTEXT|LOCATION|STATEMENT|QUERY)$/ && $cur)
		{
			$cur->{text} .= $l;
			next;
		}
		$cur = { kind => $kind, text => $l };
		push @entries, $cur;
	}
	elsif ($cur)
	{
		$cur->{text} .= $l;
	}
}
close $fh;
my ($ours, $oursallowed) = (0, 0);
for my $e (@entries)
{
	next unless $e->{kind} =~ /^(ERROR|WARNING|FATAL|PANIC)$/;
	my $t = $e->{text};
	(my $nostmt = $t) =~ s/^[^\n]*\bSTATEMENT:  .*\z//ms;
	my $mine = $nostmt =~ /access_audit|aa_core_regress/;
	if (!$mine && $t =~ /LOCATION:  (\w+), (\w+\.c):\d+/)
	{
		$mine = 1 if $ourfiles{$2} && $ourfiles{$2}{$1};
	}
	next unless $mine;
	if (grep { $nostmt =~ $_ } @logallow) { $oursallowed++; next; }
	$ours++;
	$bad = 1;
	print "server log: access_audit $e->{kind}:\n$t";
}
print "server log: $ours access_audit errors or warnings, $oursallowed as allowed\n";
exit $bad;
PERL

aa_header "audit log of the regression database"
if sql audited regression "SELECT access_audit.flush()" >/dev/null; then
	verify=$(sql audited regression "SELECT ok || ' ' || checked || ' ' || coalesce(detail, '') FROM access_audit.verify()")
	echo "verify(): $verify"
	case $verify in
		true\ *) ;;
		*) fail "the audit log of the regression database does not verify" ;;
	esac
	sql audited regression "SELECT count(*) || ' records from ' || count(DISTINCT backend_pid) || ' backends' FROM access_audit.log"
	sql audited regression "SELECT format('%-28s %s', command, count(*)) FROM access_audit.log GROUP BY command ORDER BY count(*) DESC, command"
else
	fail "could not flush the audit log of the regression database"
fi
aa_pg_stop "$WORK/audited/data"

echo
if [ "$FAILED" -ne 0 ]; then
	echo "core regression suite: FAILED (work directory $WORK)"
	exit 1
fi
echo "core regression suite: ok"
exit 0
