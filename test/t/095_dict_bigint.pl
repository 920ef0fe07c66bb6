# Dictionary ids are bigint (issue 16, item 8): a fresh 1.1 install and a
# 1.0 install updated to 1.1 have the same columns, views, privileges and
# functions; the updated log keeps its records and its chain; and ids
# beyond the integer range work.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dict_bigint');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

my $setup = q{
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
GRANT access_audit_app TO CURRENT_USER;
SET access_audit.actor = 'before';
SELECT phone FROM customers WHERE id = 1;
};
$node->safe_psql('postgres', 'CREATE DATABASE old; CREATE DATABASE fresh');
$node->safe_psql('old', "CREATE EXTENSION access_audit VERSION '1.0';" . $setup);
$node->safe_psql('fresh', 'CREATE EXTENSION access_audit;' . $setup);
$node->safe_psql('old', q{SELECT access_audit.flush('20 s')});

# the 1.0 writer keeps writing while the update waits for it
$node->safe_psql('old', q{
SET access_audit.maintenance = on;
ALTER EXTENSION access_audit UPDATE TO '1.1';
});

my $shape = q{
SELECT string_agg(c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod),
                  E'\n' ORDER BY c.relname, a.attnum)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = 'access_audit'
   -- partitions of log_data (and their indexes) have the parent's columns;
   -- how many there are depends on how many records each log holds
   AND NOT c.relispartition
};
is($node->safe_psql('old', $shape), $node->safe_psql('fresh', $shape),
	'updated and fresh installs have the same columns and types');
my $views = q{
SELECT string_agg(c.relname || ' ' || coalesce(c.relacl::text, '') || ' ' ||
                  coalesce(obj_description(c.oid, 'pg_class'), '') || ' ' ||
                  pg_get_viewdef(c.oid) || ' ' ||
                  (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
                  E'\n' ORDER BY c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'access_audit' AND c.relkind = 'v'
};
is($node->safe_psql('old', $views), $node->safe_psql('fresh', $views),
	'updated and fresh installs have the same views, privileges, comments and triggers');
my $funcs = q{
SELECT string_agg(p.oid::regprocedure::text || ' ' || pg_get_function_result(p.oid), E'\n' ORDER BY p.oid::regprocedure::text COLLATE "C")
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'access_audit'
};
is($node->safe_psql('old', $funcs), $node->safe_psql('fresh', $funcs),
	'updated and fresh installs have the same functions');
my $seqs = q{
SELECT string_agg(sequencename || ' ' || data_type::text || ' ' || max_value, E'\n' ORDER BY sequencename)
  FROM pg_sequences WHERE schemaname = 'access_audit'
};
is($node->safe_psql('old', $seqs), $node->safe_psql('fresh', $seqs),
	'updated and fresh installs have the same sequences');
is($node->safe_psql('old', q{
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'access_audit.log_data'::regclass AND attname = 'session_id'}),
	'bigint', 'log_data.session_id is bigint');

# ids beyond the integer range, in both installs
for my $db ('old', 'fresh')
{
	$node->safe_psql($db, q{
SET access_audit.maintenance = on;
INSERT INTO access_audit.strings VALUES (3000000000, 0, 'big');
});
	$node->safe_psql($db, q{
SET access_audit.actor = 'after';
SELECT phone FROM customers WHERE id = 2;
});
	is( $node->safe_psql($db, q{
SELECT access_audit.flush('20 s');
SELECT string_agg(actor, ',' ORDER BY seq) FROM access_audit.log WHERE command = 'SELECT'}),
		"t\nbefore,after", "$db: records before and after, with an id beyond integer");
	is( $node->safe_psql($db, q{
SELECT id > 3000000000 FROM access_audit.strings WHERE value = 'after'}),
		't', "$db: the new string's id is beyond the integer range");
	is($node->safe_psql($db, 'SELECT ok FROM access_audit.verify()'), 't',
		"$db: the chain is whole");
}

$node->stop;
done_testing();
