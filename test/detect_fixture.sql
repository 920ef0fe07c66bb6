/* test/detect_fixture.sql */
-- Standalone stand-in for the tables that access_audit--1.0.sql creates.
-- Only for trying SQL against roll-up-shaped tables without the extension;
-- rank_exporters itself now needs the C library (access_audit._detect_actors),
-- so the bench scripts create the extension instead.  Never load this into a
-- database where CREATE EXTENSION access_audit ran.
CREATE SCHEMA access_audit;
CREATE TABLE access_audit.actor_daily (day date NOT NULL, actor text NOT NULL, relation text NOT NULL,
  rows bigint NOT NULL DEFAULT 0, tagged_rows bigint NOT NULL DEFAULT 0, statements bigint NOT NULL DEFAULT 0,
  off_hours_rows bigint NOT NULL DEFAULT 0, PRIMARY KEY (day, actor, relation));
CREATE TABLE access_audit.actor_groups (actor text PRIMARY KEY, peer_group text NOT NULL DEFAULT 'default',
  bulk_user boolean NOT NULL DEFAULT false, note text);
CREATE TABLE access_audit.alerts (alert_id bigserial PRIMARY KEY, raised_at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL, window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, score float8 NOT NULL,
  reason text NOT NULL, detail jsonb, UNIQUE (actor, window_start, window_end));
CREATE TABLE access_audit.alert_acks (ack_id bigserial PRIMARY KEY, alert_id bigint NOT NULL REFERENCES access_audit.alerts,
  acked_at timestamptz NOT NULL DEFAULT now(), acked_by name NOT NULL DEFAULT session_user, note text);
