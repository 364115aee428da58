-- timepart 0.8 -> 0.9: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.9'::text $$;

SELECT timepart._harden();
