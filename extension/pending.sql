-- Hand-written statements for the next release's upgrade script: ALTER TABLE, renames,
-- data changes; what tools/sqldelta.py cannot derive from the source. `make delta`
-- puts them first in updates/timepart--<previous>--<new>.sql; empty this file (keep
-- these lines) once that version is released. (0.11's went into timepart--0.10--0.11.sql.)

-- 0.13: a lock budget is a whole number of milliseconds, at least 1 ms (a budget under
-- 1 ms became lock_timeout = 0, which PostgreSQL reads as no limit at all).
UPDATE timepart.config SET lock_timeout = greatest(interval '1 millisecond',
    pg_catalog.make_interval(secs => pg_catalog.round(extract(epoch FROM lock_timeout) * 1000) / 1000.0))
WHERE lock_timeout < interval '1 millisecond'
   OR extract(epoch FROM lock_timeout) * 1000 <> pg_catalog.floor(extract(epoch FROM lock_timeout) * 1000);
ALTER TABLE timepart.config DROP CONSTRAINT config_lock_timeout_bounded;
ALTER TABLE timepart.config ADD CONSTRAINT config_lock_timeout_bounded CHECK (lock_timeout >= interval '1 millisecond'
    AND lock_timeout <= interval '1 minute' AND extract(epoch FROM lock_timeout) * 1000 = floor(extract(epoch FROM lock_timeout) * 1000));

-- 0.13: the capture triggers as made, checked at every batch, round and the swap (a
-- migration under way gets its mark at its next batch).
ALTER TABLE timepart.migrations ADD COLUMN capture_triggers text;
COMMENT ON COLUMN timepart.migrations.capture_triggers IS 'The capture triggers as made (timepart._capture_mark): checked at every batch, round and the swap';

-- 0.13: a migration's row is checked against the owner of its target too.
DROP TRIGGER IF EXISTS migrations_owner_guard ON timepart.migrations;
CREATE TRIGGER migrations_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('source', 'target');
