-- Query text longer than access_audit.max_query_length keeps its head and
-- its tail with the cut marked, so a long leading comment (a decoy) cannot
-- hide the statement.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
CREATE TABLE ct_cust (id int, phone text);
INSERT INTO ct_cust VALUES (1, '555-1'), (2, '555-2');
SELECT access_audit.tag('ct_cust', 'phone', 'pii:phone');
SELECT '/* ' || repeat('harmless ', 300) || '*/' AS decoy \gset
SELECT 'phone' || repeat(', phone', 400) AS many \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- the decoy inside the statement: from PostgreSQL 18 on, a comment before
-- a statement is no part of its text
SELECT :decoy phone FROM ct_cust WHERE id = 1;
SELECT :many FROM ct_cust WHERE id = 2 \gset
SET access_audit.max_query_length = 100;
SELECT :decoy phone FROM ct_cust WHERE id = 2;
SET access_audit.max_query_length = 40;
SELECT phone FROM ct_cust WHERE id = 1 AND phone IS NOT NULL;
RESET access_audit.max_query_length;

SELECT access_audit.flush();
SELECT left(query, 12) AS head, right(query, 36) AS tail,
       substring(query from '/\* access_audit: \d+ bytes cut \*/') AS cut,
       octet_length(query) AS len, rows
  FROM access_audit.log WHERE seq > :start AND command = 'SELECT' ORDER BY seq;

-- access_audit.query_text = normalized: constants replaced by $n, so the
-- log's readers cannot harvest values others typed
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SET access_audit.query_text = normalized;
SELECT phone FROM ct_cust WHERE phone = '555-1' AND id = 1;
SELECT "phone", 'it''s' AS t1 FROM ct_cust /* a 'comment' */ WHERE phone IN (E'555-\'2', $$555-3$$, $q$x$q$) AND id < 2.5e1 -- end
;
PREPARE ct_p(int) AS SELECT phone FROM ct_cust WHERE id = $1 AND phone <> '555-9';
EXECUTE ct_p(2);
DEALLOCATE ct_p;
RESET access_audit.query_text;
SELECT phone FROM ct_cust WHERE phone = '555-1';
SELECT access_audit.flush();
SELECT query FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' ORDER BY seq;
DROP TABLE ct_cust;
