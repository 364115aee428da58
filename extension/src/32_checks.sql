-- The refusals shared by manage, configure, maintain, cleanup and migrate: one rule,
-- one message and one SQLSTATE for each setting, wherever it is given.

-- The refusal for an interval that is not a whole number of days or of months.
CREATE OR REPLACE FUNCTION timepart._check_interval(partition_interval interval) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF partition_interval IS NULL OR partition_interval <= interval '0'
       OR partition_interval <> pg_catalog.make_interval(months => (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))::int,
                                           days => pg_catalog.date_part('day', partition_interval)::int)
       OR (pg_catalog.date_part('day', partition_interval) <> 0 AND pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval) <> 0) THEN
        RAISE EXCEPTION 'partition interval must be a whole number of days or of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(partition_interval::text, 'NULL')),
            HINT = 'Use e.g. ''1 day'', ''7 days'', ''1 month'' or ''3 months''; not hours, and not months and days mixed.';
    END IF;
    IF partition_interval > interval '10 years' THEN
        RAISE EXCEPTION 'partition interval is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 10 years.', partition_interval),
            HINT = 'Partition by month or year; a table that needs longer partitions needs none.';
    END IF;
END $$;

-- The refusal for settings that break a rule, with the rule in the message. The
-- CHECK constraints on timepart.config say the same; this says it with DETAIL and HINT.
CREATE OR REPLACE FUNCTION timepart._check_settings(cfg timepart.config) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM timepart._check_interval(cfg.partition_interval);
    PERFORM timepart._check_premake(cfg.premake);
    PERFORM timepart._check_retention(cfg.retention);
    IF cfg.retention_action IS NULL OR cfg.retention_action NOT IN ('drop', 'detach', 'archive') THEN
        RAISE EXCEPTION 'retention_action must be drop, detach or archive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.retention_action, 'NULL')),
            HINT = 'drop removes old partitions, detach keeps them as tables, archive moves them to archive_schema.';
    END IF;
    IF cfg.archive_schema IS NOT NULL THEN
        PERFORM timepart._check_archive_schema(cfg.archive_schema);
    END IF;
    IF cfg.retention_action = 'archive' AND cfg.archive_schema IS NULL THEN
        RAISE EXCEPTION 'retention_action archive needs an archive_schema' USING ERRCODE = '22023',
            DETAIL = 'archive_schema is NULL.', HINT = 'Set archive_schema, e.g. ''archive''; it is created when missing.';
    END IF;
    -- PostgreSQL's lock_timeout counts whole milliseconds, and 0 means no limit at all.
    IF cfg.lock_timeout IS NULL OR cfg.lock_timeout < interval '1 millisecond' OR cfg.lock_timeout > interval '1 minute'
       OR extract(epoch FROM cfg.lock_timeout) * 1000 <> floor(extract(epoch FROM cfg.lock_timeout) * 1000) THEN
        RAISE EXCEPTION 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_timeout::text, 'NULL')),
            HINT = 'A maintenance step waits at most this long for a lock; 100 ms suits busy tables.';
    END IF;
    IF cfg.retention IS NOT NULL AND cfg.retention < cfg.partition_interval THEN
        RAISE EXCEPTION 'retention is shorter than one partition' USING ERRCODE = '22023',
            DETAIL = format('Retention %s, partition interval %s: no partition could ever be kept whole.', cfg.retention, cfg.partition_interval),
            HINT = 'Keep at least one partition interval, e.g. 12 months for monthly partitions.';
    END IF;
    IF cfg.default_partition IS NULL THEN
        RAISE EXCEPTION 'default_partition must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'true (the default) keeps a default partition that catches rows no partition takes.';
    END IF;
    IF cfg.partition_unlogged IS NULL THEN
        RAISE EXCEPTION 'partition_unlogged must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'false (the default) keeps partitions crash-safe and replicated.';
    END IF;
    IF cfg.lock_retries IS NULL OR cfg.lock_retries NOT BETWEEN 0 AND 20 THEN
        RAISE EXCEPTION 'lock_retries must be between 0 and 20' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_retries::text, 'NULL')), HINT = 'A few retries (3) suit most tables.';
    END IF;
    PERFORM timepart._check_time_zone(cfg.time_zone);
    IF cfg.alert_max_size_bytes IS NULL OR cfg.alert_max_size_bytes <= 0 OR cfg.alert_max_rows IS NULL OR cfg.alert_max_rows <= 0
       OR cfg.alert_min_future IS NULL OR cfg.alert_min_future < 0 OR cfg.alert_growth_ratio IS NULL OR cfg.alert_growth_ratio <= 0
       OR cfg.alert_old_age IS NULL OR cfg.alert_old_age <= interval '0' THEN
        RAISE EXCEPTION 'alert thresholds must be positive' USING ERRCODE = '22023',
            DETAIL = format('max size %s bytes, max rows %s, min future %s, growth ratio %s, old age %s.',
                            cfg.alert_max_size_bytes, cfg.alert_max_rows, cfg.alert_min_future, cfg.alert_growth_ratio, cfg.alert_old_age),
            HINT = 'The seed''s defaults are 5 GB, 10 million rows, 2 future partitions, 0.5 (50%) and 13 months.';
    END IF;
END $$;

