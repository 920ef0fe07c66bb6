# Upgrading 1.0 to 1.1 (ALTER EXTENSION access_audit UPDATE, in maintenance
# mode as the append-only guard requires) ends with the same objects as a
# fresh 1.1 install: member objects, functions (body, privileges, settings),
# views, table columns, triggers and table privileges.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('updated', q{CREATE EXTENSION access_audit VERSION '1.0'});
is($node->safe_psql('updated', q{SELECT extversion FROM pg_extension WHERE extname = 'access_audit'}),
	'1.0', 'installed 1.0');
$node->safe_psql('updated', q{
SET access_audit.maintenance = on;
ALTER EXTENSION access_audit UPDATE TO '1.1';
});
is($node->safe_psql('updated', q{SELECT extversion FROM pg_extension WHERE extname = 'access_audit'}),
	'1.1', 'updated to 1.1');
$node->safe_psql('fresh', 'CREATE EXTENSION access_audit');

my %catalog = (
	'member objects' => q{
SELECT pg_describe_object(classid, objid, objsubid) COLLATE "C"
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'access_audit')
 ORDER BY 1},
	'functions' => q{
SELECT p.oid::regprocedure::text COLLATE "C", md5(p.prosrc), p.prosecdef, p.provolatile,
       p.proconfig, p.proacl, pg_get_function_result(p.oid)
  FROM pg_proc p WHERE p.pronamespace = 'access_audit'::regnamespace
 ORDER BY 1},
	'views' => q{
SELECT c.relname COLLATE "C", md5(pg_get_viewdef(c.oid)), c.relacl
  FROM pg_class c WHERE c.relnamespace = 'access_audit'::regnamespace AND c.relkind IN ('v', 'm')
 ORDER BY 1},
	'table columns' => q{
SELECT c.relname COLLATE "C", a.attname COLLATE "C", format_type(a.atttypid, a.atttypmod),
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'access_audit'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname !~ '^log_data_p[0-9]+$'
 ORDER BY 1, 2},
	'table privileges and indexes' => q{
SELECT c.relname COLLATE "C", c.relkind, c.relacl
  FROM pg_class c WHERE c.relnamespace = 'access_audit'::regnamespace AND c.relkind IN ('r', 'p', 'i', 'I', 'S')
   AND c.relname !~ '^log_data_p[0-9]+(_pkey)?$'
 ORDER BY 1},
	'triggers' => q{
SELECT t.tgrelid::regclass::text COLLATE "C", t.tgname COLLATE "C", t.tgenabled, t.tgdeferrable,
       t.tginitdeferred, t.tgtype, t.tgfoid::regprocedure::text
  FROM pg_trigger t
 WHERE t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'access_audit'::regnamespace
                       AND relname !~ '^log_data_p[0-9]+$')
   AND NOT t.tgisinternal
 ORDER BY 1, 2},
	'schema privileges' => q{SELECT nspacl FROM pg_namespace WHERE nspname = 'access_audit'});

for my $what (sort keys %catalog)
{
	my $u = $node->safe_psql('updated', $catalog{$what});
	my $f = $node->safe_psql('fresh', $catalog{$what});
	is($u, $f, "$what: updated 1.0 equals fresh 1.1");
}

# the roles 1.1 creates exist after the update too
is($node->safe_psql('updated',
	q{SELECT count(*) FROM pg_roles WHERE rolname = 'access_audit_analyst'}), '1',
	'the update creates access_audit_analyst');

$node->stop;
done_testing();
