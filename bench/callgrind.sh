#!/bin/bash
# bench/callgrind.sh: instructions per statement (backend) and per record
# (writer), counted by valgrind's callgrind: repeatable on a busy machine,
# unlike tps or CPU time.
#
# One data directory ($BASE/data, port $PORT) with `customers` ($ROWS rows,
# full_name and phone tagged).  For each configuration (base: nothing
# preloaded; aa: access_audit without quotas; aaq: access_audit with a day
# quota and a statement quota on the reading actor, both far from their
# limits, so every read is counted and checked; rows: access_audit with row
# identities of customers, access_audit.track_rows) and workload, the whole server runs under
# callgrind twice, once with N1 and once with N2 statements of one pgbench
# client (-M prepared); (I(N2) - I(N1)) / (N2 - N1) cancels connection start
# and exit.  The writer's instructions are taken the same way, per record.
# Per-function inclusive costs of the N2 run go to $OUT/*.annotate.
#
# Run as root:
#   PGBIN=/opt/pgB/usr/lib/postgresql/15/bin bench/callgrind.sh [-w "w1 w2 w3"] [-c "base aa aaq"]
# Env: BASE (default /tmp/aa_cg), PORT (55710), ROWS (1000000), N1 (500), N2 (2500),
#      OUT (default $BASE/out-<timestamp>), SETUP=0 to reuse an existing $BASE/data.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
BASE=${BASE:-/tmp/aa_cg}
PORT=${PORT:-55710}
ROWS=${ROWS:-1000000}
N1=${N1:-500}
N2=${N2:-2500}
SETUP=${SETUP:-1}
WLS="w1 w2 w3"
CFGS="base aa"
while getopts "w:c:" o; do
	case $o in
		w) WLS=$OPTARG ;;
		c) CFGS=$OPTARG ;;
		*) sed -n '2,18p' "$0"; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "callgrind.sh: run as root" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
OUT=${OUT:-$BASE/out-$(date -u +%Y%m%dT%H%M%SZ)}
D=$BASE/data
SOCK=$BASE/sock
. "$REPO/bench/lib.sh"
q() { as "$PGBIN/psql -X -q -h $SOCK -p $PORT -d bench -tAc \"$*\""; }
mkdir -p "$BASE" "$OUT"
chown "$RUNAS" "$BASE" "$OUT"

if [ "$SETUP" = 1 ]; then
	if [ -f "$D/postmaster.pid" ]; then as "$PGBIN/pg_ctl -D $D -m immediate stop" >/dev/null 2>&1 || true; fi
	rm -rf "$D" "$SOCK"
	mkdir -p "$SOCK" && chown "$RUNAS" "$SOCK"
	bench_initdb "$D" "$SOCK" "$PORT" access_audit 'shared_buffers = 256MB' 'autovacuum = off'
	as "$PGBIN/pg_ctl -D $D -l $D/server.log -w start" >/dev/null
	bench_load_customers "$SOCK" "$PORT" "$ROWS" tag
	as "$PGBIN/pg_ctl -D $D -w -m fast stop" >/dev/null
fi
for w in $WLS; do cp "$REPO/bench/$w.sql" "$BASE/$w.sql"; chmod 644 "$BASE/$w.sql"; done

