# shellcheck shell=bash disable=SC2034
# test/lib/common.sh: helpers shared by test/run-all.sh and demo.sh
#
# Sourced, not run.  Installs missing Debian packages, creates the non-root
# OS user that runs the servers (PostgreSQL refuses to run as root), runs
# commands as that user or as root, and starts/stops throwaway servers.
# Uses no sudo when running as root; as a normal user, root-only steps
# (apt-get, make install) use "sudo -n" if it works and fail clearly if not.

# The server to test: AA_PGBIN (its bin directory) or PG_CONFIG (its
# pg_config) picks it; without either, the host's PostgreSQL 15.  The major
# version (AA_PG_VERSION) is read from that pg_config.
AA_PG_DEFAULT_VERSION=15
if [ -z "${AA_PGBIN:-}" ] && [ -n "${PG_CONFIG:-}" ] && [ -x "$PG_CONFIG" ]; then
	AA_PGBIN=$("$PG_CONFIG" --bindir)
fi
: "${AA_PGBIN:=/usr/lib/postgresql/$AA_PG_DEFAULT_VERSION/bin}"
AA_PG_CONFIG=$AA_PGBIN/pg_config
: "${AA_USER:=aa_test}"

# aa_pg_major PG_CONFIG: the major version of that installation ("15")
aa_pg_major()
{
	"$1" --version 2>/dev/null | sed -En 's/^PostgreSQL ([0-9]+).*/\1/p'
}

# The major version; before the packages are installed, the one named in
# AA_PGBIN's path (/usr/lib/postgresql/NN/bin)
AA_PG_VERSION=$(aa_pg_major "$AA_PG_CONFIG")
if [ -z "$AA_PG_VERSION" ]; then
	AA_PG_VERSION=$(printf '%s' "$AA_PGBIN" | sed -En 's|.*/postgresql/([0-9]+)/bin/?$|\1|p')
	: "${AA_PG_VERSION:=$AA_PG_DEFAULT_VERSION}"
fi

# aa_test_packages VERSION: the Debian packages the test suites need for
# that PostgreSQL major version, one a line.  pg_bsd_indent (the format
# check) comes from pg-bsd-indent where Debian has it, and is optional
# elsewhere (see test/run-all.sh).
aa_test_packages()
{
	printf '%s\n' "postgresql-$1" "postgresql-server-dev-$1" "postgresql-$1-pgtap" \
		"postgresql-$1-cron" libtap-parser-sourcehandler-pgtap-perl libipc-run-perl \
		libkrb5-dev make gcc nodejs npm chromium fonts-dejavu-core
	if [ "$1" = "$AA_PG_DEFAULT_VERSION" ]; then
		echo pg-bsd-indent
	fi
}

# Debian packages the test suites need (test/run-all.sh, .ci/run).
mapfile -t AA_TEST_PACKAGES < <(aa_test_packages "$AA_PG_VERSION")

# Connection settings of the caller must not leak into our servers' clients.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS PGDATA

aa_say()
{
	printf '%s\n' "$*"
}

aa_header()
{
	printf '\n=== %s ===\n' "$*"
}

aa_die()
{
	printf 'error: %s\n' "$*" >&2
	exit 2
}

aa_is_root()
{
	[ "$(id -u)" = 0 ]
}

# aa_as_root CMD...: run CMD as root (directly, or through sudo -n)
aa_as_root()
{
	if aa_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		printf 'error: needs root: %s\n' "$*" >&2
		return 1
	fi
}

# aa_as_user CMD...: run CMD as the non-root server user (as root: runuser;
# otherwise the caller is already non-root and runs it directly)
aa_as_user()
{
	if aa_is_root; then
		runuser -u "$AA_USER" -- "$@"
	else
		"$@"
	fi
}

# aa_missing_packages PKG...: print the packages that are not installed.
# node and npm count as present when the commands exist (NodeSource's
# nodejs package ships npm and conflicts with Debian's npm package).
aa_missing_packages()
{
	local p
	for p in "$@"; do
		case $p in
			nodejs) command -v node >/dev/null 2>&1 || echo "$p" ;;
			npm) command -v npm >/dev/null 2>&1 || echo "$p" ;;
			*)
				dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null |
					grep -q '^ii' || echo "$p"
				;;
		esac
	done
}

# aa_ensure_packages PKG...: apt-get install whatever is missing; does not
# touch apt at all when everything is installed
aa_ensure_packages()
{
	local missing
	command -v dpkg-query >/dev/null 2>&1 || aa_die "not a Debian system (no dpkg-query)"
	missing=$(aa_missing_packages "$@" | tr '\n' ' ')
	missing=${missing% }
	if [ -z "$missing" ]; then
		aa_say "packages: all installed"
		return 0
	fi
	aa_say "packages: installing $missing"
	aa_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
		aa_die "apt-get update failed (run as root, or install: $missing)"
	# shellcheck disable=SC2086
	aa_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing </dev/null ||
		aa_die "apt-get install failed: $missing"
}

# aa_ensure_user: as root, create the non-root OS user that runs servers
aa_ensure_user()
{
	if ! aa_is_root; then
		AA_USER=$(id -un)
		return 0
	fi
	if ! id -u "$AA_USER" >/dev/null 2>&1; then
		aa_say "creating OS user $AA_USER (PostgreSQL refuses to run as root)"
		useradd --create-home --shell /bin/bash "$AA_USER" ||
			aa_die "could not create OS user $AA_USER"
	fi
}

# aa_new_dir PATH: (re)create an empty directory owned by the server user
aa_new_dir()
{
	rm -rf "$1"
	mkdir -p "$1"
	if aa_is_root; then
		chown "$AA_USER:" "$1"
	fi
	chmod 700 "$1"
}

# aa_initdb DATADIR: create a cluster (trust auth, no fsync, UTF8)
aa_initdb()
{
	aa_as_user "$AA_PGBIN/initdb" -D "$1" -A trust -U postgres -E UTF8 \
		--locale=C --no-sync >"$1.initdb.log" 2>&1 ||
		{
			cat "$1.initdb.log" >&2
			return 1
		}
}

# aa_pg_start DATADIR: start the cluster, log in DATADIR/server.log
aa_pg_start()
{
	aa_as_user "$AA_PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start >/dev/null ||
		{
			echo "server failed to start; end of $1/server.log:" >&2
			tail -n 30 "$1/server.log" >&2
			return 1
		}
}

# aa_pg_stop DATADIR: stop the cluster if it is running (fast, then immediate)
aa_pg_stop()
{
	[ -f "$1/postmaster.pid" ] || return 0
	aa_as_user "$AA_PGBIN/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		aa_as_user "$AA_PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1 ||
		true
}

# aa_stop_all_under DIR: stop every server whose data directory is below DIR
# (pg_regress, isolation and TAP instances left behind by an interrupted run)
aa_stop_all_under()
{
	local pidfile
	[ -d "$1" ] || return 0
	while IFS= read -r pidfile; do
		aa_pg_stop "$(dirname "$pidfile")"
	done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}
