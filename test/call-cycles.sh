#!/bin/bash
# test/call-cycles.sh: fail if two of the extension's C files depend on each
# other, directly or through others.
#
# Reads the object files (default: extension/*.o, so run it after make):
# file A depends on file B when A's object uses a symbol (function or
# variable) that B's object defines, as nm lists them.  Static functions and
# static inline functions of headers are no edges, which is what we want:
# they belong to the file that has them.  A cycle is a pair of files each of
# which reaches the other; the script prints every such pair with the
# direct edges between files of the cycle and the symbols behind them, and
# exits 1.  With no cycle it prints the dependencies, one edge a line, and
# exits 0.  It also fails on a symbol of the extension (aa_*, access_audit_*)
# that a file uses and no file defines: the link of a shared library does
# not catch that, only the server when it loads the module.
#
# Usage: test/call-cycles.sh [OBJECT...]
set -uo pipefail

if [ $# -eq 0 ]; then
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
	set -- extension/*.o
fi
for o in "$@"; do
	[ -f "$o" ] || {
		echo "call-cycles: no object file $o (run make first)" >&2
		exit 2
	}
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "symbol file" for every global definition, "file symbol" for every use
for o in "$@"; do
	f=$(basename "$o" .o)
	nm -g --defined-only "$o" | awk -v f="$f" 'NF == 3 { print $3, f }'
done >"$tmp/defs"
for o in "$@"; do
	f=$(basename "$o" .o)
	nm -u "$o" | awk -v f="$f" '{ print f, $NF }'
done >"$tmp/uses"

# "from to symbol" for every use of a symbol another file defines
awk 'NR == FNR { def[$1] = $2; next }
	 ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
	"$tmp/defs" "$tmp/uses" | sort -u >"$tmp/edges"

# transitive closure (the files are few), then the pairs that reach each
# other
awk '
{
	node[$1] = 1; node[$2] = 1; reach[$1, $2] = 1
	if (!(($1, $2) in syms))
		syms[$1, $2] = $3
	else
		syms[$1, $2] = syms[$1, $2] " " $3
}
END {
	for (k in node)
		for (i in node)
			if ((i, k) in reach)
				for (j in node)
					if ((k, j) in reach)
						reach[i, j] = 1
	bad = 0
	for (i in node)
		for (j in node)
			if (i < j && ((i, j) in reach) && ((j, i) in reach))
			{
				printf "1 cycle: %s and %s reach each other\n", i, j
				bad = 1
				inc[i] = 1; inc[j] = 1
			}
	if (bad)
	{
		print "2 direct edges between files in cycles (file -> file: symbols):"
		for (i in inc)
			for (j in inc)
				if ((i, j) in syms)
					printf "3   %s -> %s: %s\n", i, j, syms[i, j]
		exit 1
	}
	for (i in node)
		for (j in node)
			if ((i, j) in syms)
				printf "4 %s -> %s\n", i, j
}' "$tmp/edges" >"$tmp/out"
rc=$?
sort "$tmp/out" | cut -d' ' -f2-

# an extension symbol that some file uses and none defines would only fail
# when the server loads the module
awk 'NR == FNR { def[$1] = 1; next }
	 $2 ~ /^(aa_|access_audit_)/ && !($2 in def) { print "  " $1 ": " $2 }' \
	"$tmp/defs" "$tmp/uses" | sort -u >"$tmp/undef"
if [ -s "$tmp/undef" ]; then
	echo "used but defined in no object file:"
	cat "$tmp/undef"
	rc=1
fi
exit $rc
