-- Hand-written statements for the next release's upgrade script: ALTER TABLE, renames,
-- data changes; what tools/sqldelta.py cannot derive from the source. `make delta`
-- puts them first in updates/timepart--<previous>--<new>.sql; empty this file (keep
-- these lines) once that version is released. (0.13's went into timepart--0.12--0.13.sql.)

-- 0.14: oldest and newest of a timestamp or date key were stored in the snapshotting
-- session's time zone; marked stale, so the next snapshot counts them again in the
-- table's time zone (until then statistics use estimates).
UPDATE timepart.stats_history h SET changes_seen = -1
FROM timepart.config c WHERE h.parent_table = c.parent AND c.key_type <> 'pg_catalog.timestamptz'::pg_catalog.regtype;