-- The refusal for a premake (future partitions kept ready) out of range.
CREATE OR REPLACE FUNCTION timepart._check_premake(premake integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF premake IS NULL OR premake < 1 OR premake > 1000 THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(premake::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
    END IF;
END $$;

-- The refusal for a retention that is not positive (NULL: keep everything).
CREATE OR REPLACE FUNCTION timepart._check_retention(retention interval) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF retention IS NOT NULL AND (retention <= interval '0' OR timepart._mixed_signs(retention)) THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', retention), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
    END IF;
    IF retention > interval '1000 years' THEN
        RAISE EXCEPTION 'retention is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 1000 years.', retention),
            HINT = 'Use NULL to keep everything.';
    END IF;
END $$;

-- An offset as people write it: +05:30, -08:00.
CREATE OR REPLACE FUNCTION timepart._utc_offset(o interval) RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN o < interval '0' THEN '-' ELSE '+' END || pg_catalog.to_char(CASE WHEN o < interval '0' THEN -o ELSE o END, 'HH24:MI');
END;

-- The refusal for a time zone that is not a full zone name. PostgreSQL also reads
-- abbreviations ('IST' is Israel's +02, not India's; 'PST' is a fixed -08 all summer),
-- POSIX-style names ('EST5EDT') and fixed offsets ('Etc/GMT+5' is UTC-05, sign inverted);
-- period boundaries need a zone's real history, so only a region name or UTC will do.
CREATE OR REPLACE FUNCTION timepart._check_time_zone(time_zone text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    abbrev record;
BEGIN
    IF time_zone IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone)
       AND (time_zone ~ '^(Etc/)?(UTC|UCT|Universal|Zulu|Greenwich|GMT([+-]?0)?)$'
            OR NOT (time_zone ~ '^(Etc/)?GMT[+-]?[0-9]' OR time_zone ~ '^[A-Z]{3}[0-9]' OR time_zone ~ '^posix'
                    OR time_zone IN ('EST', 'MST', 'HST', 'CET', 'EET', 'MET', 'WET', 'Factory', 'localtime', 'posixrules'))) THEN
        RETURN;
    END IF;
    SELECT a.utc_offset, a.is_dst INTO abbrev FROM pg_catalog.pg_timezone_abbrevs a WHERE a.abbrev = time_zone;
    IF FOUND THEN
        RAISE EXCEPTION 'time zone "%" is an abbreviation, not a zone', time_zone USING ERRCODE = '22023',
            DETAIL = format('PostgreSQL reads "%s" as the fixed offset UTC%s%s, all year: no daylight saving, and not '
                            'necessarily the region you mean.', time_zone, timepart._utc_offset(abbrev.utc_offset),
                            CASE WHEN abbrev.is_dst THEN ' (a summer time)' ELSE '' END),
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Asia/Kolkata'', ''America/Los_Angeles'' or ''UTC''.';
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone) THEN
        RAISE EXCEPTION 'time zone "%" is a fixed offset or an old POSIX-style name, not a region', time_zone
            USING ERRCODE = '22023',
            DETAIL = format('"%s" is UTC%s now; %s', time_zone,
                            (SELECT timepart._utc_offset(z.utc_offset) FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone),
                            CASE WHEN time_zone ~ '^Etc/GMT[+-]' THEN 'Etc/GMT names invert the sign (Etc/GMT+5 is UTC-05).'
                                 ELSE 'such names follow no region''s history.' END),
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Europe/Berlin'', or ''UTC''.';
    ELSE
        RAISE EXCEPTION 'unknown time zone "%"', time_zone USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.',
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Europe/Berlin'', or ''UTC''.';
    END IF;
END $$;

-- The refusal for a key column that is not a time column.
CREATE OR REPLACE FUNCTION timepart._check_time_column(tbl regclass, key_column name, key_type regtype) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF key_type IS NULL OR key_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'key column %.% is not a time column', tbl, key_column USING ERRCODE = '22023',
            DETAIL = format('Its type is %s.', coalesce(key_type::text, 'unknown')),
            HINT = 'timepart partitions by a timestamptz, timestamp or date column.';
    END IF;
END $$;

-- The refusal for a moment that is no moment: NULL or infinite.
CREATE OR REPLACE FUNCTION timepart._check_moment(as_of timestamptz, what text DEFAULT 'as_of') RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION '% must be a finite moment', what USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
END $$;

-- The refusal for a table whose owner may not create in its schema or tablespace.
-- Partitions, their indexes and a migration's renames are the owner's DDL there (its code
-- runs with its rights only), and PostgreSQL asks for CREATE on the schema for each; so
-- manage, add_index_template, migrate and every partition build refuse up front, before
-- anything is registered, copied or made, and name the GRANT that fixes it.
CREATE OR REPLACE FUNCTION timepart._check_owner_can_create(tbl regclass, action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT c.relowner, c.relowner::regrole::text AS owner_name, n.nspname, t.spcname INTO r
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
    WHERE c.oid = tbl;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_catalog.has_schema_privilege(r.relowner, r.nspname, 'CREATE') THEN
        RAISE EXCEPTION 'the owner of % may not create in schema %', tbl, r.nspname USING ERRCODE = '42501',
            DETAIL = format('To %s, timepart makes tables and indexes in schema %s as %s, which owns %s and lacks CREATE there. '
                            'Nothing was changed.', action, r.nspname, r.owner_name, tbl),
            HINT = format('A superuser or the schema''s owner runs: GRANT CREATE ON SCHEMA %I TO %s;', r.nspname, r.owner_name);
    END IF;
    IF r.spcname IS NOT NULL AND NOT pg_catalog.has_tablespace_privilege(r.relowner, r.spcname, 'CREATE') THEN
        RAISE EXCEPTION 'the owner of % may not create in tablespace %', tbl, r.spcname USING ERRCODE = '42501',
            DETAIL = format('To %s, timepart makes tables in tablespace %s (the table''s) as %s, which owns %s and lacks '
                            'CREATE there. Nothing was changed.', action, r.spcname, r.owner_name, tbl),
            HINT = format('A superuser runs: GRANT CREATE ON TABLESPACE %I TO %s;', r.spcname, r.owner_name);
    END IF;
END $$;
