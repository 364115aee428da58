-- Alerts: rules evaluated over a table's partitions (pure, no side effects), and
-- check_alerts, which keeps each alert's lifecycle and announces new ones.

CREATE TABLE timepart.alerts (
    id              bigserial PRIMARY KEY,
    alert_type      text NOT NULL,
    severity        text NOT NULL CONSTRAINT alerts_severity_known CHECK (severity IN ('info', 'warning', 'critical')),
    parent_table    text NOT NULL,
    partition_name  text NOT NULL DEFAULT '',
    message         text NOT NULL,
    recommendation  text,
    value           numeric,
    threshold       numeric,
    first_seen      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_seen       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX alerts_one_open_idx ON timepart.alerts (alert_type, parent_table, partition_name) WHERE resolved_at IS NULL;
-- pg_dump keeps the alert state (and its ids).
SELECT timepart._config_dump('timepart.alerts');
SELECT timepart._config_dump('timepart.alerts_id_seq');
COMMENT ON TABLE timepart.alerts IS 'Every alert with its lifecycle: first seen, last seen, resolved';

CREATE OR REPLACE VIEW timepart.open_alerts AS
    SELECT a.alert_type, a.severity, a.parent_table, NULLIF(a.partition_name, '') AS partition_name, a.message,
           a.recommendation, a.value, a.threshold, a.first_seen, a.last_seen
    FROM timepart.alerts a WHERE a.resolved_at IS NULL
    ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.first_seen;
COMMENT ON VIEW timepart.open_alerts IS 'Alerts not resolved yet, most severe first';

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too). stats: the table's partition_stats rows as JSON when the
-- caller has them already.
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz, stats jsonb DEFAULT NULL)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    time_zone text := cfg.time_zone;
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE time_zone);
    old_before timestamptz := ((as_of AT TIME ZONE time_zone) - cfg.alert_old_age) AT TIME ZONE time_zone;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            -- An empty heap holds no rows: no count (nor the owner's executor) needed. A
            -- default partition that is itself partitioned has no heap: always counted.
            IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = default_part) <> 'r'
               OR pg_catalog.pg_relation_size(default_part) > 0 THEN
                default_rows := timepart._read_as_owner(tbl, format(
                    'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part))::text::bigint;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            default_rows := 0;  -- locked, or the owner's code failed: counted again at the next check
        END;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT * FROM timepart.partition_stats(tbl) WHERE stats IS NULL
        UNION ALL
        SELECT * FROM jsonb_populate_recordset(NULL::timepart.partition_stats_row, stats) WHERE stats IS NOT NULL),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE time_zone
                                              AND s.range_start < month_start AT TIME ZONE time_zone) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE time_zone
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE time_zone) AS month_before
        FROM s WHERE NOT s.is_default
    ), future AS (
        SELECT count(*) AS n FROM s WHERE NOT s.is_default AND s.range_start > as_of
    ), old AS (
        SELECT count(*) AS n, (array_agg(s.partition_name ORDER BY s.range_start))[1] AS oldest
        FROM s WHERE NOT s.is_default AND s.range_end <= old_before
    )
    SELECT 'partition_too_large', 'warning', tbl::text, s.partition_name,
           format('%s is %s MB, over %s MB', s.partition_name, s.size_mb, max_mb),
           'Use a shorter partition interval, or archive old data', s.size_mb, max_mb
    FROM s WHERE s.size_mb > max_mb
    UNION ALL
    SELECT 'partition_too_many_rows', 'warning', tbl::text, s.partition_name,
           format('%s holds %s rows, over %s', s.partition_name, s.record_count, cfg.alert_max_rows),
           'Use a shorter partition interval', s.record_count, cfg.alert_max_rows
    FROM s WHERE s.record_count > cfg.alert_max_rows
    UNION ALL
    SELECT 'missing_current_partition', 'critical', tbl::text, '',
           format('no partition of %s covers the current period starting %s', tbl, timepart._period_of(cfg, as_of)),  -- only then
           'Create it now: run timepart.maintain()', 0, 1
    WHERE NOT EXISTS (SELECT 1 FROM s WHERE NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of)
    UNION ALL
    SELECT 'insufficient_future_partitions', 'warning', tbl::text, '',
           format('%s has %s future partition(s), fewer than %s', tbl, f.n, cfg.alert_min_future),
           'Run timepart.maintain() and check that its scheduled job runs', f.n, cfg.alert_min_future
    FROM future f WHERE f.n < cfg.alert_min_future
    UNION ALL
    SELECT 'old_partitions', 'info', tbl::text, o.oldest,
           format('%s has %s partition(s) older than %s', tbl, o.n, cfg.alert_old_age),
           'Consider archival: set a retention and run timepart.cleanup()', o.n, 0
    FROM old o WHERE o.n > 0
    UNION ALL
    SELECT 'high_growth', 'info', tbl::text, '',
           format('%s grew %s%% month over month (%s to %s rows)', tbl,
                  round((g.last_month - g.month_before) / g.month_before * 100), g.month_before, g.last_month),
           'Plan capacity: storage, retention and partition interval',
           round((g.last_month - g.month_before) / g.month_before, 3), cfg.alert_growth_ratio
    FROM growth g WHERE g.month_before > 0 AND (g.last_month - g.month_before) / g.month_before > cfg.alert_growth_ratio
    UNION ALL
    SELECT 'rows_in_default_partition', 'warning', tbl::text, default_part::text,
           format('%s%s row(s) wait in the default partition %s', CASE WHEN default_rows >= 1000000 THEN 'at least ' ELSE '' END,
                  default_rows, default_part),
           'Run timepart.maintain() to move them into partitions; rows past the premake horizon or the retention boundary stay',
           default_rows, 0
    WHERE default_rows > 0
    UNION ALL
    SELECT 'maintenance_failing', 'warning', tbl::text, '',
           format('the last maintain run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the failed step and fix its cause (a table in the way of a partition name: '
           'a partition detached by hand?); the alert resolves with the next successful run', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'maintain' AND NOT m.details ? 'skipped'
          ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    -- Retention that fails (a foreign key references an old partition, say) or does not run.
    SELECT 'retention_failing', 'critical', tbl::text, '',
           format('the last cleanup run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the partition that could not be removed and fix its cause (a foreign '
           'key referencing it?); the alert resolves with the next successful cleanup', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'cleanup' AND NOT m.details ? 'skipped'
          ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    SELECT 'retention_overdue', 'warning', tbl::text, '',
           format('%s partition(s) of %s are past its retention of %s by more than a month and a partition (the oldest ends %s)',
                  o.n, tbl, cfg.retention, o.oldest_end),
           'Run timepart.cleanup(); schedule it with timepart.schedule_jobs(); if it fails, see the retention_failing alert',
           o.n, 0
    FROM (SELECT count(*) AS n, min(p.range_end) AS oldest_end FROM timepart._partitions(tbl, time_zone) p
          WHERE NOT p.is_default AND cfg.retention IS NOT NULL
            -- The cleanup job runs monthly by default: overdue past a month and a partition.
            AND p.range_end <= ((as_of AT TIME ZONE time_zone) - cfg.retention - cfg.partition_interval - interval '31 days')
                               AT TIME ZONE time_zone) o
    WHERE o.n > 0
    UNION ALL
    -- Runs that found the table held by another: fine once (two runs met), not for an hour.
    SELECT 'maintenance_skipped', 'warning', tbl::text, '',
           format('maintain and cleanup of %s have been skipped since %s: another run holds the table (%s runs skipped)',
                  tbl, k.since, k.n),
           'A maintain, cleanup or create_partition left in an open transaction holds its table until that transaction '
           'ends: find it in pg_stat_activity (state idle in transaction) and end it', k.n, 1
    FROM (SELECT count(*) AS n, min(m.created_at) AS since FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type IN ('maintain', 'cleanup') AND m.details ? 'skipped'
            AND m.id > coalesce((SELECT max(d.id) FROM timepart.maintenance_log d WHERE d.parent_table = tbl::text
                                 AND d.operation_type IN ('maintain', 'cleanup') AND NOT d.details ? 'skipped'), 0)) k
    WHERE k.n > 0 AND k.since < as_of - interval '1 hour'
    UNION ALL
    SELECT 'partition_drift', 'warning', tbl::text, d.partition_name,
           format('%s differs from %s: %s', d.partition_name, tbl, d.properties),
           format('See SELECT * FROM timepart.sync_partitions(%L, dry_run => true); run it without dry_run to apply', tbl::text),
           d.n, 0
    FROM (SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = x.partition_oid) AS partition_name,
                 string_agg(DISTINCT x.property, ', ') AS properties,
                 count(*)::numeric AS n
          FROM timepart._partition_drift(tbl) x GROUP BY x.partition_oid) d
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
END $$;

-- A managed table dropped by hand leaves its configuration behind: it is forgotten (with
-- its index templates), its open alerts resolved, and that is logged. check_alerts, the
-- daily health job, does it. Returns how many were forgotten.
CREATE OR REPLACE FUNCTION timepart._forget_orphans() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
    n integer := 0;
BEGIN
    FOR gone IN DELETE FROM timepart.config c WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.parent)
                RETURNING c.parent::oid AS table_oid, c.key_column, c.partition_interval LOOP
        UPDATE timepart.alerts a SET resolved_at = pg_catalog.clock_timestamp()
        WHERE a.resolved_at IS NULL AND a.parent_table = gone.table_oid::text;
        CALL timepart._log('forget', NULL, NULL, true,
            jsonb_build_object('table_oid', gone.table_oid, 'key_column', gone.key_column, 'partition_interval', gone.partition_interval,
                               'reason', 'the table was dropped; its configuration and index templates are forgotten'), NULL,
            pg_catalog.clock_timestamp());
        n := n + 1;
    END LOOP;
    -- Alerts name their table as text (schema-qualified): those of a table that is gone
    -- are resolved with it, whenever it went.
    UPDATE timepart.alerts a SET resolved_at = pg_catalog.clock_timestamp()
    WHERE a.resolved_at IS NULL AND a.parent_table LIKE '%.%' AND pg_catalog.to_regclass(a.parent_table) IS NULL;
    RETURN n;
