#!/bin/bash
# test/compile-check.sh: compile every C file of the extension against the
# headers of a PostgreSQL source tree, without a server installed: for
# major versions that have no Debian package here (16).  Compile only:
# nothing is linked, installed or run.
#
# Usage: test/compile-check.sh PGSRC
#   PGSRC: a PostgreSQL source tree, configured and with its generated
#   headers made:  ./configure --with-openssl && make -C src/backend generated-headers
# Environment: CC (gcc), AA_EXTRA_CFLAGS (more compiler flags).
# Prints the version compiled against and "N files compiled, N failed";
# exits non-zero if any file failed.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGSRC=${1:?usage: test/compile-check.sh PGSRC}
CC=${CC:-gcc}

[ -f "$PGSRC/src/include/pg_config.h" ] ||
	{
		echo "error: $PGSRC is not a configured PostgreSQL source tree (no src/include/pg_config.h)" >&2
		exit 2
	}
[ -f "$PGSRC/src/include/utils/errcodes.h" ] ||
	{
		echo "error: generated headers missing; run: make -C $PGSRC/src/backend generated-headers" >&2
		exit 2
	}

echo "compiling against $(sed -En 's/^#define PG_VERSION_STR "(.*)"/\1/p' "$PGSRC/src/include/pg_config.h" | cut -d' ' -f1-2)"

# the warnings PGXS uses, as errors (as test/run-all.sh builds)
CFLAGS=(-std=gnu99 -Wall -Wmissing-prototypes -Wpointer-arith
	-Wdeclaration-after-statement -Werror=vla -Wendif-labels
	-Wmissing-format-attribute -Wimplicit-fallthrough=3 -Wcast-function-type
	-Wshadow=compatible-local -Wformat-security -fno-strict-aliasing -fwrapv
	-Wno-format-truncation -Wno-stringop-truncation -O2 -Werror -fPIC
	-fvisibility=hidden -D_GNU_SOURCE)
# shellcheck disable=SC2206
EXTRA=(${AA_EXTRA_CFLAGS:-})

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ok=0
bad=0
for f in "$ROOT"/extension/*.c; do
	if "$CC" "${CFLAGS[@]}" "${EXTRA[@]}" -I"$ROOT" -I"$PGSRC/src/interfaces/libpq" \
		-I"$PGSRC/src/include" -c -o "$out/$(basename "$f" .c).o" "$f"; then
		ok=$((ok + 1))
	else
		echo "FAILED: ${f#"$ROOT"/}"
		bad=$((bad + 1))
	fi
done
echo "$ok files compiled, $bad failed"
[ "$bad" -eq 0 ]
