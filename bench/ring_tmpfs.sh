#!/bin/bash
# bench/ring_tmpfs.sh: does the queue file's filesystem matter?  Compares the
# ring file on the data directory's filesystem (ext4 here) with the same file
# on tmpfs (pg_access_audit a symlink to a directory under /dev/shm), under
# workload 1, interleaved over rounds: server CPU and minor page faults per
# statement (all server processes, writer included, from /proc).
# Run as root, after (not during) bench/run.sh: both use /tmp/aa_bench.
#   bench/ring_tmpfs.sh [-T seconds] [-r rounds] [-n rows]   (defaults 10, 3, 1000000)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
T=10 ROUNDS=3 ROWS=1000000
while getopts "T:r:n:" o; do
	case $o in T) T=$OPTARG ;; r) ROUNDS=$OPTARG ;; n) ROWS=$OPTARG ;; *) exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
D=/tmp/aa_bench/ring
SOCK=/tmp/aa_bench/ringsock
SHM=/dev/shm/aa_bench_ring
PORT=54356
. "$REPO/bench/lib.sh"
q() { as "$PGBIN/psql -X -q -h $SOCK -p $PORT -d bench -tAc \"$*\""; }
mkdir -p /tmp/aa_bench
chown "$RUNAS" /tmp/aa_bench && chmod 755 /tmp/aa_bench
[ -f $D/postmaster.pid ] && as "$PGBIN/pg_ctl -D $D -m immediate stop" >/dev/null 2>&1 || true
rm -rf $D $SOCK $SHM
mkdir -p $SOCK
chown "$RUNAS" $SOCK
cp "$REPO/bench/w1.sql" /tmp/aa_bench/ring_w1.sql
chmod 644 /tmp/aa_bench/ring_w1.sql
trap 'as "$PGBIN/pg_ctl -D $D -m fast stop" >/dev/null 2>&1 || true; rm -rf $D $SOCK $SHM' EXIT

bench_initdb $D $SOCK $PORT access_audit
as "$PGBIN/pg_ctl -D $D -l /tmp/aa_bench/ring.log -w start" >/dev/null
bench_load_customers $SOCK $PORT "$ROWS" tag
as "$PGBIN/pg_ctl -D $D -w -m fast stop" >/dev/null

# sum of fields over the postmaster (reaped children included) and live children
proc_sum() {
	local pm
	pm=$(head -1 $D/postmaster.pid)
	for p in $pm $(ps --ppid "$pm" -o pid=); do cat "/proc/$p/stat" 2>/dev/null || true; done |
		awk '{cpu += $14 + $15 + $16 + $17; flt += $10 + $11} END {print cpu, flt}'
}
TCK=$(getconf CLK_TCK)
printf '%-6s %-6s %10s %12s %14s\n' round ring tps cpu_us/stmt minflt/stmt
for r in $(seq 1 "$ROUNDS"); do
	for ring in ext4 tmpfs; do
		# the ring is empty after a clean stop: moving the directory loses nothing
		rm -rf $D/pg_access_audit $SHM
		if [ $ring = tmpfs ]; then
			mkdir -p $SHM && chown "$RUNAS" $SHM && chmod 700 $SHM
			ln -s $SHM $D/pg_access_audit && chown -h "$RUNAS" $D/pg_access_audit
		fi
		as "$PGBIN/pg_ctl -D $D -l /tmp/aa_bench/ring.log -w start" >/dev/null
		q "SELECT count(*) FROM customers" >/dev/null
		as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T 2 -f /tmp/aa_bench/ring_w1.sql bench" >/dev/null 2>&1
		q "SELECT access_audit.flush('60 s')" >/dev/null
		q "CHECKPOINT" >/dev/null
		read -r c0 f0 <<<"$(proc_sum)"
		out=$(as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f /tmp/aa_bench/ring_w1.sql bench" 2>&1)
		q "SELECT access_audit.flush('60 s')" >/dev/null
		sleep 0.5
		read -r c1 f1 <<<"$(proc_sum)"
		n=$(echo "$out" | awk '/actually processed/ {split($0,a,": "); split(a[2],b,"/"); print b[1]}')
		tps=$(echo "$out" | awk '/^tps = / {print $3}')
		awk -v r="$r" -v g=$ring -v t="$tps" -v n="$n" -v c=$((c1 - c0)) -v f=$((f1 - f0)) -v k="$TCK" \
			'BEGIN{printf "%-6s %-6s %10.0f %12.2f %14.3f\n", r, g, t, c * 1e6 / k / n, f / n}'
		as "$PGBIN/pg_ctl -D $D -w -m fast stop" >/dev/null
	done
done
