/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- Every change made to extension/sql/*.sql after 1.0 is repeated here, so
-- that an updated 1.0 installation ends with the same objects as a fresh 1.1
-- install.

-- ---------------------------------------------------------------------------
-- Durability (dump and restore): as extension/sql/95_durable.sql
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('access_audit.chain_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.log_data', '');
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
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_log', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_shapes', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_strings', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_string_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collect_progress', '');
