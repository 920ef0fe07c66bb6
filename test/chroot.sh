#!/bin/bash
# test/chroot.sh: Debian root filesystems that carry other PostgreSQL major
# versions than the host's, for the test matrix (test/matrix.sh).
#
# Usage (as root):
#   test/chroot.sh VERSION ensure        create the chroot if it is missing or
#                                        broken (cached), print its directory
#   test/chroot.sh VERSION run CMD ARG.. run CMD as root inside the chroot
#   test/chroot.sh VERSION remove        delete the cached chroot
#   test/chroot.sh VERSION path          print the chroot's directory
#
# VERSION is a PostgreSQL major version with a Debian suite that carries it:
# 17 (trixie) or 18 (forky).  A chroot is made once with
# "debootstrap --variant=minbase" from the host's Debian mirror, gets the
# packages the test suites need (test/lib/common.sh: aa_test_packages, plus
# that version's pgaudit for the benchmark and deb-src lines for
# "apt-get source"), and is kept under AA_CHROOT_CACHE
# (/var/cache/access_audit/chroot-VERSION).  It is built in a scratch
# directory and renamed into place only when complete, so an interrupted
# build never looks usable; a chroot whose marker or pg_config is missing
# is rebuilt.
#
# "run" mounts /proc, /dev, /dev/pts and a fresh /dev/shm inside a private
# mount namespace (unshare), so the mounts exist only while CMD runs and
# vanish with it even if this script is killed; an EXIT trap unmounts them
# explicitly as well.  Nothing is left mounted on the host.
#
# Environment: AA_CHROOT_CACHE, AA_DEBIAN_MIRROR (default: the first
# deb.debian.org-style URI of the host's apt sources).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib/common.sh
. "$ROOT/test/lib/common.sh"

: "${AA_CHROOT_CACHE:=/var/cache/access_audit}"

usage()
{
	sed -n '4,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 2 ] || usage
VERSION=$1
ACTION=$2
shift 2

# UPGRADE_FROM: an older major version, installed too (from its own suite,
# at low priority) for the pg_upgrade and cross-version dump tests
UPGRADE_FROM=
UPGRADE_SUITE=
case $VERSION in
	17)
		SUITE=trixie
		UPGRADE_FROM=15
		UPGRADE_SUITE=bookworm
		;;
	18)
		SUITE=forky
		UPGRADE_FROM=17
		UPGRADE_SUITE=trixie
		;;
	*)
		aa_die "no Debian suite known to carry PostgreSQL $VERSION (known: 17, 18)"
		;;
esac
DIR=$AA_CHROOT_CACHE/chroot-$VERSION
MARKER=.access_audit-chroot

# host_mirror: the Debian mirror of this machine's apt sources
host_mirror()
{
	local uri
	if [ -n "${AA_DEBIAN_MIRROR:-}" ]; then
		echo "$AA_DEBIAN_MIRROR"
		return
	fi
	uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -Eo 'https?://[^ ]+/debian/?( |$)' | grep -v security |
		head -n 1 | tr -d ' ') || true
	echo "${uri:-http://deb.debian.org/debian}"
}

# chroot_packages: what the chroot needs beyond minbase
chroot_packages()
{
	aa_test_packages "$VERSION"
	echo "postgresql-$VERSION-pgaudit" passwd util-linux binutils \
		ca-certificates dpkg-dev procps python3 bzip2
	if [ -n "$UPGRADE_FROM" ]; then
		echo "postgresql-$UPGRADE_FROM" "postgresql-server-dev-$UPGRADE_FROM"
	fi
}

# write_apt_config DIR: the suite's sources (and the upgrade source's, at
# low priority so that it supplies only what the suite lacks)
write_apt_config()
{
	local dir=$1 mirror
	mirror=$(host_mirror)
	cat >"$dir/etc/apt/sources.list" <<-EOF
		deb $mirror $SUITE main
		deb-src $mirror $SUITE main
	EOF
	rm -f "$dir/etc/apt/sources.list.d/debian.sources"
	if [ -n "$UPGRADE_SUITE" ]; then
		echo "deb $mirror $UPGRADE_SUITE main" >"$dir/etc/apt/sources.list.d/$UPGRADE_SUITE.list"
		cat >"$dir/etc/apt/preferences.d/$UPGRADE_SUITE" <<-EOF
			Package: *
			Pin: release n=$UPGRADE_SUITE
			Pin-Priority: 100
		EOF
	fi
	# the archive's copy of forky may carry an expired Valid-Until
	echo 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/99access-audit"
}

# install_packages DIR LOG: apt-get install the packages into DIR
install_packages()
{
	local dir=$1 log=$2 pkgs
	pkgs=$(chroot_packages | tr '\n' ' ')
	aa_say "chroot $VERSION: installing $pkgs"
	# shellcheck disable=SC2086
	if ! in_namespace "$dir" chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $pkgs" \
		>>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		return 1
	fi
	chroot "$dir" apt-get clean
	printf '%s' "$pkgs" >"$dir/$MARKER"
}

# is_mounted_below DIR: true if anything is mounted at or below DIR
is_mounted_below()
{
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts
}

# chroot_ok: the cached chroot was completed and its server tools run
chroot_ok()
{
	[ -f "$DIR/$MARKER" ] &&
		chroot "$DIR" "/usr/lib/postgresql/$VERSION/bin/pg_config" --version >/dev/null 2>&1
}