# one server lifetime under callgrind; prints "backend_Ir writer_Ir"
run_once() {
	local cfg=$1 wl=$2 n=$3 spl='' cg=$OUT/cg-$1-$2-$3
	[ "$cfg" != base ] && spl=access_audit
	rm -rf "$cg"; mkdir -p "$cg"; chown "$RUNAS" "$cg"
	as "cd $cg && valgrind --tool=callgrind --callgrind-out-file=$cg/cg.%p \
		$PGBIN/postgres -D $D -c shared_preload_libraries=$spl >$cg/server.log 2>&1 &"
	for _ in $(seq 1 240); do
		as "$PGBIN/pg_isready -q -h $SOCK -p $PORT" && break
		sleep 1
	done
	# warm the table and the writer (its start-up is not what we count)
	q "SELECT count(*) FROM customers" >/dev/null
	if [ "$cfg" != base ]; then
		# aa: no quotas; aaq: two quotas on the reading actor, far from their
		# limits; rows: row identities of customers on (issue 25), off otherwise
		q "DELETE FROM access_audit.quotas" >/dev/null
		if [ "$cfg" = aaq ]; then
			q "SELECT access_audit.set_quota('actor', current_user, 1000000000000, 'day', 'block')" >/dev/null
			q "SELECT access_audit.set_quota('actor', current_user, 1000000000, 'statement', 'block')" >/dev/null
		fi
		if [ "$cfg" = rows ]; then
			q "SELECT access_audit.track_rows('customers')" >/dev/null
		else
			q "SELECT access_audit.untrack_rows('customers')" >/dev/null 2>&1 || true
		fi
		q "SELECT full_name FROM customers WHERE id = 1" >/dev/null
		q "SELECT access_audit.flush('120 s')" >/dev/null
	fi
	local before after bpid wfiles nw=0 bir wir=0
	# A writer leaves after AA_WRITER_IDLE_EXIT_MS (1 s) idle and the next
	# record starts another, so the warm-up's writer may or may not live on
	# into the counted run.  Wait until it has left: every writer process
	# that then runs belongs to the counted statements (and their flush), and
	# its file is written when it exits, during the run or at the server's
	# stop.
	if [ "$cfg" != base ]; then
		for _ in $(seq 1 120); do
			[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'access_audit writer'")" = 0 ] && break
			sleep 1
		done
	fi
	# files of earlier processes are written when they exit: let them land
	sleep 3
	before=$(files_in "$cg")
	as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 1 -t $n -f $BASE/$wl.sql bench" >"$cg/pgbench.txt" 2>&1
	[ "$cfg" != base ] && q "SELECT access_audit.flush('300 s')" >/dev/null
	sleep 3
	after=$(files_in "$cg")
	# the pgbench backend: the biggest file written meanwhile that is not a writer's
	bpid=$(comm -13 <(echo "$before") <(echo "$after") | grep '^cg\.' |
		while read -r f; do is_writer "$cg/$f" || echo "$(grep '^totals:' "$cg/$f" | awk '{print $2}') $f"; done |
		sort -n | tail -1 | awk '{print $2}')
	as "$PGBIN/pg_ctl -D $D -w -t 600 -m fast stop" >/dev/null
	bir=$(grep '^totals:' "$cg/$bpid" | awk '{print $2}')
	# the writers: every writer file that appeared after the warm-up's left
	wfiles=$(comm -13 <(echo "$before") <(files_in "$cg") | grep '^cg\.' |
		while read -r f; do if is_writer "$cg/$f"; then echo "$f"; fi; done)
	if [ -n "$wfiles" ]; then
		nw=$(echo "$wfiles" | wc -l)
		wir=$(for f in $wfiles; do grep -h '^totals:' "$cg/$f"; done | awk '{s += $2} END {print s}')
	fi
	echo "$bpid" >"$cg/backend"
	echo "$wfiles" >"$cg/writers"
	echo "$bir $wir $nw"
}
# files_in DIR: the names of the files in DIR, sorted (for comm)
files_in() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort; }
# is_writer FILE: the callgrind file of an access_audit writer process
is_writer() { grep -qE '^c?fn=(\([0-9]+\) )?aa_writer_main$' "$1"; }

for wl in $WLS; do
	for cfg in $CFGS; do
		read -r b1 w1 nw1 <<<"$(run_once "$cfg" "$wl" "$N1")"
		read -r b2 w2 nw2 <<<"$(run_once "$cfg" "$wl" "$N2")"
		# each writer process carries its start-up (dictionaries and chain
		# head loaded from the log): the difference cancels it only when both
		# runs had as many writers
		[ "$nw1" = "$nw2" ] ||
			echo "$wl $cfg: $nw1 writer process(es) in the $N1-statement run, $nw2 in the $N2 one: the writer figure includes a start-up" | tee -a "$OUT/summary.txt" >&2
		cg=$OUT/cg-$cfg-$wl-$N2
		callgrind_annotate --inclusive=yes "$cg/$(cat "$cg/backend")" 2>/dev/null | head -80 >"$OUT/$cfg-$wl-backend.annotate" || true
		if [ "$cfg" != base ]; then
			# the writer that did the most of the counted run's work
			wf=$(while read -r f; do [ -z "$f" ] || echo "$(grep '^totals:' "$cg/$f" | awk '{print $2}') $f"; done <"$cg/writers" |
				sort -n | tail -1 | awk '{print $2}')
			if [ -n "$wf" ]; then
				callgrind_annotate --inclusive=yes "$cg/$wf" 2>/dev/null | head -80 >"$OUT/$cfg-$wl-writer.annotate" || true
			fi
		fi
		awk -v wl="$wl" -v c="$cfg" -v b1="$b1" -v b2="$b2" -v w1="$w1" -v w2="$w2" -v n1="$N1" -v n2="$N2" \
			-v nw="${nw2:-0}" 'BEGIN{printf "%s %-5s backend %9.0f Ir/stmt  writer %9.0f Ir/record (%d writer process(es))\n", wl, c, (b2-b1)/(n2-n1), (w2-w1)/(n2-n1), nw}' |
			tee -a "$OUT/summary.txt"
	done
done
echo "callgrind: $OUT"