END $$;

-- Partitions lacking a templated index (not attached to the template's parent index).
CREATE OR REPLACE FUNCTION timepart._missing_indexes(tbl regclass)
RETURNS TABLE (partition_name text, missing text, n numeric) LANGUAGE sql STABLE
BEGIN ATOMIC
    -- In sets: every (partition, template) pair against every attached partition index.
    WITH t AS MATERIALIZED (
        -- Each template's index on the parent, by its name (as _template_parent_index finds it).
        SELECT it.suffix, ix.oid AS parent_idx
        FROM timepart.index_templates it
        JOIN pg_catalog.pg_class p ON p.oid = tbl
        LEFT JOIN pg_catalog.pg_class ix ON ix.relnamespace = p.relnamespace
             AND ix.relname = timepart._fit_name(p.relname, it.suffix) AND ix.relkind = 'I'
        WHERE it.parent = tbl
    ), attached AS MATERIALIZED (
        SELECT i.indrelid AS partition_oid, h.inhparent AS parent_idx
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indexrelid = h.inhrelid
        WHERE h.inhparent IN (SELECT t.parent_idx FROM t)
    ), parts AS MATERIALIZED (
        SELECT i.inhrelid AS partition_oid, c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl AND c.relkind <> 'f'
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname;
END;

CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one; the scheduled jobs too
   when no table is named), keeps each alert's lifecycle (an open alert is updated,
   not duplicated; one no longer raised is resolved), announces new ones with
   pg_notify('timepart_alerts', json) and a WARNING, logs the run, and returns the
   open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    evaluated jsonb := '[]'::jsonb;
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}'::text[];
    who name := timepart._caller();   -- runs as timepart's owner: the caller's rights are checked here