# chroot_current: it has every package chroot_packages names now
chroot_current()
{
	[ "$(cat "$DIR/$MARKER")" = "$(chroot_packages | tr '\n' ' ')" ]
}

# in_namespace DIR CMD...: run CMD (a host command) in a private mount
# namespace with /proc, /dev, /dev/pts and /dev/shm mounted into DIR
in_namespace()
{
	local dir=$1
	shift
	# shellcheck disable=SC2016  # expanded by the inner shell
	unshare --mount --propagation private -- \
		bash -c '
			set -e
			d=$1
			shift
			undo() {
				for m in dev/shm dev/pts dev proc; do
					umount -l "$d/$m" 2>/dev/null || true
				done
			}
			trap undo EXIT
			mkdir -p "$d/proc" "$d/dev"
			mount -t proc proc "$d/proc"
			mount --bind /dev "$d/dev"
			mount --bind /dev/pts "$d/dev/pts"
			mount -t tmpfs -o mode=1777,nosuid,nodev shm "$d/dev/shm"
			"$@"
		' in_namespace "$dir" "$@"
}

# sync_host_trust DIR: the chroot trusts the certificate authorities this
# host added locally (a TLS-inspecting egress proxy, for example), so that
# apt, npm and the core suite's downloads work the same inside; cheap when
# nothing changed
sync_host_trust()
{
	local dir=$1 f changed=0
	[ -d /usr/local/share/ca-certificates ] || return 0
	mkdir -p "$dir/usr/local/share/ca-certificates"
	for f in /usr/local/share/ca-certificates/*.crt; do
		[ -f "$f" ] || continue
		if ! cmp -s "$f" "$dir/usr/local/share/ca-certificates/${f##*/}"; then
			cp "$f" "$dir/usr/local/share/ca-certificates/"
			changed=1
		fi
	done
	if [ "$changed" = 1 ] && [ -x "$dir/usr/sbin/update-ca-certificates" ]; then
		chroot "$dir" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || true
	fi
}

# build: debootstrap into a scratch directory, install the packages, then
# move it into place
build()
{
	local tmp mirror pkgs script
	aa_ensure_packages debootstrap
	mirror=$(host_mirror)
	tmp=$DIR.build.$$
	is_mounted_below "$tmp" && aa_die "$tmp has mounts; not removing it"
	rm -rf "$tmp"
	mkdir -p "$AA_CHROOT_CACHE"
	# Debian 12's debootstrap has no script for forky; sid's fits both
	script=/usr/share/debootstrap/scripts/$SUITE
	[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
	aa_say "chroot $VERSION: debootstrap $SUITE from $mirror into $tmp"
	if ! debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" "$script" \
		>"$tmp.log" 2>&1; then
		tail -n 30 "$tmp.log" >&2
		aa_die "debootstrap failed (log: $tmp.log)"
	fi
	write_apt_config "$tmp"
	# no documentation: smaller and faster
	cat >"$tmp/etc/dpkg/dpkg.cfg.d/01access-audit-nodoc" <<-'EOF'
		path-exclude=/usr/share/doc/*
		path-exclude=/usr/share/man/*
		path-exclude=/usr/share/info/*
	EOF
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	sync_host_trust "$tmp"
	install_packages "$tmp" "$tmp.log" ||
		aa_die "package installation in the $VERSION chroot failed (log: $tmp.log)"
	if [ -e "$DIR" ]; then
		is_mounted_below "$DIR" && aa_die "$DIR has mounts; not replacing it"
		rm -rf "$DIR"
	fi
	mv "$tmp" "$DIR"
	mv "$tmp.log" "$DIR.log"
	aa_say "chroot $VERSION: ready in $DIR"
}

aa_is_root || aa_die "test/chroot.sh needs root (debootstrap, chroot, mount)"

# one builder or user per chroot at a time
mkdir -p "$AA_CHROOT_CACHE"
exec 9>"$AA_CHROOT_CACHE/chroot-$VERSION.lock"
flock 9

case $ACTION in
	path)
		echo "$DIR"
		;;
	ensure)
		if ! chroot_ok; then
			[ -e "$DIR" ] && aa_say "chroot $VERSION: $DIR is incomplete or broken; rebuilding" >&2
			build >&2
		elif ! chroot_current; then
			aa_say "chroot $VERSION: adding the packages it lacks" >&2
			write_apt_config "$DIR"
			cp /etc/resolv.conf "$DIR/etc/resolv.conf"
			if ! install_packages "$DIR" "$DIR.log" >&2; then
				aa_say "chroot $VERSION: could not add them; rebuilding" >&2
				build >&2
			fi
		fi
		echo "$DIR"
		;;
	run)
		[ $# -ge 1 ] || usage
		chroot_ok || aa_die "no usable chroot for $VERSION; run: $0 $VERSION ensure"
		cp /etc/resolv.conf "$DIR/etc/resolv.conf"
		sync_host_trust "$DIR"
		# node's own CA list lacks locally added authorities
		in_namespace "$DIR" chroot "$DIR" env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			TERM="${TERM:-dumb}" \
			NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$@"
		;;
	remove)
		is_mounted_below "$DIR" && aa_die "$DIR has mounts; not removing it"
		rm -rf "$DIR" "$DIR.log"
		;;
	*)
		usage
		;;
esac
