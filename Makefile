# access_audit: audit reads of tagged columns (PGXS build)

MODULE_big = access_audit
OBJS = \
	extension/access_audit.o \
	extension/capture.o \
	extension/chain.o \
	extension/derived.o \
	extension/detect.o \
	extension/dict.o \
	extension/guard.o \
	extension/hints.o \
	extension/notify.o \
	extension/partition.o \
	extension/plantrace.o \
	extension/queue.o \
	extension/quota.o \
	extension/records.o \
	extension/remote.o \
	extension/rerun.o \
	extension/restore.o \
	extension/rowids.o \
	extension/settings.o \
	extension/siem.o \
	extension/sql_api.o \
	extension/tags.o \
	extension/writer.o

# remote.c ships a standby's records to its primary with libpq
PG_CPPFLAGS = -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)

EXTENSION = access_audit
# The install script of the current version is assembled from the parts in
# extension/sql/, in name order, so that each area (core, detection, guard)
# keeps its own file.  Released versions are frozen: access_audit--1.0.sql is
# the 1.0 install script as released.  The update script from 1.0 is
# assembled too: the changes to objects 1.0 has (extension/upgrade/), with
# the part files whose objects are all new in 1.1 taken as they are, so that
# they cannot drift from a fresh install.
DATA_built = extension/access_audit--1.1.sql extension/access_audit--1.0--1.1.sql
DATA = extension/access_audit--1.0.sql
UPGRADE_1_1 = extension/upgrade/1.0--1.1.sql \
	extension/sql/50_quota.sql extension/sql/40_report.sql \
	extension/sql/41_siem.sql extension/sql/42_analyst.sql \
	extension/sql/96_rowids.sql \
	extension/upgrade/1.0--1.1-dictionary-ids.sql
SQL_PARTS = $(sort $(wildcard extension/sql/*.sql))
PGFILEDESC = "access_audit - audit every read of tagged sensitive columns"

# Each regression file creates and drops its own objects.
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=test/access_audit.conf

ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso --temp-instance=./tmp_check_iso --temp-config=test/access_audit.conf

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# test/lib holds the helpers the TAP tests share (AccessAuditTest.pm);
# Makefile.global empties PROVE_FLAGS, so this comes after it
PROVE_FLAGS += -I $(srcdir)/test/lib

# chain.c hashes with OpenSSL directly when the server was built with it
ifeq ($(with_ssl),openssl)
SHLIB_LINK += -lcrypto
endif

extension/access_audit--1.1.sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

extension/access_audit--1.0--1.1.sql: $(UPGRADE_1_1)
	cat $(UPGRADE_1_1) > $@

# C files follow pgindent's layout (CONTRIBUTING.md); new typedefs go into
# extension/typedefs.list
INDENT_OPTS = -bad -bap -bbb -bc -bl -cli1 -cp33 -cdb -nce -d0 -di12 -nfc1 -i4 -l79 -lp -lpl -nip -npro -sac -tpg -ts4
.PHONY: indent indentcheck
indent:
	for f in extension/*.c extension/*.h; do \
		pg_bsd_indent $(INDENT_OPTS) -Uextension/typedefs.list $$f $$f.ind && mv $$f.ind $$f; \
	done
indentcheck:
	@rc=0; for f in extension/*.c extension/*.h; do \
		pg_bsd_indent $(INDENT_OPTS) -Uextension/typedefs.list $$f /tmp/aa_indent.$$$$ || rc=1; \
		diff -u $$f /tmp/aa_indent.$$$$ || rc=1; rm -f /tmp/aa_indent.$$$$; \
	done; exit $$rc
