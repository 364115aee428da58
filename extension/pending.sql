-- Hand-written statements for the next release's upgrade script: ALTER TABLE, renames,
-- data changes; what tools/sqldelta.py cannot derive from the source. `make delta`
-- puts them first in updates/timepart--<previous>--<new>.sql; empty this file (keep
-- these lines) once that version is released.

-- What a partition inherits (55_look.sql): the configured storage options and logged-ness.
ALTER TABLE timepart.config ADD COLUMN partition_options jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE timepart.config ADD COLUMN partition_unlogged boolean NOT NULL DEFAULT false;
ALTER TABLE timepart.config ADD CONSTRAINT config_partition_options_object CHECK (jsonb_typeof(partition_options) = 'object');