BEGIN
    PERFORM timepart._check_moment(as_of);
    IF NOT pg_catalog.pg_is_in_recovery() THEN
        PERFORM timepart._forget_orphans();
    END IF;
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
        PERFORM timepart._check_may_maintain(who, check_alerts.parent, 'check its alerts');
    END IF;
    -- A partition_admin evaluates other owners' tables as of now only: another moment
    -- would open or resolve their alerts on a state that is not theirs.
    IF as_of <> now() AND EXISTS (SELECT 1 FROM timepart._managed(check_alerts.parent) c
                                  WHERE NOT coalesce(timepart._may_act(who, c.parent), false)) THEN
        RAISE EXCEPTION 'only a table''s owner may check its alerts as of another moment' USING ERRCODE = '42501',
            DETAIL = format('as_of is %s, now is %s; %s does not own every table checked.', as_of, now(), who),
            HINT = 'Leave as_of out, or name a table you own.';
    END IF;
    -- Only the tables the caller may maintain (its own; every managed one for a
    -- partition_admin): a table owner outside partition_admin touches no one else's alerts.
    FOR cfg IN SELECT c.* FROM timepart._managed(check_alerts.parent) c
               WHERE timepart._may_maintain(who, c.parent) LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL AND NOT EXISTS (SELECT 1 FROM timepart.jobs j JOIN pg_catalog.pg_roles r ON r.rolname = j.scheduled_by
                                                   WHERE NOT pg_catalog.pg_has_role(who, r.oid, 'USAGE')) THEN
        checked := checked || '(scheduler)'::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate_jobs(as_of) e), '[]'::jsonb);
    END IF;

    -- A hot standby is read-only: the rules are evaluated as on the primary and the open
    -- alerts returned, with the lifecycle the primary recorded (first_seen); nothing is
    -- written, announced or logged there.
    IF pg_catalog.pg_is_in_recovery() THEN
        RETURN QUERY
        SELECT e.alert_type, e.severity, e.parent_table, e.partition_name, e.message, e.recommendation, e.value, e.threshold,
               coalesce(x.first_seen, now_ts), now_ts, x.id IS NULL
        FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                message text, recommendation text, value numeric, threshold numeric)
        LEFT JOIN timepart.alerts x ON x.resolved_at IS NULL AND x.alert_type = e.alert_type
              AND x.parent_table = e.parent_table AND x.partition_name = coalesce(e.partition_name, '')
        ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, 11, 9;
        RETURN;
    END IF;

    FOR a IN SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, '') AS partition_name, e.message,
                    e.recommendation, e.value, e.threshold
             FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                     message text, recommendation text, value numeric, threshold numeric) LOOP
        UPDATE timepart.alerts x SET last_seen = now_ts, message = a.message, value = a.value, threshold = a.threshold,
                                    severity = a.severity, recommendation = a.recommendation
        WHERE x.resolved_at IS NULL AND x.alert_type = a.alert_type AND x.parent_table = a.parent_table
          AND x.partition_name = a.partition_name;
        IF NOT FOUND THEN
            INSERT INTO timepart.alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value,
                                         threshold, first_seen, last_seen)
            VALUES (a.alert_type, a.severity, a.parent_table, a.partition_name, a.message, a.recommendation, a.value,
                    a.threshold, now_ts, now_ts);
            new_count := new_count + 1;
            PERFORM pg_catalog.pg_notify('timepart_alerts', jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity,
                'parent_table', a.parent_table, 'partition_name', NULLIF(a.partition_name, ''), 'message', a.message,
                'recommendation', a.recommendation, 'value', a.value, 'threshold', a.threshold, 'first_seen', now_ts)::text);
            RAISE WARNING 'timepart alert [%] %', a.severity, a.message USING HINT = coalesce(a.recommendation, '');
        END IF;
    END LOOP;
    UPDATE timepart.alerts x SET resolved_at = now_ts
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(evaluated) e
                      WHERE e->>'alert_type' = x.alert_type AND e->>'parent_table' = x.parent_table
                        AND coalesce(e->>'partition_name', '') = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    CALL timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;
COMMENT ON FUNCTION timepart.check_alerts(regclass, timestamptz) IS
    'Evaluates the alert rules, keeps each alert''s lifecycle, announces new ones on channel timepart_alerts; returns open alerts';
