# bench/lib.sh: what the benchmark scripts share; sourced, not run.
#
# Expects PGBIN (server binaries) and RUNAS (the OS user that runs the
# servers) to be set.

# run a shell command line as $RUNAS (PostgreSQL refuses to run as root)
as() { su "$RUNAS" -s /bin/bash -c "$*"; }

# bench_initdb DIR SOCKDIR PORT PRELOAD [postgresql.conf lines...]
# A new data directory listening only on a unix socket in SOCKDIR, with
# shared_preload_libraries = PRELOAD, 512MB of shared buffers and room for
# WAL; further lines (say, a smaller shared_buffers) are appended after.
bench_initdb() {
	local dir=$1 sock=$2 port=$3 preload=$4
	shift 4
	as "$PGBIN/initdb -D $dir -A trust -E UTF8 --no-locale" >/dev/null
	{
		cat <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
shared_preload_libraries = '$preload'
shared_buffers = 512MB
max_wal_size = 4GB
EOF
		for line in "$@"; do echo "$line"; done
	} >>"$dir/postgresql.conf"
}

# bench_load_customers SOCKDIR PORT ROWS [tag]
# On a running server: database "bench" with the benchmark's customers
# table of ROWS rows, analyzed.  With "tag": CREATE EXTENSION access_audit
# and full_name and phone tagged 'pii'.
bench_load_customers() {
	local sock=$1 port=$2 rows=$3 tag=${4:-}
	local psql="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $sock -p $port -d bench"
	as "$PGBIN/createdb -h $sock -p $port bench"
	as "$psql" <<EOF
CREATE TABLE customers (
    id        integer PRIMARY KEY,
    full_name text NOT NULL,
    phone     text NOT NULL,
    city      text NOT NULL,
    email     text NOT NULL,
    created   date NOT NULL
);
INSERT INTO customers
SELECT i, 'Customer ' || md5(i::text)::varchar(12),
       '+1-555-' || lpad((i % 10000000)::text, 7, '0'),
       (ARRAY['Berlin','Paris','Lisbon','Oslo','Rome','Vienna','Prague','Dublin'])[1 + i % 8],
       'c' || i || '@example.com',
       date '2020-01-01' + (i % 1500)
  FROM generate_series(1, $rows) i;
VACUUM ANALYZE customers;
EOF
	if [ "$tag" = tag ]; then
		as "$psql" <<'EOF'
CREATE EXTENSION access_audit;
SECURITY LABEL FOR access_audit ON COLUMN customers.full_name IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
EOF
	fi
}

# bench_cpu_ticks DATADIR: CPU ticks (user + system, reaped children
# included) used so far by the server running in DATADIR and its live
# children (the access_audit writer, other background workers)
bench_cpu_ticks() {
	local pm
	pm=$(head -1 "$1/postmaster.pid")
	for p in $pm $(ps --ppid "$pm" -o pid=); do
		cat "/proc/$p/stat" 2>/dev/null || true
	done | awk '{s += $14 + $15 + $16 + $17} END {print s}'
}

# bench_pgbench_result [FILE]: of pgbench's report (FILE, or standard
# input), print "tps statements latency": tps without the initial
# connection time, the transactions processed and the average latency (ms)
bench_pgbench_result() {
	awk '/^tps = / && /without initial/ {tps=$3}
	     /number of transactions actually processed/ {split($0,a,": "); split(a[2],b,"/"); n=b[1]}
	     /^latency average/ {lat=$4}
	     END {print tps, n, lat}' "$@"
}
