-- ---------------------------------------------------------------------------
-- Dump and restore (extension/restore.c).
--
-- The audit history is data of the extension's configuration tables, so
-- that pg_dump carries it.  A restore loads it through the guard, which
-- lets only a recognisable restore by a superuser in, verifies the chain
-- once every table it is made of is loaded, and records the restore; the
-- writer then continues the restored chain.  Not dumped: writer_state (a
-- position in this server's queue, meaningless elsewhere).  The
-- dictionaries have no id sequences: the writer gives a new entry one more
-- than the table's highest id.
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('access_audit.chain_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.log_data', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.log_data_default', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.strings', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.string_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.shapes', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.actor_daily', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.actor_groups', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alerts_alert_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alert_acks', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alert_acks_ack_id_seq', '');
-- A central server's copies of its sources' logs (30_remote.sql).
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_log', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_shapes', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_strings', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_string_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collect_progress', '');
