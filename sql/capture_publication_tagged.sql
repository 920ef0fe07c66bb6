-- Tagging a column of a published table records one PUBLICATION event per
-- publication that streams it: FOR TABLE of the table or of a partition
-- ancestor (with its column list), TABLES IN SCHEMA of either, FOR ALL
-- TABLES; never for tables no publication can stream (temporary ones).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

CREATE SCHEMA cpt_s;
CREATE TABLE cpt_parent (id int, phone text, note text) PARTITION BY RANGE (id);
CREATE TABLE cpt_s.cpt_leaf PARTITION OF cpt_parent FOR VALUES FROM (0) TO (100);
CREATE TABLE cpt_plain (id int, phone text);
CREATE TEMP TABLE cpt_temp (id int, phone text);
-- without wal_level = logical PostgreSQL warns at each publication, in
-- words that changed in 17: not what this test is about
SET client_min_messages = error;
CREATE PUBLICATION cpt_root FOR TABLE cpt_parent;
CREATE PUBLICATION cpt_root_via WITH (publish_via_partition_root);
ALTER PUBLICATION cpt_root_via ADD TABLE cpt_parent (id, note);
CREATE PUBLICATION cpt_schema FOR TABLES IN SCHEMA cpt_s;
CREATE PUBLICATION cpt_plain_pub FOR TABLE cpt_plain;
RESET client_min_messages;

-- a partition whose ancestor and schema are published
SECURITY LABEL FOR access_audit ON COLUMN cpt_s.cpt_leaf.phone IS 'pii';
-- a column outside cpt_root_via's column list is not streamed by it
SECURITY LABEL FOR access_audit ON COLUMN cpt_s.cpt_leaf.note IS 'pii:note';
-- the partitioned table itself
SECURITY LABEL FOR access_audit ON COLUMN cpt_parent.phone IS 'pii';
-- a plain table, then a temporary one under FOR ALL TABLES
SECURITY LABEL FOR access_audit ON COLUMN cpt_plain.phone IS 'pii';
SET client_min_messages = error;
CREATE PUBLICATION cpt_all FOR ALL TABLES;
RESET client_min_messages;
SECURITY LABEL FOR access_audit ON COLUMN cpt_temp.phone IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN cpt_plain.id IS 'pii:id';

SELECT access_audit.flush();
SELECT relations, detail::jsonb ->> 'publication' AS publication, columns, tags
  FROM access_audit.log
 WHERE seq > :start AND command = 'PUBLICATION'
 ORDER BY seq;

DROP PUBLICATION cpt_root, cpt_root_via, cpt_schema, cpt_plain_pub, cpt_all;
DROP TABLE cpt_parent, cpt_plain, cpt_temp;
DROP SCHEMA cpt_s;
